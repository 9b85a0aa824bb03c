// Times cross the binding with nanoseconds, utimens gets mtime (not atime twice), and a change of
// only one time reaches the filesystem (flag_utime_omit_ok) instead of being dropped.
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryFs } from './memory-fs.js';
import { type Mounted, mountMemoryFs, run } from './mounted.js';

const DATE = '2001-02-03 04:05:06.123456789';
const DATE_NS = 981173106123456789n; // DATE in UTC (run() sets TZ=UTC)

describe('utimens and stat times', () => {
  let m: Mounted<MemoryFs>;
  beforeAll(async () => {
    m = await mountMemoryFs({ attrTimeout: 0, entryTimeout: 0 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('touch -m sets only mtime, to the nanosecond', async () => {
    const f = join(m.dir, 'only-mtime');
    await writeFile(f, 'x');
    const before = await stat(f, { bigint: true });
    await run('touch', ['-m', '-d', DATE, f]);
    const after = await stat(f, { bigint: true });
    expect(after.mtimeNs).toBe(DATE_NS);
    expect(after.atimeNs).toBe(before.atimeNs);
    expect(await run('stat', ['-c', '%.9Y', f])).toBe('981173106.123456789\n');
    expect(m.fs.lookup('/only-mtime')?.mtime).toEqual({ sec: 981173106, nsec: 123456789 });
  });

  it('touch -a sets only atime, to the nanosecond', async () => {
    const f = join(m.dir, 'only-atime');
    await writeFile(f, 'x');
    const before = await stat(f, { bigint: true });
    await run('touch', ['-a', '-d', DATE, f]);
    const after = await stat(f, { bigint: true });
    expect(after.atimeNs).toBe(DATE_NS);
    expect(after.mtimeNs).toBe(before.mtimeNs);
  });

  it('touch -d sets both times, distinct values included', async () => {
    const f = join(m.dir, 'both');
    await writeFile(f, 'x');
    await run('touch', ['-a', '-d', '1999-12-31 23:59:59.000000001', f]);
    await run('touch', ['-m', '-d', DATE, f]);
    const st = await stat(f, { bigint: true });
    expect(st.atimeNs).toBe(946684799000000001n);
    expect(st.mtimeNs).toBe(DATE_NS);
  });

  it('touch without a date resolves UTIME_NOW to the current time', async () => {
    const f = join(m.dir, 'now');
    await writeFile(f, 'x');
    await run('touch', ['-d', DATE, f]);
    const start = BigInt(Date.now() - 2000) * 1_000_000n;
    await run('touch', [f]);
    const st = await stat(f, { bigint: true });
    expect(st.mtimeNs).toBeGreaterThan(start);
    expect(st.atimeNs).toBeGreaterThan(start);
  });

  it('times before 1970 keep their sign', async () => {
    const f = join(m.dir, 'old');
    await writeFile(f, 'x');
    await run('touch', ['-m', '-d', '1960-01-01 00:00:00.5', f]);
    const st = await stat(f, { bigint: true });
    expect(st.mtimeNs).toBe(-315619200000000000n + 500000000n);
    expect(m.fs.lookup('/old')?.mtime).toEqual({ sec: -315619200, nsec: 500000000 });
  });
});

describe('GNU tar extraction into the mount', () => {
  let m: Mounted<MemoryFs>;
  let src: string;
  beforeAll(async () => {
    m = await mountMemoryFs({ attrTimeout: 0, entryTimeout: 0 });
    src = await mkdtemp(join(tmpdir(), 'fuse-binding-tar-'));
  });
  afterAll(async () => {
    await m?.close();
    if (src) await rm(src, { recursive: true, force: true });
  });

  it('preserves the mtimes of extracted files and directories, with nanoseconds', async () => {
    const tree = join(src, 'tree');
    await mkdir(join(tree, 'dir', 'sub'), { recursive: true });
    const files: Record<string, string> = {
      'a.txt': '2003-04-05 06:07:08.111111111',
      'dir/b.bin': '1999-01-01 00:00:00.999999999',
      'dir/sub/c': '2020-02-29 12:00:00.5',
      'dir/sub': '2010-10-10 10:10:10.101010101',
      dir: '2011-11-11 11:11:11.111',
    };
    for (const name of ['a.txt', 'dir/b.bin', 'dir/sub/c']) await writeFile(join(tree, name), `content of ${name}\n`.repeat(1000));
    for (const [name, date] of Object.entries(files)) await run('touch', ['-m', '-d', date, join(tree, name)]);
    const archive = join(src, 'tree.tar');
    await run('tar', ['--format=posix', '-cf', archive, '-C', tree, '.']);

    await run('tar', ['-xf', archive, '-C', m.dir]);

    for (const name of Object.keys(files)) {
      const want = await stat(join(tree, name), { bigint: true });
      const got = await stat(join(m.dir, name), { bigint: true });
      expect({ name, mtimeNs: got.mtimeNs }).toEqual({ name, mtimeNs: want.mtimeNs });
    }
    expect(m.fs.contents('/dir/b.bin')?.toString()).toBe('content of dir/b.bin\n'.repeat(1000));
  });
});
