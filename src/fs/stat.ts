import type { Attr } from 'fuse-native/lowlevel';
import type { InodeRecord } from '../inode/records.js';
import { isDir } from '../inode/records.js';

/**
 * The attributes the kernel caches for an inode, from its record. st_blocks counts 512-byte
 * units of the size (voldfs does not report holes as unallocated).
 */
/**
 * @param allocated bytes the file holds, if known to be fewer than its size (a sparse file)
 */
export function toAttr(ino: number, r: InodeRecord, allocated = r.size): Attr {
  return {
    ino,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    size: isDir(r.mode) ? 4096 : r.size,
    nlink: r.nlink,
    rdev: r.rdev,
    blksize: 4096,
    blocks: Math.ceil(Math.min(allocated, r.size) / 512),
    atime: r.atime,
    mtime: r.mtime,
    ctime: r.ctime,
  };
}
