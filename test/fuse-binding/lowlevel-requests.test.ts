// Request/reply round trips through a real mount of example/memory-ll.js on the libfuse3
// low-level binding: what the kernel asks reaches JS with its arguments, and what JS answers
// reaches the caller.
import { link, mkdir, open, readdir, readFile, readlink, rm, rmdir, stat, statfs, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Request } from 'fuse-native/lowlevel';
import { type LowLevelMount, mountMemoryLL, sh, syscall } from './lowlevel-mount.js';

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const FALLOC_FL_KEEP_SIZE = 1;
const FALLOC_FL_PUNCH_HOLE = 2;
const MiB = 1024 * 1024;

describe('low-level binding: requests and replies', () => {
  let m: LowLevelMount;
  const seen: Array<{ op: string; args: unknown[] }> = [];
  beforeAll(async () => {
    m = await mountMemoryLL();
    // Record every request (the session looks handlers up per request).
    for (const [name, fn] of Object.entries(m.fs.ops)) {
      if (name === 'forget') continue;
      (m.fs.ops as unknown as Record<string, unknown>)[name] = (req: Request, ...args: unknown[]) => {
        seen.push({ op: name, args: args.map((a) => (Buffer.isBuffer(a) ? a.length : a)) });
        return (fn as (...a: unknown[]) => unknown).call(m.fs.ops, req, ...args);
      };
    }
  });
  afterAll(async () => {
    await m?.close();
  });
  const calls = (op: string): unknown[][] => seen.filter((s) => s.op === op).map((s) => s.args);

  it('negotiates 1 MiB writes and stats the root from JS', async () => {
    expect(m.fs.session.conn?.maxWrite).toBe(MiB);
    const st = await stat(m.dir);
    expect(st.isDirectory()).toBe(true);
    expect(st.ino).toBe(1);
    expect(st.uid).toBe(process.getuid!());
  });

  it('creates, writes and reads back a file, with 1 MiB write requests', async () => {
    const data = Buffer.alloc(3 * MiB + 123);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    const f = join(m.dir, 'data.bin');
    // One write(2) of the whole buffer (writeFile would cut it into 512 KiB pieces).
    const fh = await open(f, 'w');
    try {
      expect((await fh.write(data, 0, data.length, 0)).bytesWritten).toBe(data.length);
    } finally {
      await fh.close();
    }
    expect(calls('create').some((a) => a[1] === 'data.bin')).toBe(true);
    expect(Math.max(...calls('write').map((a) => a[1] as number))).toBe(MiB);
    expect((await stat(f)).size).toBe(data.length);
    expect((await readFile(f)).equals(data)).toBe(true);
  });

  it('counts the requests of a create, write and close, also the getxattr the binding answers itself', async () => {
    const before = m.fs.session.requestCounts();
    const jsGetxattrs = calls('getxattr').length;
    const fh = await open(join(m.dir, 'counted'), 'wx');
    await fh.write(Buffer.alloc(4096, 1), 0, 4096, 0);
    await fh.close();
    // release is sent after close returns
    const released = async (): Promise<boolean> => (m.fs.session.requestCounts().release ?? 0) > (before.release ?? 0);
    for (let i = 0; i < 100 && !(await released()); i++) await new Promise((r) => setTimeout(r, 10));
    const after = m.fs.session.requestCounts();
    const sent = (op: string) => (after[op] ?? 0) - (before[op] ?? 0);
    expect({ lookup: sent('lookup'), create: sent('create'), write: sent('write'), getxattr: sent('getxattr'), release: sent('release') }).toEqual({
      lookup: 1,
      create: 1,
      write: 1,
      getxattr: 1,
      release: 1,
    });
    expect(calls('getxattr').length).toBe(jsGetxattrs);
  });

  it('lists a directory larger than one readdirplus reply', async () => {
    const d = join(m.dir, 'many');
    await mkdir(d);
    const names = Array.from({ length: 600 }, (_, i) => `file-with-a-longish-name-${i}`);
    for (const n of names) await writeFile(join(d, n), '');
    const listed = await readdir(d);
    expect(listed.sort()).toEqual([...names].sort());
    expect(calls('readdirplus').length + calls('readdir').length).toBeGreaterThan(1);
  });

  it('keeps nanoseconds, symlinks, hard links, truncate and rmdir semantics', async () => {
    const f = join(m.dir, 'times');
    await writeFile(f, 'abcdef');
    await sh('touch', ['-d', '2001-02-03 04:05:06.123456789', f]);
    expect((await stat(f, { bigint: true })).mtimeNs).toBe(981173106123456789n);
    const setattr = calls('setattr').at(-1)!;
    expect(setattr[1]).toMatchObject({ mtime: { sec: 981173106, nsec: 123456789 } });
    await utimes(f, 1000, 2000);
    expect((await stat(f)).mtimeMs).toBe(2_000_000);
    await truncate(f, 2);
    expect(await readFile(f, 'utf8')).toBe('ab');
    await symlink('times', join(m.dir, 'ln'));
    expect(await readlink(join(m.dir, 'ln'))).toBe('times');
    await link(f, join(m.dir, 'hard'));
    expect((await stat(f)).nlink).toBe(2);
    await mkdir(join(m.dir, 'full'));
    await writeFile(join(m.dir, 'full', 'x'), '');
    await expect(rmdir(join(m.dir, 'full'))).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await rm(join(m.dir, 'full'), { recursive: true });
  });

  it('answers statfs from JS', async () => {
    const s = await statfs(m.dir);
    expect(s.bsize).toBe(4096);
    expect(s.blocks).toBe(1 << 24);
  });

  it('passes an errno from JS to the caller unchanged', async () => {
    const original = m.fs.ops.mkdir;
    m.fs.ops.mkdir = (req: Request) => req.replyErr('EXDEV');
    try {
      await expect(mkdir(join(m.dir, 'quota'))).rejects.toMatchObject({ code: 'EXDEV' });
    } finally {
      m.fs.ops.mkdir = original;
    }
    m.fs.ops.mkdir = (req: Request) => req.replyErr(-122); // EDQUOT, negative: libuv has no name for it
    try {
      await expect(mkdir(join(m.dir, 'quota2'))).rejects.toMatchObject({ errno: -122 });
    } finally {
      m.fs.ops.mkdir = original;
    }
  });

  it('rename: RENAME_NOREPLACE answers EEXIST, RENAME_EXCHANGE swaps', async () => {
    const a = join(m.dir, 'ra');
    const b = join(m.dir, 'rb');
    await writeFile(a, 'A');
    await writeFile(b, 'B');
    // The kernel looks the target up again before any rename and refuses a target it finds...
    expect(await syscall('renameat2', a, b, RENAME_NOREPLACE)).toEqual({ ok: false, errno: 'EEXIST' });
    // ...so JS sees RENAME_NOREPLACE for targets that were missing at that lookup: here one the
    // store gains in between (as another client of a shared store would make it).
    const original = m.fs.ops.rename;
    m.fs.ops.rename = (req: Request, parent, name, newParent, newName, flags) => {
      const root = m.fs.inodes.get(1)!;
      const bIno = root.children!.get('rb')!;
      root.children!.set('rd', bIno);
      m.fs.inodes.get(bIno)!.nlink++;
      m.fs.ops.rename = original;
      original(req, parent, name, newParent, newName, flags);
    };
    expect(await syscall('renameat2', a, join(m.dir, 'rd'), RENAME_NOREPLACE)).toEqual({ ok: false, errno: 'EEXIST' });
    expect(calls('rename').at(-1)).toEqual([1, 'ra', 1, 'rd', RENAME_NOREPLACE]);
    expect(await syscall('renameat2', a, b, RENAME_EXCHANGE)).toEqual({ ok: true, value: 0 });
    expect(calls('rename').at(-1)?.[4]).toBe(RENAME_EXCHANGE);
    expect(await readFile(a, 'utf8')).toBe('B');
    expect(await readFile(b, 'utf8')).toBe('A');
    expect(await syscall('renameat2', a, join(m.dir, 'rc'), RENAME_NOREPLACE)).toEqual({ ok: true, value: 0 });
    expect(await readFile(join(m.dir, 'rc'), 'utf8')).toBe('B');
  });

  it('fallocate reaches JS with its mode bits; SEEK_DATA/SEEK_HOLE are answered by JS', async () => {
    const f = join(m.dir, 'sparse');
    await writeFile(f, 'x');
    expect(await syscall('fallocate', f, 0, 0, 4 * MiB)).toEqual({ ok: true, value: 0 });
    expect(calls('fallocate').at(-1)).toEqual([expect.any(Number), 0, 0, 4 * MiB, expect.any(Number)]);
    expect((await stat(f)).size).toBe(4 * MiB);
    const mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    expect(await syscall('fallocate', f, mode, MiB, 2 * MiB)).toEqual({ ok: true, value: 0 });
    expect(calls('fallocate').at(-1)?.slice(1, 4)).toEqual([mode, MiB, 2 * MiB]);
    expect((await stat(f)).size).toBe(4 * MiB);
    // Chunks 1 and 2 are holes now.
    expect(await syscall('seek', f, 'hole', 0)).toEqual({ ok: true, value: MiB });
    expect(await syscall('seek', f, 'data', MiB + 5)).toEqual({ ok: true, value: 3 * MiB });
    expect(await syscall('seek', f, 'data', 4 * MiB)).toEqual({ ok: false, errno: 'ENXIO' });
    expect(calls('lseek').map((a) => a.slice(1, 3))).toEqual([[0, 4], [MiB + 5, 3], [4 * MiB, 3]]);
  });

  it('sets, gets, lists and removes xattrs', async () => {
    const f = join(m.dir, 'xa');
    await writeFile(f, '');
    await sh('setfattr', ['-n', 'user.colour', '-v', 'blue', f]);
    await sh('setfattr', ['-n', 'user.size', '-v', 'large', f]);
    expect(await sh('getfattr', ['--only-values', '-n', 'user.colour', f])).toBe('blue');
    expect((await sh('getfattr', ['-d', f])).split('\n').filter((l) => l.startsWith('user.')).sort()).toEqual(['user.colour="blue"', 'user.size="large"']);
    await sh('setfattr', ['-x', 'user.colour', f]);
    await expect(sh('getfattr', ['-n', 'user.colour', f])).rejects.toThrow(/No such attribute/);
    expect(calls('removexattr').at(-1)?.[1]).toBe('user.colour');
  });

  it('throws on a second reply and leaves the first answer standing', async () => {
    let second: unknown;
    const original = m.fs.ops.lookup;
    m.fs.ops.lookup = (req: Request, parent, name) => {
      if (name !== 'twice') return original(req, parent, name);
      req.replyErr('EACCES');
      try {
        req.replyErr('ENOENT');
      } catch (err) {
        second = err;
      }
    };
    try {
      await expect(stat(join(m.dir, 'twice'))).rejects.toMatchObject({ code: 'EACCES' });
    } finally {
      m.fs.ops.lookup = original;
    }
    expect(second).toMatchObject({ code: 'ERR_FUSE_ALREADY_REPLIED' });
  });
});

describe('low-level binding: kernel caching', () => {
  let m: LowLevelMount;
  afterAll(async () => {
    await m?.close();
  });

  it('with attr/entry timeout 1 s, a second stat does not reach JS, a stat after 1 s does', async () => {
    m = await mountMemoryLL({ attrTimeout: 1, entryTimeout: 1 });
    await writeFile(join(m.dir, 'cached'), 'x');
    let asked = 0;
    const { lookup, getattr } = m.fs.ops;
    m.fs.ops.lookup = (req: Request, parent, name) => {
      if (name === 'cached') asked++;
      lookup(req, parent, name);
    };
    m.fs.ops.getattr = (req: Request, ino, fh) => {
      if (ino !== 1) asked++;
      getattr(req, ino, fh);
    };
    const before = asked;
    await stat(join(m.dir, 'cached'));
    const first = asked;
    await stat(join(m.dir, 'cached'));
    await stat(join(m.dir, 'cached'));
    expect(asked).toBe(first);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    await stat(join(m.dir, 'cached'));
    expect(asked).toBeGreaterThan(first);
    expect(first - before).toBeLessThanOrEqual(1);
  });
});

describe('low-level binding: locks', () => {
  let m: LowLevelMount;
  const locks: unknown[][] = [];
  beforeAll(async () => {
    m = await mountMemoryLL({ posixLocks: true, flockLocks: true }, (fs) => {
      fs.ops.flock = (req: Request, ...args: unknown[]) => {
        locks.push(['flock', ...args]);
        req.replyOk();
      };
      fs.ops.setlk = (req: Request, ...args: unknown[]) => {
        locks.push(['setlk', ...args]);
        // A blocking lock from 0 to the end never comes: it waits for the caller's signal.
        const lock = args[2] as { start: number; len: number };
        if (args[4] === true && lock.start === 0 && lock.len === 0) req.onInterrupt(() => req.replyErr('EINTR'));
        else req.replyOk();
      };
      fs.ops.getlk = (req: Request, ...args: unknown[]) => {
        locks.push(['getlk', ...args]);
        req.replyLock({ type: 1, whence: 0, start: 10, len: 5, pid: 4242 });
      };
    });
    await writeFile(join(m.dir, 'locked'), 'x');
  });
  afterAll(async () => {
    await m?.close();
  });

  it('sends flock(2) to JS', async () => {
    expect(await syscall('flock', join(m.dir, 'locked'))).toEqual({ ok: true, value: 0 });
    const LOCK_EX = 2;
    const LOCK_UN = 8;
    expect(locks.filter((l) => l[0] === 'flock').map((l) => l[3])).toEqual(expect.arrayContaining([LOCK_EX, LOCK_UN]));
  });

  it('sends fcntl locks to JS with the blocking flag, and returns what getlk answers', async () => {
    locks.length = 0;
    expect(await syscall('lockw', join(m.dir, 'locked'), 100, 50)).toEqual({ ok: true, value: 0 });
    const F_WRLCK = 1;
    const F_UNLCK = 2;
    const set = locks.filter((l) => l[0] === 'setlk');
    expect(set[0]).toEqual(['setlk', expect.any(Number), expect.any(Number), expect.objectContaining({ type: F_WRLCK, start: 100, len: 50 }), expect.any(BigInt), true]);
    expect(set.some((l) => (l[3] as { type: number }).type === F_UNLCK)).toBe(true);
    expect(await syscall('getlk', join(m.dir, 'locked'), 0, 20)).toEqual({ ok: true, value: F_WRLCK });
    expect(locks.find((l) => l[0] === 'getlk')?.[3]).toMatchObject({ type: F_WRLCK, start: 0, len: 20 });
  });

  it('a blocked F_SETLKW learns of the caller\'s signal through onInterrupt and answers EINTR', async () => {
    const started = Date.now();
    expect(await syscall('lockw-alarm', join(m.dir, 'locked'), 0.5)).toEqual({ ok: false, errno: 'EINTR' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });
});
