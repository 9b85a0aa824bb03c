import type { Transaction } from '../cas/transaction.js';
import { type ByteOffset, MAX_FILE_SIZE } from '../chunk/byte-offset.js';
import { FsError } from './fs-error.js';
import type { InodeTable } from './inode-table.js';
import type { OpenFiles } from './open-files.js';
import { S_IFMT, isDir, isReg, type InodeRecord } from './records.js';
import { now, type Timespec } from './timespec.js';
import type { Volume } from './volume.js';

/** utimensat's special nanosecond values. */
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;
/** Largest xattr value, as Linux's XATTR_SIZE_MAX. */
export const XATTR_SIZE_MAX = 65536;
const POSIX_ACL_NAMES = new Set(['system.posix_acl_access', 'system.posix_acl_default']);
/** All xattrs of one inode together, so the inode record stays well under item limits. */
const XATTR_TOTAL_MAX = 256 * 1024;

/**
 * Inode attributes: stat, chmod, chown, utimens, truncate, extended attributes, symlink targets.
 * Each change is a CAS update of the one inode record (truncate also rewrites chunks).
 */
export class Attributes {
  constructor(
    private readonly volume: Volume,
    private readonly inodes: InodeTable,
    private readonly open: OpenFiles,
  ) {}

  /**
   * @param defer answer before the commit (chmod, chown, utimens): a replay after a conflict
   *   can only fail if the inode went meanwhile, when the change no longer matters
   */
  private update(
    ino: number,
    change: (record: InodeRecord, tx: Transaction) => void | Promise<void>,
    defer = false,
  ): Promise<InodeRecord> {
    return this.volume.transact(
      async (tx) => {
        const record = await this.inodes.read(tx, ino);
        await change(record, tx);
        this.inodes.write(tx, ino, record);
        return record;
      },
      { defer },
    );
  }

  /** The inode as stat shows it, with this mount's unpersisted writes. */
  async stat(ino: number): Promise<InodeRecord> {
    const record = await this.volume.transact((tx) => this.inodes.read(tx, ino));
    return this.open.overlay(ino, record);
  }

  /** @returns the inode as stat shows it after the change */
  async chmod(ino: number, mode: number): Promise<InodeRecord> {
    const record = await this.update(ino, (r) => {
      r.mode = (r.mode & S_IFMT) | (mode & 0o7777);
      r.ctime = now();
    }, true);
    return this.open.overlay(ino, record);
  }

  /**
   * `-1` (0xffffffff) leaves an id unchanged, as chown(2) does.
   * @returns the inode as stat shows it after the change
   */
  async chown(ino: number, uid: number, gid: number): Promise<InodeRecord> {
    const record = await this.update(ino, (r) => {
      if (uid !== -1 && uid !== 0xffffffff) r.uid = uid;
      if (gid !== -1 && gid !== 0xffffffff) r.gid = gid;
      // Dropping set-id bits on chown is the kernel's: it sends us the new mode as a chmod.
      r.ctime = now();
    }, true);
    return this.open.overlay(ino, record);
  }

  /**
   * Sets atime and mtime; nsec UTIME_NOW means now, UTIME_OMIT leaves that time alone.
   * @returns the inode as stat shows it after the change
   */
  async utimens(ino: number, atime: Timespec, mtime: Timespec): Promise<InodeRecord> {
    // Data still buffered is stored at close with its size, but no longer with its write time.
    if (mtime.nsec !== UTIME_OMIT && !this.open.supersedeWriteTime(ino)) await this.open.persistIno(ino);
    const t = now();
    const record = await this.update(ino, (r) => {
      if (atime.nsec !== UTIME_OMIT) r.atime = atime.nsec === UTIME_NOW ? t : atime;
      if (mtime.nsec !== UTIME_OMIT) r.mtime = mtime.nsec === UTIME_NOW ? t : mtime;
      r.ctime = t;
    }, true);
    return this.open.overlay(ino, record);
  }

  /**
   * Sets the size: shrinking cuts the data (blocks past the end are retired), growing leaves a
   * hole that reads as zeros.
   * @returns the inode as stat shows it after the change
   * @throws FsError EISDIR, EINVAL for non-regular files, EFBIG
   */
  async truncate(ino: number, size: ByteOffset): Promise<InodeRecord> {
    if (size < 0) throw new FsError('EINVAL');
    if (size > MAX_FILE_SIZE) throw new FsError('EFBIG');
    await this.open.persistIno(ino);
    const before = await this.stat(ino);
    if (isDir(before.mode)) throw new FsError('EISDIR');
    if (!isReg(before.mode)) throw new FsError('EINVAL');
    // Data first, then the size: a crash in between leaves the old size over zeros, never
    // old bytes reappearing past a new end.
    await this.open.truncated(ino, size);
    await this.volume.data.truncate(ino, before.size, size);
    const t = now();
    const record = await this.update(ino, (r) => {
      r.size = size;
      r.mtime = r.ctime = t;
    });
    return this.open.overlay(ino, record);
  }

  async readlink(ino: number): Promise<string> {
    const record = await this.stat(ino);
    if (record.target === undefined) throw new FsError('EINVAL');
    return record.target;
  }

  /** @throws FsError ENODATA when absent, ERANGE is the binding's business */
  async getxattr(ino: number, name: string): Promise<Buffer> {
    const record = await this.stat(ino);
    const value = record.xattrs?.[name];
    if (value === undefined) throw new FsError('ENODATA');
    return Buffer.from(value);
  }

  async listxattr(ino: number): Promise<string[]> {
    return Object.keys((await this.stat(ino)).xattrs ?? {});
  }

  /**
   * @param flags XATTR_CREATE (fail with EEXIST if present) or XATTR_REPLACE (ENODATA if absent)
   * @throws FsError E2BIG above XATTR_SIZE_MAX, ENOSPC when the inode's xattrs would exceed 256 KiB
   */
  async setxattr(ino: number, name: string, value: Buffer, flags: number): Promise<void> {
    if (Buffer.byteLength(name) > 255 || name.length === 0) throw new FsError('ERANGE');
    // POSIX ACLs would be stored but never enforced (the mount does not ask the kernel to), and a
    // stored ACL that does not change the mode misleads cp -a: refuse them, as a filesystem
    // mounted with noacl does; tools then fall back to chmod.
    if (POSIX_ACL_NAMES.has(name)) throw new FsError('ENOTSUP');
    if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG');
    await this.update(ino, (r) => {
      const xattrs = r.xattrs ?? {};
      const exists = Object.hasOwn(xattrs, name);
      if (flags & XATTR_CREATE && exists) throw new FsError('EEXIST');
      if (flags & XATTR_REPLACE && !exists) throw new FsError('ENODATA');
      xattrs[name] = Buffer.from(value);
      let total = 0;
      for (const [k, v] of Object.entries(xattrs)) total += k.length + v.length;
      if (total > XATTR_TOTAL_MAX) throw new FsError('ENOSPC');
      r.xattrs = xattrs;
      r.ctime = now();
    });
  }

  async removexattr(ino: number, name: string): Promise<void> {
    await this.update(ino, (r) => {
      if (!r.xattrs || !Object.hasOwn(r.xattrs, name)) throw new FsError('ENODATA');
      delete r.xattrs[name];
      r.ctime = now();
    });
  }
}
