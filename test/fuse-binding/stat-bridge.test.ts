// What crosses the bridge in a stat, a statfs and a readlink: times in every accepted form with
// nanoseconds, 64-bit inode numbers, sizes and block counts, and long symlink targets.
import { open, readdir, readlink, stat, statfs } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fuse from 'fuse-native';
import { type Mounted, mountOps, waitFor } from './mounted.js';

const FILE = 0o100644;
const BIG_INO = 2n ** 52n + 12345n; // beyond 32 bits, and beyond the float mantissa as a bigint
const TIMES: Record<string, { given: Fuse.Time; ns: bigint }> = {
  timespec: { given: { sec: 981173106, nsec: 123456789 }, ns: 981173106123456789n },
  date: { given: new Date(Date.UTC(2001, 1, 3, 4, 5, 6, 789)), ns: 981173106789000000n },
  bigint: { given: 981173106000000001n, ns: 981173106000000001n },
  millis: { given: 981173106500, ns: 981173106500000000n },
  'before-1970': { given: { sec: -1, nsec: 999999999 }, ns: -1n },
  'bigint-before-1970': { given: -1500000000n, ns: -1500000000n },
};

interface Seen {
  created: boolean;
  createFlags: number[];
  opendirFlags: number[];
  releasedFds: number[];
}

function ops(seen: Seen): Fuse.Operations {
  return {
    getattr(path, cb) {
      if (path === '/') return cb(0, { mode: 0o40755, nlink: 2, ino: 1 });
      const name = path.slice(1);
      const t = TIMES[name];
      if (t) return cb(0, { mode: FILE, ino: 7, atime: t.given, mtime: t.given, ctime: t.given });
      if (name === 'huge') return cb(0, { mode: FILE, ino: BIG_INO, size: 2 ** 40 + 3, blocks: 2 ** 33 + 1 });
      if (name === 'long-link' || name === 'ok-link') return cb(0, { mode: 0o120777, ino: 9, size: 1 });
      if (name === 'new' && seen.created) return cb(0, { mode: FILE, ino: 10 });
      cb(Fuse.ENOENT);
    },
    readdir(_path, cb) {
      cb(0, ['.', '..', ...Object.keys(TIMES), 'huge']);
    },
    opendir(_path, flags, cb) {
      seen.opendirFlags.push(flags);
      cb(0, 2 ** 40 + 1);
    },
    releasedir(_path, fd, cb) {
      seen.releasedFds.push(fd);
      cb(0);
    },
    statfs(_path, cb) {
      cb(0, { bsize: 4096, frsize: 4096, blocks: 2 ** 33, bfree: 2 ** 32 + 5, bavail: 2 ** 32 + 1, files: 2 ** 40, ffree: 2 ** 34, namemax: 255 });
    },
    readlink(path, cb) {
      cb(0, path === '/long-link' ? 'x'.repeat(5000) : 'target');
    },
    create(_path, _mode, cb, flags) {
      seen.created = true;
      seen.createFlags.push(flags);
      cb(0, 2 ** 40 + 2);
    },
    release(_path, fd, cb) {
      seen.releasedFds.push(fd);
      cb(0);
    },
  };
}

describe('stat, statfs and readlink across the bridge', () => {
  let m: Mounted<Seen>;
  beforeAll(async () => {
    const seen: Seen = { created: false, createFlags: [], opendirFlags: [], releasedFds: [] };
    m = await mountOps(seen, ops(seen), { useIno: true, attrTimeout: 0, entryTimeout: 0 });
  });
  afterAll(async () => {
    await m?.close();
  });

  for (const [name, t] of Object.entries(TIMES)) {
    it(`takes a time given as ${name}`, async () => {
      const st = await stat(join(m.dir, name), { bigint: true });
      expect(st.mtimeNs).toBe(t.ns);
      expect(st.atimeNs).toBe(t.ns);
      expect(st.ctimeNs).toBe(t.ns);
    });
  }

  it('carries 64-bit inode numbers, sizes and block counts', async () => {
    const st = await stat(join(m.dir, 'huge'), { bigint: true });
    expect(st.ino).toBe(BIG_INO);
    expect(st.size).toBe(2n ** 40n + 3n);
    expect(st.blocks).toBe(2n ** 33n + 1n);
  });

  it('carries 64-bit statfs counts', async () => {
    const s = await statfs(m.dir, { bigint: true });
    expect(s.blocks).toBe(2n ** 33n);
    expect(s.bfree).toBe(2n ** 32n + 5n);
    expect(s.bavail).toBe(2n ** 32n + 1n);
    expect(s.files).toBe(2n ** 40n);
    expect(s.ffree).toBe(2n ** 34n);
  });

  it('answers ENAMETOOLONG for a symlink target that does not fit, instead of cutting it', async () => {
    await expect(readlink(join(m.dir, 'long-link'))).rejects.toMatchObject({ code: 'ENAMETOOLONG' });
    expect(await readlink(join(m.dir, 'ok-link'))).toBe('target');
  });

  it('passes open flags to create (after the callback) and opendir, and keeps 64-bit handles', async () => {
    const fh = await open(join(m.dir, 'new'), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_APPEND);
    await fh.close();
    const names = await readdir(m.dir);
    expect(names).toContain('huge');
    const seen = m.fs;
    expect(seen.createFlags).toHaveLength(1);
    expect(seen.createFlags[0] & constants.O_APPEND).toBe(constants.O_APPEND);
    expect(seen.createFlags[0] & 3 /* O_ACCMODE */).toBe(constants.O_WRONLY);
    expect(seen.opendirFlags.length).toBeGreaterThan(0);
    expect(seen.opendirFlags[0] & constants.O_DIRECTORY).toBe(constants.O_DIRECTORY);
    await waitFor('both releases', () => seen.releasedFds.length >= 2);
    expect(seen.releasedFds).toEqual(expect.arrayContaining([2 ** 40 + 1, 2 ** 40 + 2]));
  });
});
