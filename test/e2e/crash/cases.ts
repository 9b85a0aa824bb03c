/**
 * The operations the crash matrix kills a mount in, each with its fixture and the outcomes a
 * crash may leave: the operation entirely undone ("old") or entirely done ("new"), and for a
 * file write, the states the data path's ordering allows (blocks, then chunk maps, then the
 * inode). Anything else (a file in two places or none, a half-applied link) is a problem.
 */
import { lstat, link, mkdir, open, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { patternBytes } from '../../helpers/pattern.js';

/** What a case found after the crash: which outcome, and what is wrong if none fits. */
export interface CaseOutcome {
  readonly outcome: string;
  readonly problems: string[];
}

export interface CrashCase {
  /** Short id, used in directory names and reports. */
  readonly id: string;
  readonly title: string;
  /** Builds the fixture in `dir` (an empty directory on a healthy mount). */
  setup(dir: string): Promise<void>;
  /** The operation; rejects (ENOTCONN) when the mount dies under it. */
  run(dir: string): Promise<void>;
  /** Classifies what `dir` holds after the crash, on a fresh mount. */
  check(dir: string): Promise<CaseOutcome>;
}

const text = (id: string, what: string) => Buffer.from(`${id}:${what}:`.padEnd(200, '.'));

/** The file's content, or undefined when the name does not exist. */
async function content(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function inoOf(path: string): Promise<number | undefined> {
  try {
    return (await lstat(path)).ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function isDirectory(path: string): Promise<boolean | undefined> {
  try {
    return (await lstat(path)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const same = (a: Buffer | undefined, b: Buffer) => a !== undefined && a.equals(b);
const show = (b: Buffer | undefined) => (b === undefined ? 'absent' : `${b.length} bytes "${b.subarray(0, 24).toString('latin1')}..."`);

/** Size of the written-over file and of what the write+close case writes (spans several chunks). */
const OLD_BYTES = 100 * 1024;
const NEW_BYTES = 1536 * 1024;
/** Both backends' chunk sizes are multiples of this. */
const SEGMENT = 512 * 1024;

export const CRASH_CASES: readonly CrashCase[] = [
  {
    id: 'rename-across',
    title: 'rename to a new name in another directory',
    async setup(dir) {
      await mkdir(join(dir, 'src'));
      await mkdir(join(dir, 'dst'));
      await writeFile(join(dir, 'src/f'), text(this.id, 'f'));
    },
    async run(dir) {
      await rename(join(dir, 'src/f'), join(dir, 'dst/g'));
    },
    async check(dir) {
      const f = await content(join(dir, 'src/f'));
      const g = await content(join(dir, 'dst/g'));
      const want = text(this.id, 'f');
      if (same(f, want) && g === undefined) return { outcome: 'old', problems: [] };
      if (f === undefined && same(g, want)) return { outcome: 'new', problems: [] };
      return { outcome: 'broken', problems: [`src/f is ${show(f)}, dst/g is ${show(g)}: the file must be in exactly one place, intact`] };
    },
  },
  {
    id: 'rename-over',
    title: 'rename over an existing name in another directory',
    async setup(dir) {
      await mkdir(join(dir, 's'));
      await mkdir(join(dir, 't'));
      await writeFile(join(dir, 's/a'), text(this.id, 'a'));
      await writeFile(join(dir, 't/b'), text(this.id, 'b'));
    },
    async run(dir) {
      await rename(join(dir, 's/a'), join(dir, 't/b'));
    },
    async check(dir) {
      const a = await content(join(dir, 's/a'));
      const b = await content(join(dir, 't/b'));
      if (same(a, text(this.id, 'a')) && same(b, text(this.id, 'b'))) return { outcome: 'old', problems: [] };
      if (a === undefined && same(b, text(this.id, 'a'))) return { outcome: 'new', problems: [] };
      return { outcome: 'broken', problems: [`s/a is ${show(a)}, t/b is ${show(b)}: expected both as before, or only t/b holding a's content`] };
    },
  },
  {
    id: 'link',
    title: 'hard link into another directory',
    async setup(dir) {
      await mkdir(join(dir, 'd'));
      await mkdir(join(dir, 'e'));
      await writeFile(join(dir, 'd/f'), text(this.id, 'f'));
    },
    async run(dir) {
      await link(join(dir, 'd/f'), join(dir, 'e/h'));
    },
    async check(dir) {
      const f = await content(join(dir, 'd/f'));
      const h = await content(join(dir, 'e/h'));
      const want = text(this.id, 'f');
      if (same(f, want) && h === undefined) return { outcome: 'old', problems: [] };
      if (same(f, want) && same(h, want) && (await inoOf(join(dir, 'd/f'))) === (await inoOf(join(dir, 'e/h')))) {
        return { outcome: 'new', problems: [] };
      }
      return { outcome: 'broken', problems: [`d/f is ${show(f)}, e/h is ${show(h)}: expected d/f alone, or both names of one inode`] };
    },
  },
  {
    id: 'unlink-last',
    title: 'unlink of a file with one name',
    async setup(dir) {
      await mkdir(join(dir, 'd'));
      await writeFile(join(dir, 'd/f'), text(this.id, 'f'));
      await writeFile(join(dir, 'd/keep'), text(this.id, 'keep'));
    },
    async run(dir) {
      await unlink(join(dir, 'd/f'));
    },
    async check(dir) {
      const f = await content(join(dir, 'd/f'));
      const problems = same(await content(join(dir, 'd/keep')), text(this.id, 'keep')) ? [] : ['d/keep changed'];
      if (same(f, text(this.id, 'f'))) return { outcome: 'old', problems };
      if (f === undefined) return { outcome: 'new', problems };
      return { outcome: 'broken', problems: [...problems, `d/f is ${show(f)}`] };
    },
  },
  {
    id: 'unlink-one-of-two',
    title: 'unlink of one of two hard links',
    async setup(dir) {
      await mkdir(join(dir, 'd'));
      await writeFile(join(dir, 'd/f'), text(this.id, 'f'));
      await link(join(dir, 'd/f'), join(dir, 'd/h'));
    },
    async run(dir) {
      await unlink(join(dir, 'd/h'));
    },
    async check(dir) {
      const f = await content(join(dir, 'd/f'));
      const h = await content(join(dir, 'd/h'));
      const want = text(this.id, 'f');
      if (same(f, want) && same(h, want)) return { outcome: 'old', problems: [] };
      if (same(f, want) && h === undefined) return { outcome: 'new', problems: [] };
      return { outcome: 'broken', problems: [`d/f is ${show(f)}, d/h is ${show(h)}`] };
    },
  },
  {
    id: 'rmdir',
    title: 'rmdir of an empty directory',
    async setup(dir) {
      await mkdir(join(dir, 'd'));
      await mkdir(join(dir, 'd/sub'));
      await writeFile(join(dir, 'd/keep'), text(this.id, 'keep'));
    },
    async run(dir) {
      await rmdir(join(dir, 'd/sub'));
    },
    async check(dir) {
      const sub = await isDirectory(join(dir, 'd/sub'));
      const problems = same(await content(join(dir, 'd/keep')), text(this.id, 'keep')) ? [] : ['d/keep changed'];
      if (sub === true) return { outcome: 'old', problems };
      if (sub === undefined) return { outcome: 'new', problems };
      return { outcome: 'broken', problems: [...problems, 'd/sub is no longer a directory'] };
    },
  },
  {
    id: 'create',
    title: 'create of an empty file',
    async setup(dir) {
      await mkdir(join(dir, 'd'));
    },
    async run(dir) {
      const fh = await open(join(dir, 'd/new'), 'wx');
      await fh.close();
    },
    async check(dir) {
      const f = await content(join(dir, 'd/new'));
      if (f === undefined) return { outcome: 'old', problems: [] };
      if (f.length === 0) return { outcome: 'new', problems: [] };
      return { outcome: 'broken', problems: [`d/new is ${show(f)}`] };
    },
  },
  {
    id: 'write-close',
    title: 'write of several chunks over a file, then close',
    async setup(dir) {
      await mkdir(join(dir, 'd'));
      await writeFile(join(dir, 'd/f'), patternBytes(OLD_BYTES, 1));
    },
    async run(dir) {
      const fh = await open(join(dir, 'd/f'), 'r+');
      try {
        await fh.write(patternBytes(NEW_BYTES, 2), 0, NEW_BYTES, 0);
      } finally {
        await fh.close();
      }
    },
    async check(dir) {
      const f = await content(join(dir, 'd/f'));
      const before = patternBytes(OLD_BYTES, 1);
      const after = patternBytes(NEW_BYTES, 2);
      if (same(f, before)) return { outcome: 'old', problems: [] };
      if (same(f, after)) return { outcome: 'new', problems: [] };
      if (f === undefined) return { outcome: 'broken', problems: ['d/f is gone'] };
      // The inode grows before the bytes past its end are stored, and each chunk's bytes are
      // replaced whole: between, the size is anywhere from old to new, and each chunk holds
      // either the new bytes or the old ones (zeros past the old end). Chunks are 512 KiB on
      // memcached and 1 MiB on LMDB: both are whole 512 KiB segments.
      const problems: string[] = [];
      if (f.length < OLD_BYTES || f.length > NEW_BYTES) problems.push(`d/f is ${f.length} bytes, outside [${OLD_BYTES}, ${NEW_BYTES}]`);
      const segments: string[] = [];
      for (let at = 0; at < f.length; at += SEGMENT) {
        const got = f.subarray(at, Math.min(f.length, at + SEGMENT));
        const oldSegment = Buffer.alloc(got.length);
        before.copy(oldSegment, 0, Math.min(at, OLD_BYTES), Math.min(at + got.length, OLD_BYTES));
        if (got.equals(after.subarray(at, at + got.length))) segments.push('new');
        else if (got.equals(oldSegment)) segments.push('old');
        else {
          segments.push('?');
          problems.push(`d/f bytes [${at}, ${at + got.length}) are neither the new ones nor the old ones (zeros past the old end)`);
        }
      }
      return { outcome: `size ${f.length}, segments ${segments.join('+')}`, problems };
    },
  },
];
