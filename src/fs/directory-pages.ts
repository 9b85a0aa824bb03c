import { LRUCache } from 'lru-cache';
import type { FileSystem } from '../inode/filesystem.js';
import type { PositionedEntry } from '../inode/directory-tree.js';
import { FsError } from '../inode/fs-error.js';
import { ROOT_INO, S_IFDIR, type DirEntry } from '../inode/records.js';

/** The offset of the first name after "." and "..": offsets below it are theirs. */
const FIRST_NAME_OFFSET = 3;
/** Names read from the store for one page: a few kernel pages' worth, then kept for the next. */
const NAMES_PER_READ = 256;
/** Names read ahead and kept for every open handle together: what listings may hold at once. */
const NAMES_KEPT_AHEAD = 65_536;

export interface DirSliceEntry {
  readonly name: string;
  readonly entry: DirEntry;
  /** Where the next page starts: the kernel's d_off. */
  readonly off: number;
}

/** What one handle read past its last page: the names from `from` on, and where the store goes on. */
interface ReadAhead {
  from: number;
  entries: PositionedEntry[];
  next: number | undefined;
}

/**
 * Open directory handles and the pages of their listings. An offset is "." (0), ".." (1) or a
 * listing position + {@link FIRST_NAME_OFFSET}: stable while the name exists, so telldir/seekdir
 * work and a listing that meets names coming and going lists each lasting name once, with no
 * copy of the listing per handle. Names read past a page wait for that handle's next page in
 * one cache shared by all handles, bounded by {@link NAMES_KEPT_AHEAD}: a handle whose names
 * were dropped reads them from the store again.
 */
export class DirectoryPages {
  private readonly open = new Set<number>();
  private nextHandle = 1;
  private readonly ahead = new LRUCache<number, ReadAhead>({
    maxSize: NAMES_KEPT_AHEAD,
    sizeCalculation: (kept) => Math.max(1, kept.entries.length),
  });

  constructor(private readonly fs: FileSystem) {}

  openHandle(): number {
    const fh = this.nextHandle++;
    if (this.nextHandle > Number.MAX_SAFE_INTEGER) this.nextHandle = 1;
    this.open.add(fh);
    return fh;
  }

  release(fh: number): void {
    this.open.delete(fh);
    this.ahead.delete(fh);
  }

  /** The entries of directory `ino` from `offset` on that fit in `size` bytes as `sizeOf` counts them. */
  async slice(fh: number | null, ino: number, offset: number, size: number, sizeOf: (name: string) => number): Promise<DirSliceEntry[]> {
    if (fh === null || !this.open.has(fh)) throw new FsError('EBADF');
    const out: DirSliceEntry[] = [];
    let used = 0;
    const fits = (name: string) => {
      used += sizeOf(name);
      return used <= size || out.length === 0;
    };
    if (offset < 2) {
      const record = await this.fs.attributes.stat(ino);
      if (offset < 1 && fits('.')) out.push({ name: '.', entry: [ino, S_IFDIR], off: 1 });
      if (!fits('..')) return out;
      out.push({ name: '..', entry: [record.parent ?? ROOT_INO, S_IFDIR], off: 2 });
    }
    const from = Math.max(0, offset - FIRST_NAME_OFFSET);
    const kept = this.ahead.get(fh);
    this.ahead.delete(fh);
    let read: ReadAhead = kept && kept.from === from && offset >= 2 ? kept : { from, entries: [], next: from };
    let i = 0;
    let resumeAt = from;
    for (;;) {
      if (i === read.entries.length) {
        if (read.next === undefined) return out;
        const page = await this.fs.listPage(ino, read.next, NAMES_PER_READ);
        read = { from: read.next, entries: page.entries, next: page.next };
        i = 0;
        continue;
      }
      const { name, entry, position } = read.entries[i];
      if (!fits(name)) break;
      out.push({ name, entry, off: position + FIRST_NAME_OFFSET + 1 });
      resumeAt = position + 1;
      i++;
    }
    this.ahead.set(fh, { from: resumeAt, entries: read.entries.slice(i), next: read.next });
    return out;
  }
}
