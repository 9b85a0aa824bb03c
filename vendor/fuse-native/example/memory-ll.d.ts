// Types of example/memory-ll.js.
import type { Attr, ConnInfo, LowLevelOps, LowLevelOptions, LowLevelSession } from '../lowlevel';

export interface MemoryInode extends Attr {
  ino: number;
  nlookup: number;
  opens: number;
  nlink: number;
  size: number;
  readonly isDir: boolean;
  children: Map<string, number> | null;
  xattrs: Map<string, Buffer> | null;
}

export class MemoryFs {
  constructor(options?: { entryTimeout?: number; attrTimeout?: number });
  readonly session: LowLevelSession;
  /** Handlers; replace one to observe or hold requests (the session looks them up per request). */
  ops: Required<Pick<LowLevelOps, 'lookup' | 'forget' | 'getattr' | 'setattr' | 'readlink' | 'mknod' | 'mkdir' | 'unlink' | 'rmdir' | 'symlink' | 'rename' | 'link' | 'open' | 'create' | 'read' | 'write' | 'fsync' | 'release' | 'opendir' | 'readdir' | 'readdirplus' | 'releasedir' | 'fsyncdir' | 'statfs' | 'setxattr' | 'getxattr' | 'listxattr' | 'removexattr' | 'fallocate' | 'lseek' | 'copyFileRange'>> & LowLevelOps;
  inodes: Map<number, MemoryInode>;
  entryTimeout: number;
  attrTimeout: number;
  mount(dir: string, options?: LowLevelOptions): Promise<ConnInfo>;
  unmount(): Promise<void>;
  /** Lookups minus forgets of an inode. */
  lookups(ino: number): number;
}

export const CHUNK: number;
