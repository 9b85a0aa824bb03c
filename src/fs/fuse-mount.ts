import { CAP, LowLevelSession, type ConnInfo } from 'fuse-native/lowlevel';
import type { Logger } from 'pino';
import type { FileSystem } from '../inode/filesystem.js';
import { withDataOperations } from './data-operations.js';
import { withLocks } from './lock-operations.js';
import { makeOperations } from './operations.js';
import { makeServe } from './serve-request.js';

export interface FuseMountOptions {
  /** Seconds the kernel may cache attributes and names (attr and entry timeouts). */
  readonly cacheSeconds: number;
  /** Let other users than the mounting one in (needs root or user_allow_other). */
  readonly allowOther: boolean;
  /** libfuse's request trace on stderr. */
  readonly debug: boolean;
  /** `ro`: the kernel answers every write EROFS. */
  readonly readOnly?: boolean;
  /** Kernel mount flags passed as given (nosuid, noatime, ...). */
  readonly kernelOptions?: readonly string[];
  /** Told of every request answered (statistics). */
  readonly observe?: (op: string, seconds: number, errno: number) => void;
  /** Told of the bytes each read and write moved (statistics). */
  readonly countBytes?: (read: number, written: number) => void;
  /**
   * The kernel's write-back cache: writes are gathered in the page cache and sent later in
   * bigger pieces; other mounts see them only once the kernel has sent them (close, fsync).
   */
  readonly writebackCache?: boolean;
}

/** Largest read and write request: libfuse 3.14 asks the kernel for max_pages to match. */
export const MAX_REQUEST_BYTES = 1024 * 1024;

/**
 * The filesystem attached to a directory through the kernel, on libfuse3's low-level API
 * (fuse-native/lowlevel): requests name voldfs's own inode numbers.
 *
 * Kernel options, chosen deliberately:
 * - max_write 1 MiB (and reads as large): one request per MiB rather than eight.
 * - default_permissions: the kernel checks mode bits against the caller (EACCES, EPERM), as a
 *   local filesystem does; no access op is needed.
 * - entry and attr timeouts of `cacheSeconds`: a hard-linked file is one kernel inode, so a
 *   link or unlink through one name invalidates what every name shows. Misses are not cached,
 *   and an open that finds the inode changed by another mount drops the cached attributes
 *   (see makeOperations): close-to-open consistency between mounts holds; a stat without an
 *   open may lag another mount by `cacheSeconds`.
 * - noFileCapabilities: the getxattr("security.capability") the kernel sends before every
 *   write is answered ENODATA without a trip through JavaScript.
 * - capabilities left off: atomic_o_trunc (the kernel truncates with a setattr before open)
 *   and handle_killpriv (the kernel clears set-id bits on write and chown itself, with a
 *   setattr), so those stay the kernel's work, as with libfuse 2.
 * - a file unlinked while open keeps its inode (and no hidden name) until its last release.
 * - posix and flock locks come to voldfs (withLocks), which shares them with the other mounts.
 * - fallocate, lseek SEEK_DATA/SEEK_HOLE and copy_file_range are served (withDataOperations).
 */
export class FuseMount {
  private readonly session = new LowLevelSession();
  private readonly ops;

  constructor(
    readonly mountpoint: string,
    fs: FileSystem,
    private readonly log: Logger,
    private readonly options: FuseMountOptions,
  ) {
    const ops = makeOperations(fs, log, {
      cacheSeconds: options.cacheSeconds,
      // A negative offset drops the attributes only: an open invalidates the pages itself.
      invalidate: (ino) => this.session.notifyInvalInode(ino, -1, 0),
      observe: options.observe,
      countBytes: options.countBytes,
    });
    const serve = makeServe(log, options.observe);
    this.ops = withDataOperations(withLocks(ops, fs.locks, log, serve), fs, serve);
    this.session.on('error', (err: Error) => log.error({ err }, 'FUSE session error'));
  }

  /**
   * Mounts and serves.
   * @param readaheadKib the kernel readahead asked for at INIT (0: the kernel's)
   */
  async mount(readaheadKib = 0): Promise<ConnInfo> {
    const conn = await this.session.mount(this.mountpoint, this.ops, {
      fsname: 'voldfs',
      subtype: 'voldfs',
      allowOther: this.options.allowOther,
      readOnly: this.options.readOnly,
      extraOptions: [...(this.options.kernelOptions ?? [])],
      defaultPermissions: true,
      noFileCapabilities: true,
      entryTimeout: this.options.cacheSeconds,
      attrTimeout: this.options.cacheSeconds,
      maxWrite: MAX_REQUEST_BYTES,
      maxReadahead: readaheadKib * 1024,
      wantClear: CAP.ATOMIC_O_TRUNC | CAP.HANDLE_KILLPRIV,
      posixLocks: true,
      flockLocks: true,
      writebackCache: this.options.writebackCache ?? false,
      debug: this.options.debug,
    });
    this.log.debug({ conn }, 'FUSE connection');
    return conn;
  }

  /** Requests the kernel has sent since the mount, by kind (see LowLevelSession.requestCounts). */
  requestCounts(): Partial<Record<string, number>> {
    return this.session.requestCounts();
  }

  /** Calls `listener` once if the kernel ends the session (fusermount -u, umount -l, abort). */
  onUnmountedOutside(listener: () => void): void {
    this.session.once('unmounted', (event) => {
      if (event.external) listener();
    });
  }

  unmount(): Promise<void> {
    return this.session.unmount();
  }
}
