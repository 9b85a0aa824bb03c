// Types of the libfuse3 low-level binding (lowlevel.js). See README.md, "Low-level binding".
import { EventEmitter } from 'events';

/** A 64-bit inode number: a number up to 2^53 - 1, a bigint above (either is accepted). */
export type Ino = number | bigint;

/** A time with nanoseconds; replies also accept a Date, a bigint of ns or a number of ms. */
export interface Timespec {
  sec: number;
  nsec: number;
}
export type TimeInput = Timespec | Date | bigint | number;

/** What the kernel caches about an inode. Missing fields are 0 (nlink 1, blksize 4096, blocks from size). */
export interface Attr {
  ino?: Ino;
  mode: number;
  nlink?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
  size?: number | bigint;
  blksize?: number;
  blocks?: number | bigint;
  atime?: TimeInput;
  mtime?: TimeInput;
  ctime?: TimeInput;
}

/**
 * An entry reply. `ino: 0` (with no attr) is a negative entry: the kernel caches "no such name"
 * for entryTimeout. Timeouts are seconds; they default to the session's.
 */
export interface Entry {
  ino: Ino;
  generation?: number | bigint;
  attr?: Attr;
  attrTimeout?: number;
  entryTimeout?: number;
}

/** Open/create answer. fh is exact up to 2^53. */
export interface FileInfo {
  fh?: number | bigint;
  directIo?: boolean;
  keepCache?: boolean;
  nonseekable?: boolean;
  cacheReaddir?: boolean;
  noflush?: boolean;
}

export interface Statfs {
  bsize?: number;
  frsize?: number;
  blocks?: number | bigint;
  bfree?: number | bigint;
  bavail?: number | bigint;
  files?: number | bigint;
  ffree?: number | bigint;
  favail?: number | bigint;
  namemax?: number;
}

/** struct flock: type is F_RDLCK (0), F_WRLCK (1) or F_UNLCK (2). */
export interface Lock {
  type: number;
  whence: number;
  start: number;
  len: number;
  pid: number;
}

/** readdir entry: `off` is the offset the kernel passes back to continue after this entry. */
export interface DirEntry {
  name: string;
  ino: Ino;
  mode: number;
  off: number;
}

/** readdirplus entry: `entry` counts one lookup when it fits; null gives only ino and mode. */
export interface DirEntryPlus {
  name: string;
  off: number;
  entry: Entry | null;
  ino?: Ino;
  mode?: number;
}

/** The attributes setattr changes: only the fields named by toSet are present. */
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  /** number up to 2^53 - 1, bigint above. */
  size?: number | bigint;
  atime?: Timespec;
  mtime?: Timespec;
  ctime?: Timespec;
  /** The kernel asked for "now" (utimensat UTIME_NOW); atime holds the kernel's clock. */
  atimeNow?: boolean;
  mtimeNow?: boolean;
}

export interface CallerContext {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
}

/** The connection as negotiated at INIT. */
export interface ConnInfo {
  protoMajor: number;
  protoMinor: number;
  capable: number;
  want: number;
  maxWrite: number;
  maxRead: number;
  maxReadahead: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
}

/**
 * One kernel request. Answer it exactly once; a second answer throws an Error with code
 * ERR_FUSE_ALREADY_REPLIED. Every reply returns true when sent, false when the session had
 * already ended (the request was answered EIO at unmount) and the reply was ignored.
 */
export class Request {
  readonly op: number;
  readonly opName: string;
  readonly session: LowLevelSession;
  /** The calling process (valid for the request's whole life, also after an await). */
  readonly context: CallerContext;
  readonly interrupted: boolean;
  /** True until answered, or until the session ended. */
  readonly pending: boolean;
  /** cb runs once when the kernel interrupts this request (also if it already did). */
  onInterrupt(cb: () => void): void;
  /** errno as a number (either sign), a code like 'ENOENT', or an Error with errno/code (else EIO). 0 = success. */
  replyErr(err: number | string | Error | NodeJS.ErrnoException): boolean;
  replyOk(): boolean;
  replyNone(): boolean;
  replyEntry(entry: Entry): boolean;
  replyCreate(entry: Entry, fileInfo?: FileInfo): boolean;
  replyAttr(attr: Attr, timeout?: number): boolean;
  replyReadlink(target: string): boolean;
  replyOpen(fileInfo?: FileInfo): boolean;
  replyWrite(count: number): boolean;
  replyBuf(buf: Uint8Array | null | undefined): boolean;
  replyStatfs(statfs: Statfs): boolean;
  replyXattr(size: number): boolean;
  replyLock(lock: Partial<Lock>): boolean;
  replyLseek(offset: number | bigint): boolean;
  /** Packs as many entries as fit the kernel's buffer; returns how many did. */
  replyDir(entries: Array<DirEntry | DirEntryPlus>): number;
  /** getxattr/listxattr helper: the size when size is 0, ERANGE when too small, else the bytes. */
  replyXattrValue(value: Uint8Array | string, size: number): boolean;
}

type Fh = number | null;

/**
 * Handlers. Each gets the request first and answers it through req.reply*() whenever ready
 * (it may return a promise; a rejection or a synchronous throw answers EIO and propagates).
 * An op left out is answered ENOSYS by libfuse (and the kernel stops asking for some).
 */
export interface LowLevelOps {
  init?(conn: ConnInfo): void;
  destroy?(): void;
  lookup?(req: Request, parent: Ino, name: string): unknown;
  /** Answered in C already (forgets take no reply). */
  forget?(ino: Ino, nlookup: number | bigint): void;
  /** Batched forgets as a flat list [ino, nlookup, ino, nlookup, ...]; replaces forget when given. */
  forgetMulti?(list: Array<number | bigint>): void;
  getattr?(req: Request, ino: Ino, fh: Fh): unknown;
  setattr?(req: Request, ino: Ino, attr: SetAttr, toSet: number, fh: Fh): unknown;
  readlink?(req: Request, ino: Ino): unknown;
  mknod?(req: Request, parent: Ino, name: string, mode: number, rdev: number): unknown;
  mkdir?(req: Request, parent: Ino, name: string, mode: number): unknown;
  unlink?(req: Request, parent: Ino, name: string): unknown;
  rmdir?(req: Request, parent: Ino, name: string): unknown;
  symlink?(req: Request, target: string, parent: Ino, name: string): unknown;
  rename?(req: Request, parent: Ino, name: string, newParent: Ino, newName: string, flags: number): unknown;
  link?(req: Request, ino: Ino, newParent: Ino, newName: string): unknown;
  open?(req: Request, ino: Ino, flags: number): unknown;
  /** Byte offsets (here and below) are numbers up to 2^53 - 1, bigints above (up to 2^63 - 1). */
  read?(req: Request, ino: Ino, size: number, offset: number | bigint, fh: Fh): unknown;
  write?(req: Request, ino: Ino, data: Buffer, offset: number | bigint, fh: Fh, flags: number): unknown;
  flush?(req: Request, ino: Ino, fh: Fh, lockOwner: bigint): unknown;
  release?(req: Request, ino: Ino, fh: Fh, flags: number, lockOwner: bigint, flockRelease: boolean): unknown;
  fsync?(req: Request, ino: Ino, datasync: boolean, fh: Fh): unknown;
  opendir?(req: Request, ino: Ino, flags: number): unknown;
  readdir?(req: Request, ino: Ino, size: number, offset: number | bigint, fh: Fh): unknown;
  readdirplus?(req: Request, ino: Ino, size: number, offset: number | bigint, fh: Fh): unknown;
  releasedir?(req: Request, ino: Ino, fh: Fh): unknown;
  fsyncdir?(req: Request, ino: Ino, datasync: boolean, fh: Fh): unknown;
  statfs?(req: Request, ino: Ino): unknown;
  setxattr?(req: Request, ino: Ino, name: string, value: Buffer, flags: number): unknown;
  getxattr?(req: Request, ino: Ino, name: string, size: number): unknown;
  listxattr?(req: Request, ino: Ino, size: number): unknown;
  removexattr?(req: Request, ino: Ino, name: string): unknown;
  access?(req: Request, ino: Ino, mask: number): unknown;
  create?(req: Request, parent: Ino, name: string, mode: number, flags: number): unknown;
  getlk?(req: Request, ino: Ino, fh: Fh, lock: Lock, lockOwner: bigint): unknown;
  setlk?(req: Request, ino: Ino, fh: Fh, lock: Lock, lockOwner: bigint, sleep: boolean): unknown;
  flock?(req: Request, ino: Ino, fh: Fh, op: number, lockOwner: bigint): unknown;
  fallocate?(req: Request, ino: Ino, mode: number, offset: number | bigint, length: number | bigint, fh: Fh): unknown;
  lseek?(req: Request, ino: Ino, offset: number | bigint, whence: number, fh: Fh): unknown;
  copyFileRange?(req: Request, inoIn: Ino, offIn: number | bigint, fhIn: number, inoOut: Ino, offOut: number | bigint, fhOut: number, len: number | bigint, flags: number): unknown;
}

export interface LowLevelOptions {
  fsname?: string;
  subtype?: string;
  allowOther?: boolean;
  allowRoot?: boolean;
  defaultPermissions?: boolean;
  readOnly?: boolean;
  /** Appended verbatim to the -o list (libfuse3 rejects what it does not know). */
  extraOptions?: string[];
  debug?: boolean;
  /** Default timeouts of entry and attr replies, seconds (1). */
  entryTimeout?: number;
  attrTimeout?: number;
  /** Largest write request, bytes (1 MiB; the kernel's max_pages follows). */
  maxWrite?: number;
  /** 0 keeps the kernel's. */
  maxReadahead?: number;
  /** Kernel write-back caching (off unless asked). */
  writebackCache?: boolean;
  /** readdirplus when ops.readdirplus exists (default on), and the kernel's adaptive use of it. */
  readdirplus?: boolean;
  readdirplusAuto?: boolean;
  /** Send POSIX (fcntl) locks to getlk/setlk; otherwise the kernel keeps them locally. */
  posixLocks?: boolean;
  /** Send flock(2) to ops.flock; otherwise the kernel keeps them locally. */
  flockLocks?: boolean;
  cacheSymlinks?: boolean;
  /** Answer getxattr("security.capability") ENODATA without asking JS (saves a trip per write). */
  noFileCapabilities?: boolean;
  /** Raw FUSE_CAP_* bits to add to / remove from conn->want. */
  wantSet?: number;
  wantClear?: number;
}

export interface UnmountedEvent {
  /** True when the kernel ended the session (umount from outside), false after unmount(). */
  external: boolean;
  errno: number;
}

export class LowLevelSession extends EventEmitter {
  readonly mounted: boolean;
  readonly mountpoint: string | null;
  readonly conn: ConnInfo | null;
  /** Requests handed to JS and not answered yet. */
  readonly outstanding: number;
  /**
   * Requests the kernel sent since the mount, by operation name (ops never sent left out),
   * including those the binding answers itself (forget, getxattr "security.capability" with
   * noFileCapabilities); after the session ended, its last counts.
   */
  requestCounts(): Partial<Record<string, number>>;
  entryTimeout: number;
  attrTimeout: number;
  mount(dir: string, ops: LowLevelOps, options?: LowLevelOptions): Promise<ConnInfo>;
  unmount(): Promise<void>;
  notifyInvalInode(ino: Ino, off?: number, len?: number): Promise<void>;
  notifyInvalEntry(parent: Ino, name: string): Promise<void>;
  notifyDelete(parent: Ino, child: Ino, name: string): Promise<void>;
  on(event: 'unmounted', listener: (e: UnmountedEvent) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'unmounted', listener: (e: UnmountedEvent) => void): this;
}

export const OPS: readonly string[];
export const CAP: Readonly<Record<string, number>>;
export const SET_ATTR: Readonly<{
  MODE: number; UID: number; GID: number; SIZE: number; ATIME: number; MTIME: number;
  ATIME_NOW: number; MTIME_NOW: number; CTIME: number;
}>;
export const RENAME_NOREPLACE: number;
export const RENAME_EXCHANGE: number;
export function mountArgs(options?: LowLevelOptions): string[];
export function capabilities(options: LowLevelOptions, ops: LowLevelOps): { wantSet: number; wantClear: number };
/** Loads the addon (default: build/Release/fuse_lowlevel.node), failing with what to install or run. */
export function loadAddon(file?: string): unknown;
export function loadErrorMessage(file: string, cause: string): string;
