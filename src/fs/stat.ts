import type { InodeRecord } from '../inode/records.js';
import { isDir } from '../inode/records.js';

/** The stat object the FUSE binding takes, times with nanoseconds. */
export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev: number;
  nlink: number;
  ino: number;
  rdev: number;
  blksize: number;
  blocks: number;
  atime: { sec: number; nsec: number };
  mtime: { sec: number; nsec: number };
  ctime: { sec: number; nsec: number };
}

/** st_blocks counts 512-byte units actually allocated: sparse files report less than size. */
export function toFuseStat(ino: number, r: InodeRecord): FuseStat {
  return {
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    size: isDir(r.mode) ? 4096 : r.size,
    dev: 0,
    nlink: r.nlink,
    ino,
    rdev: r.rdev,
    blksize: 4096,
    blocks: Math.ceil(r.size / 512),
    atime: r.atime,
    mtime: r.mtime,
    ctime: r.ctime,
  };
}
