import type { ByteOffset } from '../chunk/byte-offset.js';
import type { Timespec } from './timespec.js';

/** File types, as the S_IFMT bits of st_mode. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISGID = 0o2000;

export const isDir = (mode: number) => (mode & S_IFMT) === S_IFDIR;
export const isReg = (mode: number) => (mode & S_IFMT) === S_IFREG;
export const isLnk = (mode: number) => (mode & S_IFMT) === S_IFLNK;

/** Number of the root directory's inode. */
export const ROOT_INO = 1;

/**
 * An inode record. `mode` is the whole st_mode (type and permission bits). Directories keep
 * their parent's number (directories have exactly one name), which rename needs to refuse
 * moving a directory into its own subtree.
 */
export interface InodeRecord {
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  /** Bytes; a bigint past 2^53 - 1 (see ByteOffset). */
  size: ByteOffset;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  rdev: number;
  /** Directories only: the parent directory's inode number. */
  parent?: number;
  /** Symlinks only. */
  target?: string;
  /** Extended attributes, name -> value. */
  xattrs?: Record<string, Buffer>;
}

/** A directory entry as a leaf stores it: inode number and st_mode type bits. */
export type DirEntry = [ino: number, type: number];

/**
 * A node of a directory's hash tree. A leaf holds entries; a full leaf is replaced by a
 * split node pointing at `fanout` children named `<nonce>.<i>`. A split node never changes
 * again, so it can be cached for as long as the directory exists.
 */
export type DirNode =
  | { kind: 'leaf'; entries: Record<string, DirEntry> }
  | { kind: 'split'; nonce: string; fanout: number; depth: number };

/**
 * The volume's identity and geometry, written once by mkfs. Mount refuses a store that holds a
 * different format version.
 */
export interface SuperblockRecord {
  format: number;
  volumeId: string;
  /** Bytes per chunk (= largest block); a file's chunk i covers [i*chunkSize, (i+1)*chunkSize). */
  chunkSize: number;
  createdAt: number;
  /** Translator stack settings (crypt parameters, erasure k+m), recorded at mkfs. */
  translators: Record<string, unknown>;
  /**
   * Copies of every metadata record, on distinct failure domains (m+1 for erasure k+m on a
   * store with several domains; src/backends/wrappers/replicated-store.ts). Absent: 1.
   */
  metaReplicas?: number;
}

/** Records due for deletion once no reader can still hold a reference to them. */
export interface GarbageRecord {
  /** ms since epoch after which the records may be deleted. */
  notBefore: number;
  /** Blocks to delete. */
  blocks?: { id: string; length: number; detail?: unknown }[];
  /** Inodes whose chunk maps, blocks and inode record are to be deleted (nlink reached 0). */
  inodes?: { ino: number; size: ByteOffset }[];
}
