import Fuse from 'fuse-native';
import type { Logger } from 'pino';
import type { FileSystem } from '../inode/filesystem.js';
import { makeOperations } from './operations.js';

export interface FuseMountOptions {
  /** Seconds the kernel may cache attributes and names (attr_timeout, entry_timeout). */
  readonly cacheSeconds: number;
  /** Let other users than the mounting one in (needs root or user_allow_other). */
  readonly allowOther: boolean;
  readonly debug: boolean;
}

/**
 * The filesystem attached to a directory through the kernel.
 *
 * Kernel options, chosen deliberately:
 * - big_writes + max_write=128 KiB: without them libfuse 2 sends 4 KiB writes.
 * - use_ino: our inode numbers reach stat(2), so hard links share st_ino (cp -a, tar, rsync -H).
 * - no hard_remove: a file unlinked while open is renamed to .fuse_hidden<id> by libfuse, so
 *   fstat, fchmod and futimens on it keep working (with hard_remove libfuse 2 answers them
 *   ENOENT); such names are hidden from listings and from rmdir's emptiness check.
 * - default_permissions: the kernel checks mode bits against the caller (EACCES, EPERM), as a
 *   local filesystem does.
 * - entry timeout of `cacheSeconds`: close-to-open consistency between mounts holds because
 *   open re-reads the inode; a name may lag another mount by this much.
 * - attr timeout 0: libfuse 2's path API gives each name of a hard-linked file its own kernel
 *   inode, so the kernel could not see that a link or unlink through one name changed the
 *   nlink and ctime shown through another. Every stat asks us; our record cache answers.
 */
export class FuseMount {
  private readonly fuse: Fuse;

  constructor(
    readonly mountpoint: string,
    fs: FileSystem,
    log: Logger,
    options: FuseMountOptions,
  ) {
    // The binding's caller context is valid only synchronously at the start of a handler,
    // which is where the operations read it.
    const ops = makeOperations(fs, log, () => {
      const ctx = this.fuse.callerContext();
      return { uid: ctx.uid, gid: ctx.gid };
    });
    this.fuse = new Fuse(mountpoint, ops, {
      fsname: 'voldfs',
      subtype: 'voldfs',
      bigWrites: true,
      maxWrite: 128 * 1024,
      maxRead: 128 * 1024,
      useIno: true,
      defaultPermissions: true,
      allowOther: options.allowOther,
      attrTimeout: 0,
      entryTimeout: options.cacheSeconds,
      negativeTimeout: 0,
      debug: options.debug,
      // Our store calls have their own bounded timeouts; the binding's 15 s default would
      // answer ETIMEDOUT to a slow but healthy operation (a large truncate, a big rename).
      timeout: false,
    });
  }

  mount(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.fuse.mount((err: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  unmount(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.fuse.unmount((err: Error | null) => (err ? reject(err) : resolve()));
    });
  }
}
