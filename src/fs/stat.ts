import type { Attr } from 'fuse-native/lowlevel';
import { type ByteOffset, sectorsOf, smaller } from '../chunk/byte-offset.js';
import type { InodeRecord } from '../inode/records.js';
import { isDir } from '../inode/records.js';

/**
 * The attributes the kernel caches for an inode, from its record. st_blocks counts 512-byte
 * units of `allocated`, the bytes the file holds if known to be fewer than its size (sparse).
 */
export function toAttr(ino: number, r: InodeRecord, allocated: ByteOffset = r.size): Attr {
  return {
    ino,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    size: isDir(r.mode) ? 4096 : r.size,
    nlink: r.nlink,
    rdev: r.rdev,
    blksize: 4096,
    blocks: sectorsOf(smaller(allocated, r.size)),
    atime: r.atime,
    mtime: r.mtime,
    ctime: r.ctime,
  };
}
