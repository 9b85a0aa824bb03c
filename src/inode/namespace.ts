import type { QueuedOptions } from '../cas/commit-queue.js';
import type { Transaction } from '../cas/transaction.js';
import { IntegrityError } from '../backends/errors.js';
import { FsError } from './fs-error.js';
import type { InodeTable } from './inode-table.js';
import { ROOT_INO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_ISGID, isDir, isReg, type DirEntry, type InodeRecord } from './records.js';
import { now } from './timespec.js';
import type { Volume } from './volume.js';

/** Who asks: the requesting process's ids, from FUSE. */
export interface Caller {
  readonly uid: number;
  readonly gid: number;
}

/** A new inode and its record as created. */
export interface Created {
  readonly ino: number;
  readonly record: InodeRecord;
}

/** renameat2 flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

/** Longest name in bytes, as on Linux local filesystems. */
export const NAME_MAX = 255;
/** Longest symlink target in bytes (PATH_MAX). */
export const SYMLINK_MAX = 4095;

export function checkName(name: string): void {
  if (Buffer.byteLength(name) > NAME_MAX) throw new FsError('ENAMETOOLONG');
  if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new FsError('EINVAL');
}

/**
 * Operations on names: each is one transaction over the records it reads and writes (parent
 * directories' tree nodes, their inodes, the inodes named), committed atomically, so a crash
 * leaves every rename or link entirely done or not at all.
 */
export class Namespace {
  constructor(
    private readonly volume: Volume,
    private readonly inodes: InodeTable,
    /** Whether an inode is open on this mount: its record then outlives its last name. */
    private readonly isOpen: (ino: number) => boolean,
  ) {}

  private transact<T>(body: (tx: Transaction) => Promise<T>, options?: QueuedOptions): Promise<T> {
    return this.volume.transact(body, options);
  }

  /**
   * @param fresh read past the record cache: the caller found the cached answer stale (its
   *   inode is gone, as when another mount replaced the name)
   * @throws FsError ENAMETOOLONG, ENOTDIR
   */
  async lookup(parent: number, name: string, fresh = false): Promise<DirEntry | undefined> {
    if (name.length > NAME_MAX / 4 && Buffer.byteLength(name) > NAME_MAX) throw new FsError('ENAMETOOLONG');
    const find = async (tx: Transaction, freshMiss: boolean) => {
      const dir = await this.inodes.read(tx, parent);
      if (!isDir(dir.mode)) throw new FsError('ENOTDIR');
      return this.volume.dirs.lookup(tx, parent, name, freshMiss);
    };
    if (fresh) return this.volume.transact((tx) => find(tx, false), { uncached: true });
    // A miss is never answered from a cached directory record: a file another mount has just
    // created and closed must be found by an open here (close-to-open), however recently this
    // mount read the directory. Only the leaf is read again, in the same transaction.
    return this.transact((tx) => find(tx, true));
  }

  /**
   * Creates a file, directory, fifo, device or symlink named `name` in `parent`.
   * @param mode full st_mode (type bits included), already masked by the kernel's umask
   * @throws FsError EEXIST, ENOTDIR, ENOENT (parent gone), ENAMETOOLONG
   */
  async create(
    parent: number,
    name: string,
    mode: number,
    caller: Caller,
    extra: { rdev?: number; target?: string; opened?: boolean } = {},
  ): Promise<number> {
    return (await this.createEntry(parent, name, mode, caller, extra)).ino;
  }

  /**
   * {@link create}, also giving the new inode's record as written, so that a FUSE reply needs
   * no second read of it.
   */
  async createEntry(
    parent: number,
    name: string,
    mode: number,
    caller: Caller,
    extra: { rdev?: number; target?: string; opened?: boolean } = {},
  ): Promise<Created> {
    checkName(name);
    if (extra.target !== undefined && Buffer.byteLength(extra.target) > SYMLINK_MAX) throw new FsError('ENAMETOOLONG');
    const ino = await this.volume.allocator.allocate();
    const directory = (mode & S_IFMT) === S_IFDIR;
    const record = await this.transact(async (tx) => {
      const dir = await this.inodes.read(tx, parent);
      if (!isDir(dir.mode)) throw new FsError('ENOTDIR');
      if (dir.nlink === 0) throw new FsError('ENOENT');
      await this.volume.dirs.insert(tx, parent, name, [ino, mode & S_IFMT]);
      const t = now();
      // BSD group semantics under a setgid directory, as ext4 and xfs do.
      const inheritGid = (dir.mode & S_ISGID) !== 0;
      const record: InodeRecord = {
        mode: directory && inheritGid ? mode | S_ISGID : mode,
        uid: caller.uid,
        gid: inheritGid ? dir.gid : caller.gid,
        nlink: directory ? 2 : 1,
        size: extra.target !== undefined ? Buffer.byteLength(extra.target) : 0,
        atime: t,
        mtime: t,
        ctime: t,
        rdev: extra.rdev ?? 0,
      };
      if (directory) {
        record.parent = parent;
        this.volume.dirs.createEmpty(tx, ino);
        dir.nlink += 1;
      }
      if (extra.target !== undefined) record.target = extra.target;
      this.inodes.create(tx, ino, record);
      dir.mtime = dir.ctime = t;
      this.inodes.write(tx, parent, dir);
      // A file created open is committed with its first close (or sooner): see OpenFiles.flush.
      return record;
    }, { defer: extra.opened === true && (mode & S_IFMT) === S_IFREG });
    return { ino, record };
  }

  /** Creates a symlink `name` -> `target`. */
  symlink(parent: number, name: string, target: string, caller: Caller): Promise<number> {
    return this.create(parent, name, S_IFLNK | 0o777, caller, { target });
  }

  /** {@link symlink}, also giving the new inode's record as written. */
  symlinkEntry(parent: number, name: string, target: string, caller: Caller): Promise<Created> {
    return this.createEntry(parent, name, S_IFLNK | 0o777, caller, { target });
  }

  /**
   * A new name for an existing non-directory.
   * @throws FsError EPERM for a directory, EEXIST, EMLINK past 65,000 links
   */
  async link(ino: number, parent: number, name: string): Promise<void> {
    checkName(name);
    await this.transact(async (tx) => {
      const target = await this.inodes.read(tx, ino);
      if (isDir(target.mode)) throw new FsError('EPERM');
      if (target.nlink >= 65_000) throw new FsError('EMLINK');
      const dir = await this.inodes.read(tx, parent);
      if (!isDir(dir.mode)) throw new FsError('ENOTDIR');
      await this.volume.dirs.insert(tx, parent, name, [ino, target.mode & S_IFMT]);
      const t = now();
      target.nlink += 1;
      target.ctime = t;
      this.inodes.write(tx, ino, target);
      dir.mtime = dir.ctime = t;
      this.inodes.write(tx, parent, dir);
    });
  }

  /** @throws FsError ENOENT, EISDIR for a directory */
  async unlink(parent: number, name: string): Promise<void> {
    await this.transact(async (tx) => {
      const dir = await this.inodes.read(tx, parent);
      const entry = await this.volume.dirs.lookup(tx, parent, name);
      if (!entry) throw new FsError('ENOENT');
      if (entry[1] === S_IFDIR) throw new FsError('EISDIR');
      await this.volume.dirs.remove(tx, parent, name);
      const t = now();
      await this.dropLink(tx, entry[0], t);
      dir.mtime = dir.ctime = t;
      this.inodes.write(tx, parent, dir);
    });
  }

  /** @throws FsError ENOENT, ENOTDIR, ENOTEMPTY, EBUSY for the root */
  async rmdir(parent: number, name: string): Promise<void> {
    await this.transact(async (tx) => {
      const dir = await this.inodes.read(tx, parent);
      const entry = await this.volume.dirs.lookup(tx, parent, name);
      if (!entry) throw new FsError('ENOENT');
      if (entry[1] !== S_IFDIR) throw new FsError('ENOTDIR');
      const t = now();
      await this.removeDirectory(tx, entry[0], t);
      await this.volume.dirs.remove(tx, parent, name);
      dir.nlink -= 1;
      dir.mtime = dir.ctime = t;
      this.inodes.write(tx, parent, dir);
    });
  }

  /**
   * Moves `fromParent/fromName` to `toParent/toName`, replacing a compatible target, in one
   * atomic commit.
   * @param flags RENAME_NOREPLACE: EEXIST when the target exists; RENAME_EXCHANGE: swap the two
   *   names (see {@link exchange})
   * @throws FsError ENOENT, EEXIST, EINVAL (directory into itself), ENOTDIR, EISDIR, ENOTEMPTY
   */
  async rename(fromParent: number, fromName: string, toParent: number, toName: string, flags = 0): Promise<void> {
    if (flags & RENAME_EXCHANGE) {
      if (flags & RENAME_NOREPLACE) throw new FsError('EINVAL');
      return this.exchange(fromParent, fromName, toParent, toName);
    }
    if (flags & ~RENAME_NOREPLACE) throw new FsError('EINVAL');
    checkName(toName);
    await this.transact(async (tx) => {
      const src = await this.volume.dirs.lookup(tx, fromParent, fromName);
      if (!src) throw new FsError('ENOENT');
      const toDir = await this.inodes.read(tx, toParent);
      if (!isDir(toDir.mode)) throw new FsError('ENOTDIR');
      if (toDir.nlink === 0) throw new FsError('ENOENT');
      const dst = await this.volume.dirs.lookup(tx, toParent, toName);
      if (dst && flags & RENAME_NOREPLACE) throw new FsError('EEXIST');
      if (dst && dst[0] === src[0]) return; // same inode: POSIX says do nothing
      const srcIsDir = src[1] === S_IFDIR;
      if (srcIsDir && fromParent !== toParent) await this.refuseMoveIntoItself(tx, src[0], toParent);
      const t = now();
      if (dst) {
        const dstIsDir = dst[1] === S_IFDIR;
        if (srcIsDir && !dstIsDir) throw new FsError('ENOTDIR');
        if (!srcIsDir && dstIsDir) throw new FsError('EISDIR');
        if (dstIsDir) {
          await this.removeDirectory(tx, dst[0], t);
          toDir.nlink -= 1;
        } else {
          await this.dropLink(tx, dst[0], t);
        }
      }
      await this.volume.dirs.remove(tx, fromParent, fromName);
      await this.volume.dirs.set(tx, toParent, toName, src);
      const moved = await this.inodes.read(tx, src[0]);
      moved.ctime = t;
      if (srcIsDir && fromParent !== toParent) {
        moved.parent = toParent;
        toDir.nlink += 1;
      }
      this.inodes.write(tx, src[0], moved);
      toDir.mtime = toDir.ctime = t;
      this.inodes.write(tx, toParent, toDir);
      if (fromParent !== toParent) {
        const fromDir = await this.inodes.read(tx, fromParent);
        if (srcIsDir) fromDir.nlink -= 1;
        fromDir.mtime = fromDir.ctime = t;
        this.inodes.write(tx, fromParent, fromDir);
      }
    });
  }

  /**
   * renameat2(RENAME_EXCHANGE): `aParent/aName` and `bParent/bName` trade places, both names
   * staying taken throughout, in one atomic commit. Directories moved to another parent get it
   * as their parent, and the parents' link counts follow.
   * @throws FsError ENOENT when either name is missing, EINVAL (a directory into itself)
   */
  async exchange(aParent: number, aName: string, bParent: number, bName: string): Promise<void> {
    await this.transact(async (tx) => {
      const a = await this.volume.dirs.lookup(tx, aParent, aName);
      const b = await this.volume.dirs.lookup(tx, bParent, bName);
      if (!a || !b) throw new FsError('ENOENT');
      if (a[0] === b[0]) return;
      const aIsDir = a[1] === S_IFDIR;
      const bIsDir = b[1] === S_IFDIR;
      const moves = aParent !== bParent;
      if (moves && aIsDir) await this.refuseMoveIntoItself(tx, a[0], bParent);
      if (moves && bIsDir) await this.refuseMoveIntoItself(tx, b[0], aParent);
      await this.volume.dirs.set(tx, aParent, aName, b);
      await this.volume.dirs.set(tx, bParent, bName, a);
      const t = now();
      for (const [entry, isDirectory, newParent] of [[a, aIsDir, bParent], [b, bIsDir, aParent]] as const) {
        const record = await this.inodes.read(tx, entry[0]);
        record.ctime = t;
        if (isDirectory && moves) record.parent = newParent;
        this.inodes.write(tx, entry[0], record);
      }
      const aDir = await this.inodes.read(tx, aParent);
      aDir.mtime = aDir.ctime = t;
      if (!moves) {
        this.inodes.write(tx, aParent, aDir);
        return;
      }
      const bDir = await this.inodes.read(tx, bParent);
      bDir.mtime = bDir.ctime = t;
      const shift = Number(aIsDir) - Number(bIsDir); // subdirectories moving from a's parent to b's
      aDir.nlink -= shift;
      bDir.nlink += shift;
      this.inodes.write(tx, aParent, aDir);
      this.inodes.write(tx, bParent, bDir);
    });
  }

  /** EINVAL when `target` is `moving` or lies below it. Walks parents up to the root. */
  private async refuseMoveIntoItself(tx: Transaction, moving: number, target: number): Promise<void> {
    let at = target;
    for (let hops = 0; hops < 10_000; hops++) {
      if (at === moving) throw new FsError('EINVAL');
      if (at === ROOT_INO) return;
      const dir = await this.inodes.read(tx, at);
      at = dir.parent ?? ROOT_INO;
    }
    throw new IntegrityError(`the parent chain of directory ${target} does not reach the root within 10,000 steps`);
  }

  /** Stages removal of an empty directory's records. @throws FsError ENOTEMPTY */
  private async removeDirectory(tx: Transaction, ino: number, t: InodeRecord['ctime']): Promise<void> {
    if (ino === ROOT_INO) throw new FsError('EBUSY');
    const hidden = await this.volume.dirs.hiddenOnly(tx, ino);
    if (!hidden) throw new FsError('ENOTEMPTY');
    // Files unlinked while open go with the directory; their last close reaps them.
    for (const [fileIno] of hidden) await this.dropLink(tx, fileIno, t);
    await this.volume.dirs.destroy(tx, ino);
    const record = await this.inodes.find(tx, ino);
    if (record) this.inodes.remove(tx, ino);
  }

  /**
   * One name fewer for a non-directory. At zero names the inode goes, with its data listed for
   * deferred deletion in the same commit, unless this mount still has it open (then release
   * finishes the job).
   */
  private async dropLink(tx: Transaction, ino: number, t: InodeRecord['ctime']): Promise<void> {
    const record = await this.inodes.find(tx, ino);
    if (!record) return;
    record.nlink = Math.max(0, record.nlink - 1);
    record.ctime = t;
    if (record.nlink > 0 || this.isOpen(ino)) {
      this.inodes.write(tx, ino, record);
      return;
    }
    this.inodes.remove(tx, ino);
    const garbage = this.volume.garbage.deadInodeRecord(ino, isReg(record.mode) ? record.size : 0);
    tx.create(garbage.key, garbage.value);
  }
}
