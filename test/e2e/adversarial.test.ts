// The request surface with extreme arguments: random sequences of truncates, writes and reads
// at sizes and offsets up to the largest file (2^63-1 bytes, for voldfs as for the kernel),
// renames and I/O on unlinked open files, applied to a voldfs mount and to a tmpfs, every
// result compared; then names, symlink targets, xattrs and paths at and past the kernel's
// limits. After each part the daemon must be alive and under its memory ceiling, and at the
// end `voldfs fsck` must find nothing. Root only (tmpfs); runs: VOLDFS_ADVERSARIAL_RUNS (30).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, opendir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import pMap from 'p-map';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFsck } from './crash/fsck.js';
import { defaultStoreEnv, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const exec = promisify(execFile);
const RUNS = Number(process.env.VOLDFS_ADVERSARIAL_RUNS ?? 30);
const APPLY = fileURLToPath(new URL('./adversarial/apply.py', import.meta.url));
/** The daemon must stay under this resident size through all of it. */
const RSS_CEILING_MB = 768;
const TIMEOUT_MS = 600_000;

/** The largest file, voldfs's and the kernel's; past it, EFBIG. */
const MAX = 2n ** 63n - 1n;
/**
 * Sizes and offsets where arithmetic breaks: chunk edges, 2^32, where doubles stop being exact
 * (2^53), and the end of the range.
 */
const EDGES = [0n, 1n, 4095n, 4096n, 4097n, 2n ** 20n - 1n, 2n ** 20n, 2n ** 20n + 1n, 2n ** 32n, 2n ** 40n + 7n, 2n ** 50n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, MAX - 4097n, MAX - 1n, MAX];
const near = (edges: bigint[], limit: bigint) =>
  fc.tuple(fc.constantFrom(...edges), fc.integer({ min: -5000, max: 5000 })).map(([e, d]) => {
    const v = e + BigInt(d);
    return String(v < 0n ? 0n : v > limit ? limit : v);
  });
/**
 * A size or offset anywhere up to 2^63 - 1. Near the end, the kernel shortens a write or read to
 * the largest file, or refuses one whose end overflows (EINVAL), for both filesystems alike.
 */
const offset = fc.oneof(fc.constantFrom(...EDGES).map(String), near(EDGES, MAX), fc.integer({ min: 0, max: 3 << 20 }).map(String));
const length = fc.oneof(fc.integer({ min: 0, max: 9000 }), fc.constantFrom(1 << 20, (1 << 20) + 1));
const file = fc.constantFrom('f0', 'f1', 'f2');

type Op = Record<string, unknown> & { op: string; path: string };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('truncate'), path: file, size: offset }),
  fc.record({ op: fc.constant('pwrite'), path: file, offset, length, seed: fc.nat() }),
  fc.record({ op: fc.constant('pread'), path: file, offset, length }),
  fc.record({ op: fc.constant('stat'), path: file }),
  fc.record({ op: fc.constant('unlink'), path: file }),
  fc.record({ op: fc.constant('rename'), path: file, to: file }),
  fc.record({ op: fc.constant('unlinked-io'), path: fc.constantFrom('u0', 'u1'), offset, length: fc.integer({ min: 0, max: 9000 }), seed: fc.nat() }),
);

async function apply(root: string, ops: readonly Op[]): Promise<unknown[]> {
  const child = exec('python3', [APPLY, root], { maxBuffer: 16 << 20, timeout: 120_000 });
  child.child.stdin?.end(JSON.stringify(ops));
  return JSON.parse((await child).stdout) as unknown[];
}

async function daemonRssMb(mount: VoldfsMount): Promise<number> {
  const pid = Number((await readFile(mount.logFile.replace(/\.log$/, '.pid'), 'utf8')).split('\n')[0]);
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+)/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`the daemon (pid ${pid}) is gone: see ${mount.logFile}`);
  return Number(kb) / 1024;
}

const errnoOf = (err: unknown) => (err as NodeJS.ErrnoException).code ?? String(err);
async function outcome(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    return errnoOf(err);
  }
}

describe.skipIf(process.getuid?.() !== 0)('adversarial requests', () => {
  let mount: VoldfsMount;
  let env: Record<string, string>;
  let reference: string;

  beforeAll(async () => {
    env = defaultStoreEnv(await makeTempDir('store'));
    mount = await mountVoldfs({ env });
    reference = await makeTempDir('adversarial-tmpfs');
    await exec('mount', ['-t', 'tmpfs', '-o', 'size=512m', 'voldfs-test', reference]);
  }, 120_000);
  afterAll(async () => {
    if (reference && existsSync(reference)) await exec('umount', [reference]).catch(() => undefined);
    await mount?.unmount();
  });

  it(`agrees with tmpfs on ${RUNS} sequences of truncates, writes and reads up to 2^63-1`, async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
        const name = `run-${run++}`;
        await mkdir(join(reference, name));
        await mkdir(join(mount.dir, name));
        const want = await apply(join(reference, name), ops);
        const got = await apply(join(mount.dir, name), ops);
        expect(got).toEqual(want);
        await rm(join(reference, name), { recursive: true });
        await rm(join(mount.dir, name), { recursive: true });
        expect(await daemonRssMb(mount)).toBeLessThan(RSS_CEILING_MB);
      }),
      { numRuns: RUNS, seed: process.env.VOLDFS_ADVERSARIAL_SEED ? Number(process.env.VOLDFS_ADVERSARIAL_SEED) : undefined },
    );
  }, TIMEOUT_MS);

  it('holds a file of 2^63-1 bytes exactly and answers EFBIG past it, as tmpfs does', async () => {
    const ops: Op[] = [
      { op: 'truncate', path: 'big', size: String(2n ** 53n + 1n) },
      { op: 'truncate', path: 'big', size: String(MAX) },
      { op: 'pwrite', path: 'big', offset: String(MAX - 4096n), length: 4096, seed: 1 },
      { op: 'pwrite', path: 'big', offset: String(MAX - 1n), length: 1, seed: 2 },
      { op: 'pwrite', path: 'big', offset: String(MAX), length: 1, seed: 3 },
      { op: 'pwrite', path: 'big', offset: String(2n ** 62n), length: 10, seed: 4 },
      { op: 'fallocate', path: 'big', offset: String(MAX - 1n), length: '2' },
      { op: 'fallocate', path: 'big', offset: String(2n ** 62n), length: String(2n ** 62n) },
      { op: 'pread', path: 'big', offset: String(MAX - 4096n), length: 4096 },
      { op: 'pread', path: 'big', offset: String(2n ** 62n), length: 10 },
      { op: 'stat', path: 'big' },
      { op: 'unlink', path: 'big' },
    ];
    await mkdir(join(mount.dir, 'efbig'));
    await mkdir(join(reference, 'efbig'));
    const got = await apply(join(mount.dir, 'efbig'), ops);
    expect(got).toEqual(await apply(join(reference, 'efbig'), ops));
    // A write whose end overflows loff_t is the kernel's EINVAL; an fallocate past the end, EFBIG.
    expect(got.slice(0, 8)).toEqual([
      { ok: String(2n ** 53n + 1n) },
      { ok: String(MAX) },
      { ok: '4096' },
      { ok: '1' },
      { err: 'EINVAL' },
      { ok: '10' },
      { err: 'EFBIG' },
      { err: 'EFBIG' },
    ]);
    expect(got[10]).toEqual({ ok: String(MAX) });
    expect(got[11]).toEqual({ ok: null });
    expect(await daemonRssMb(mount)).toBeLessThan(RSS_CEILING_MB);
  }, TIMEOUT_MS);

  it('answers names, symlink targets, xattrs and paths at and past the limits as Linux says', async () => {
    const dir = join(mount.dir, 'limits');
    await mkdir(dir);
    const name255 = 'n'.repeat(255);
    const utf8Name255 = 'é'.repeat(127) + 'x'; // 254 + 1 bytes
    expect(await outcome(() => writeFile(join(dir, name255), 'a'))).toBe('ok');
    expect(await outcome(() => writeFile(join(dir, utf8Name255), 'b'))).toBe('ok');
    expect(await outcome(() => writeFile(join(dir, 'n'.repeat(256)), 'c'))).toBe('ENAMETOOLONG');
    expect(await outcome(() => mkdir(join(dir, 'é'.repeat(128))))).toBe('ENAMETOOLONG');
    expect(await readFile(join(dir, utf8Name255), 'utf8')).toBe('b');

    const target4095 = 't'.repeat(4095);
    expect(await outcome(() => symlink(target4095, join(dir, 'long-link')))).toBe('ok');
    expect(await readlink(join(dir, 'long-link'))).toBe(target4095);
    expect(await outcome(() => symlink('t'.repeat(4096), join(dir, 'too-long-link')))).toBe('ENAMETOOLONG');

    // xattrs through python (Node has no xattr calls): the kernel's limits are 64 KiB values
    // and 255-byte names; voldfs must answer the largest it accepts back whole.
    const xattr = async (script: string) =>
      (await exec('python3', ['-c', `import os,sys\np=sys.argv[1]\ntry:\n${script}\nexcept OSError as e:\n    import errno; print(errno.errorcode[e.errno])`, join(dir, name255)])).stdout.trim();
    expect(await xattr(`    os.setxattr(p, 'user.big', b'v' * 65536); print(len(os.getxattr(p, 'user.big')))`)).toBe('65536');
    expect(await xattr(`    os.setxattr(p, 'user.' + 'k' * 250, b'1'); print(os.getxattr(p, 'user.' + 'k' * 250).decode())`)).toBe('1');
    expect(await xattr(`    os.setxattr(p, 'user.' + 'k' * 251, b'1'); print('set')`)).toBe('ERANGE');
    expect(await xattr(`    os.setxattr(p, 'user.huge', b'v' * 65537); print('set')`)).toBe('E2BIG');

    // A deep path: 120 levels of 30-byte names (3,720 bytes), a file at the bottom, the top renamed.
    let deep = join(dir, 'deep');
    const levels: string[] = [];
    for (let i = 0; i < 120; i++) levels.push(`level-${String(i).padStart(3, '0')}-${'d'.repeat(20)}`);
    await mkdir(join(deep, ...levels), { recursive: true });
    await writeFile(join(deep, ...levels, 'leaf'), 'bottom');
    await exec('mv', [deep, join(dir, 'deep-moved')]);
    deep = join(dir, 'deep-moved');
    expect(await readFile(join(deep, ...levels, 'leaf'), 'utf8')).toBe('bottom');
    expect(await outcome(() => exec('rm', ['-rf', deep]))).toBe('ok');
    expect(existsSync(deep)).toBe(false);
    expect(await daemonRssMb(mount)).toBeLessThan(RSS_CEILING_MB);
  }, TIMEOUT_MS);

  it('keeps no copy of a listing per open directory handle', async () => {
    // 3,000 names of 200 bytes; 400 handles each read at the start, the middle and the end.
    const dir = join(mount.dir, 'many-handles');
    await mkdir(dir);
    const names = Array.from({ length: 3000 }, (_, i) => `${String(i).padStart(5, '0')}-${'w'.repeat(194)}`);
    await pMap(names, (n) => writeFile(join(dir, n), ''), { concurrency: 8 });
    const before = await daemonRssMb(mount);
    const handles = await Promise.all(Array.from({ length: 400 }, () => opendir(dir, { bufferSize: 1 })));
    try {
      for (const handle of handles) await handle.read();
      const opened = await daemonRssMb(mount);
      // Each handle held its own copy of the listing (about 1 MB here) until the listing was read
      // a page at a time: 400 handles grew the daemon by hundreds of MB.
      expect(opened - before, `resident MB with 400 handles open: ${before.toFixed(0)} -> ${opened.toFixed(0)}`).toBeLessThan(60);
      const seen = new Set<string>();
      for (const entry of await readdir(dir)) seen.add(entry);
      expect(seen.size).toBe(names.length);
    } finally {
      for (const handle of handles) await handle.close();
    }
    expect(await daemonRssMb(mount)).toBeLessThan(RSS_CEILING_MB);
  }, TIMEOUT_MS);

  it('leaves a volume that voldfs fsck finds clean', async () => {
    await mount.unmount();
    const fsck = await runFsck(env);
    expect(fsck, 'this build has voldfs fsck').toBeDefined();
    expect(fsck!.problems).toEqual([]);
    await mount.remount();
  }, TIMEOUT_MS);
});
