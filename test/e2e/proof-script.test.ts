// Proves that scripts/copy-remount-checksum catches every kind of damage it claims to: it copies
// a small fixture into a plain directory (--target-dir), then each test damages a copy of that
// target in one way and expects exit status 1 and a DIFF line naming the damage.
import { appendFile, chmod, open, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findRepoRoot } from '../helpers/mount.js';
import { run, type RunResult } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const TIMEOUT_MS = 180_000;
let script = '';
let work = '';
let fixture = '';
let pristine = '';

function proof(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return run(script, args, { env, timeoutMs: TIMEOUT_MS });
}

/** A fresh copy of the verified target for one test to damage. */
async function damagedCopy(name: string, damage: (root: string) => Promise<void>): Promise<RunResult> {
  const target = join(work, name);
  const cp = await run('cp', ['-a', pristine, target]);
  expect(cp.code, cp.stderr).toBe(0);
  await damage(target);
  return proof(['--fixture', fixture, '--target-dir', target, '--verify-only']);
}

function expectDiff(r: RunResult, line: RegExp): void {
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(1);
  expect(r.stdout).toMatch(/^RESULT DIFFERENT$/m);
  expect(r.stdout).toMatch(line);
}

beforeAll(async () => {
  script = join(await findRepoRoot(), 'scripts', 'copy-remount-checksum');
  work = await makeTempDir('proof');
  const src = join(work, 'src');
  await run('mkdir', ['-p', join(src, 'sub')]);
  await writeFile(join(src, 'a.txt'), 'alpha\n'.repeat(100));
  await writeFile(join(src, 'sub', 'b.bin'), Buffer.alloc(300_000, 7));
  await symlink('a.txt', join(src, 'to-a'));
  fixture = join(work, 'fixture');
  pristine = join(work, 'pristine');
  const r = await proof(['--source', src, '--big-mib', '2', '--fixture', fixture, '--target-dir', pristine]);
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
  expect(r.stdout).toMatch(/^RESULT identical$/m);
  expect(r.stdout).toMatch(/^differences {2}0$/m);
}, TIMEOUT_MS);

describe('copy-remount-checksum --target-dir', () => {
  it('reports an undamaged copy as identical, and says what it compared', async () => {
    const r = await proof(['--fixture', fixture, '--target-dir', pristine, '--verify-only']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^entries +\d+ \(\d+ files, \d+ dirs, [1-9]\d* symlinks, 1 other; 2 hard-link groups\)$/m);
    expect(r.stdout).toMatch(/^verify +[\d.]+ s, [\d.]+ MB\/s/m);
  }, TIMEOUT_MS);

  it('catches one changed byte (size and mtime kept)', async () => {
    const r = await damagedCopy('byte', async (t) => {
      const p = join(t, 'real', 'src', 'sub', 'b.bin');
      const fh = await open(p, 'r+');
      await fh.write(Buffer.from([8]), 0, 1, 123_456);
      await fh.close();
      await run('touch', ['-r', join(fixture, 'tree', 'real', 'src', 'sub', 'b.bin'), p]);
    });
    expectDiff(r, /^DIFF "real\/src\/sub\/b\.bin": content sha256 /m);
    expect(r.stdout).toMatch(/^differences {2}1 \(content 1\)$/m);
  }, TIMEOUT_MS);

  it('catches a changed byte at the end of the large file', async () => {
    const r = await damagedCopy('big', async (t) => {
      const p = join(t, 'extras', 'big.bin');
      const fh = await open(p, 'r+');
      const { size } = await fh.stat();
      // The complement of the byte there, so the content surely changes (a fixed byte would
      // already be there in one run out of 256).
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      await fh.write(Buffer.from([last[0] ^ 0xff]), 0, 1, size - 1);
      await fh.close();
    });
    expectDiff(r, /^DIFF "extras\/big\.bin": content sha256 /m);
  }, TIMEOUT_MS);

  it('catches a missing file', async () => {
    const r = await damagedCopy('missing', (t) => unlink(join(t, 'real', 'src', 'a.txt')));
    expectDiff(r, /^DIFF missing: "real\/src\/a\.txt" \(file\)$/m);
  }, TIMEOUT_MS);

  it('catches an extra file', async () => {
    const r = await damagedCopy('extra', (t) => writeFile(join(t, 'extras', 'stray'), 'x'));
    expectDiff(r, /^DIFF extra: "extras\/stray" \(file\)$/m);
  }, TIMEOUT_MS);

  it('catches a wrong mode', async () => {
    const r = await damagedCopy('mode', (t) => chmod(join(t, 'extras', 'modes', 'm0644'), 0o640));
    expectDiff(r, /^DIFF "extras\/modes\/m0644": mode 0644 != 0640$/m);
  }, TIMEOUT_MS);

  it('catches a lost setuid bit', async () => {
    const r = await damagedCopy('setuid', (t) => chmod(join(t, 'extras', 'modes', 'm4755'), 0o755));
    expectDiff(r, /^DIFF "extras\/modes\/m4755": mode 04755 != 0755$/m);
  }, TIMEOUT_MS);

  it('catches a wrong mtime, even one nanosecond off', async () => {
    const r = await damagedCopy('mtime', (t) => run('touch', ['-m', '-d', '@1700000000.999999998', join(t, 'extras', 'times', 'nanos')]).then(() => undefined));
    expectDiff(r, /^DIFF "extras\/times\/nanos": mtime 1700000000999999999 != 1700000000999999998 \(ns\)$/m);
  }, TIMEOUT_MS);

  it('accepts that mtime with --mtime-granularity-ns 1000', async () => {
    const target = join(work, 'mtime-coarse');
    await run('cp', ['-a', pristine, target]);
    await run('touch', ['-m', '-d', '@1700000000.999999998', join(target, 'extras', 'times', 'nanos')]);
    const r = await proof(['--fixture', fixture, '--target-dir', target, '--verify-only', '--mtime-granularity-ns', '1000']);
    expect(r.code, r.stdout).toBe(0);
  }, TIMEOUT_MS);

  it('catches a wrong symlink target', async () => {
    const r = await damagedCopy('symlink', async (t) => {
      const p = join(t, 'real', 'src', 'to-a');
      await unlink(p);
      await symlink('sub/b.bin', p);
    });
    expectDiff(r, /^DIFF "real\/src\/to-a": symlink target "a\.txt" != "sub\/b\.bin"$/m);
  }, TIMEOUT_MS);

  it('catches a hard link turned into a copy', async () => {
    const r = await damagedCopy('hardlink', async (t) => {
      const p = join(t, 'extras', 'links', 'hard1');
      const content = await readFile(p);
      await unlink(p);
      await writeFile(p, content);
      await run('touch', ['-r', join(fixture, 'tree', 'extras', 'links', 'hard1'), p]);
    });
    expectDiff(r, /^DIFF "extras\/links\/hard1": hard links \["extras\/links\/hard1", "extras\/links\/sub\/hard2", "extras\/links\/target\.txt"\] != \["extras\/links\/hard1"\]$/m);
  }, TIMEOUT_MS);

  it('catches a changed owner', async () => {
    const r = await damagedCopy('owner', (t) => run('chown', ['1:1', join(t, 'real', 'src', 'a.txt')]).then(() => undefined));
    expectDiff(r, /^DIFF "real\/src\/a\.txt": owner 0:0 != 1:1$/m);
  }, TIMEOUT_MS);

  it('catches a file turned into a directory and a truncated file', async () => {
    const r = await damagedCopy('type', async (t) => {
      await rm(join(t, 'extras', 'empty', 'e3'));
      await run('mkdir', [join(t, 'extras', 'empty', 'e3')]);
      await appendFile(join(t, 'extras', 'sparse', 'tail-hole'), 'x');
    });
    expectDiff(r, /^DIFF "extras\/empty\/e3": type file != dir$/m);
    expect(r.stdout).toMatch(/^DIFF "extras\/sparse\/tail-hole": size 33554432 != 33554433$/m);
  }, TIMEOUT_MS);

  for (const tool of ['rsync', 'tar']) {
    it(`copies faithfully with --copy-tool ${tool}`, async () => {
      const r = await proof(['--fixture', fixture, '--target-dir', join(work, `copy-${tool}`), '--copy-tool', tool]);
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^copy +[\\d.]+ s, [\\d.]+ MB/s \\(${tool}\\)$`, 'm'));
    }, TIMEOUT_MS);
  }
});

describe('copy-remount-checksum usage errors', () => {
  it('exits 2 on a bad option value, with the usage', async () => {
    const r = await proof(['--copy-tool', 'scp']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--copy-tool must be cp, rsync or tar, got "scp"/);
    expect(r.stderr).toMatch(/usage: copy-remount-checksum/);
  }, TIMEOUT_MS);

  it('refuses the mem store, which cannot survive a remount', async () => {
    const r = await proof(['--fixture', fixture], { ...process.env, VOLDFS_DB: 'mem' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/VOLDFS_DB=mem .* nothing survives the remount/);
  }, TIMEOUT_MS);

  it('refuses an existing --target-dir rather than mixing trees', async () => {
    const r = await proof(['--fixture', fixture, '--target-dir', pristine]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/already exists; give a path that does not exist yet/);
  }, TIMEOUT_MS);

  it('--verify-only needs a fixture', async () => {
    const r = await proof(['--target-dir', pristine, '--verify-only']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--verify-only needs --fixture DIR/);
  }, TIMEOUT_MS);
});
