import { constants } from 'node:os';
import type { Logger } from 'pino';
import { SET_ATTR, type Attr, type DirEntry as KernelDirEntry, type DirEntryPlus, type Entry, type LowLevelOps, type Request } from 'fuse-native/lowlevel';
import type { FileSystem } from '../inode/filesystem.js';
import { UTIME_NOW, UTIME_OMIT } from '../inode/attributes.js';
import { FsError } from '../inode/fs-error.js';
import type { Created } from '../inode/namespace.js';
import { S_IFDIR, S_IFMT, S_IFREG, type InodeRecord } from '../inode/records.js';
import type { Timespec } from '../inode/timespec.js';
import { DirectoryPages } from './directory-pages.js';
import { makeServe, type RequestObserver } from './serve-request.js';
import { toAttr } from './stat.js';

const errno = constants.errno as Record<string, number>;

export interface OperationOptions {
  /** Seconds the kernel may cache names and attributes (entry and attr timeouts). */
  readonly cacheSeconds: number;
  /** Drops the kernel's cached attributes of an inode (a notify_inval_inode). */
  readonly invalidate: (ino: number) => Promise<void>;
  /** Told of every request answered (statistics). */
  readonly observe?: RequestObserver;
  /** Told of the bytes each read and write request moved. */
  readonly countBytes?: (read: number, written: number) => void;
}

/** Bytes of a readdir entry in the kernel's buffer: struct fuse_dirent + name, 8-aligned. */
const direntSize = (name: string) => (24 + Buffer.byteLength(name) + 7) & ~7;
/** The same for readdirplus (struct fuse_direntplus carries the entry and attributes). */
const direntPlusSize = (name: string) => (152 + Buffer.byteLength(name) + 7) & ~7;

const OMIT: Timespec = { sec: 0, nsec: UTIME_OMIT };
const NOW: Timespec = { sec: 0, nsec: UTIME_NOW };

/**
 * The FUSE low-level handlers: each decodes its request, makes one call into the filesystem and
 * answers. Errors become errnos in one place ({@link toErrno}); a handler that throws or whose
 * promise rejects is answered from there too (unexpected errors as EIO), so no rejection ever
 * escapes to the binding (it would take the daemon down, leaving "Transport endpoint is not
 * connected" behind).
 *
 * Inode numbers are voldfs's own (the root is 1, FUSE_ROOT_ID). Every entry and attribute
 * reply lets the kernel cache for `cacheSeconds`; misses are not cached, so a name another
 * mount has just created is found at once (close-to-open). An inode that is gone (deleted by
 * another mount while this kernel still had its name cached) answers ESTALE where the kernel
 * retries: open and stat then look the name up afresh.
 */
export function makeOperations(fs: FileSystem, log: Logger, options: OperationOptions): LowLevelOps {
  const timeout = options.cacheSeconds;
  const directories = new DirectoryPages(fs);
  /**
   * What the kernel was last shown of each inode's size and times: an open that finds the
   * stored inode changed since (by another mount) drops the kernel's cached attributes first,
   * or a read would stop at the old size (close-to-open).
   */
  const shown = new Map<number, string>();
  const signature = (r: InodeRecord) => `${r.size}:${r.mtime.sec}.${r.mtime.nsec}:${r.ctime.sec}.${r.ctime.nsec}`;

  const serve = makeServe(log, options.observe);

  /** The attributes to show of an inode whose record (as stat shows it) is at hand. */
  const attrOf = async (ino: number, record: InodeRecord): Promise<Attr> => {
    shown.set(ino, signature(record));
    // Only files past the chunk index's first group can be sparse enough to matter.
    const allocated = (record.mode & S_IFMT) === S_IFREG ? await fs.volume.data.allocatedBound(ino, record.size) : record.size;
    return toAttr(ino, record, allocated);
  };
  const stat = async (ino: number): Promise<Attr> => attrOf(ino, await fs.attributes.stat(ino));
  const entry = (ino: number, attr: Attr): Entry => ({ ino, generation: 0, attr, attrTimeout: timeout, entryTimeout: timeout });
  const replyEntryOf = async (req: Request, ino: number) => req.replyEntry(entry(ino, await stat(ino)));
  /** The entry of an inode this mount has just created, from the record it wrote (not read again). */
  const createdEntry = async ({ ino, record }: Created): Promise<Entry> => entry(ino, await attrOf(ino, record));

  return {
    lookup(req, parent, name) {
      const dir = Number(parent);
      serve(req, 'lookup', dir, async () => {
        const found = await fs.namespace.lookup(dir, name);
        if (!found) return req.replyErr(errno.ENOENT);
        let attr: Attr;
        try {
          attr = await stat(found[0]);
        } catch (err) {
          // The name led to an inode that is gone: another mount replaced or removed it and
          // the cached directory record is stale (the kernel asks again after an ESTALE).
          if (!(err instanceof FsError && err.code === 'ENOENT')) throw err;
          const again = await fs.namespace.lookup(dir, name, true);
          if (!again) return req.replyErr(errno.ENOENT);
          return req.replyEntry(entry(again[0], await stat(again[0])));
        }
        req.replyEntry(entry(found[0], attr));
      });
    },
    forget(ino) {
      // voldfs keeps no per-lookup state: the inode outlives the kernel's reference. Forgetting
      // what was shown only costs a cache drop at the next open.
      shown.delete(Number(ino));
    },
    getattr(req, ino) {
      const i = Number(ino);
      serve(req, 'getattr', i, async () => req.replyAttr(await stat(i), timeout), true);
    },
    setattr(req, ino, attr, toSet) {
      const i = Number(ino);
      serve(req, 'setattr', i, async () => {
        // Each change gives the record it left: the last one is the answer, not read again.
        let changed: InodeRecord | undefined;
        if (toSet & (SET_ATTR.UID | SET_ATTR.GID)) {
          changed = await fs.attributes.chown(i, toSet & SET_ATTR.UID ? (attr.uid ?? -1) : -1, toSet & SET_ATTR.GID ? (attr.gid ?? -1) : -1);
        }
        if (toSet & SET_ATTR.MODE) changed = await fs.attributes.chmod(i, attr.mode ?? 0);
        if (toSet & SET_ATTR.SIZE) changed = await fs.attributes.truncate(i, attr.size ?? 0);
        const atime = toSet & SET_ATTR.ATIME_NOW ? NOW : toSet & SET_ATTR.ATIME && attr.atime ? attr.atime : OMIT;
        const mtime = toSet & SET_ATTR.MTIME_NOW ? NOW : toSet & SET_ATTR.MTIME && attr.mtime ? attr.mtime : OMIT;
        // truncate(2) asks for mtime = now with the size, which the truncate has just set.
        const truncateTimes = toSet & SET_ATTR.SIZE && atime === OMIT && mtime === NOW;
        if ((atime !== OMIT || mtime !== OMIT) && !truncateTimes) changed = await fs.attributes.utimens(i, atime, mtime);
        req.replyAttr(changed ? await attrOf(i, changed) : await stat(i), timeout);
      }, true);
    },
    readlink(req, ino) {
      const i = Number(ino);
      serve(req, 'readlink', i, async () => req.replyReadlink(await fs.attributes.readlink(i)), true);
    },
    mknod(req, parent, name, mode, rdev) {
      const dir = Number(parent);
      serve(req, 'mknod', dir, async () => {
        req.replyEntry(await createdEntry(await fs.namespace.createEntry(dir, name, mode, req.context, { rdev })));
      });
    },
    mkdir(req, parent, name, mode) {
      const dir = Number(parent);
      serve(req, 'mkdir', dir, async () => {
        req.replyEntry(await createdEntry(await fs.namespace.createEntry(dir, name, S_IFDIR | (mode & 0o7777), req.context)));
      });
    },
    symlink(req, target, parent, name) {
      const dir = Number(parent);
      serve(req, 'symlink', dir, async () => {
        req.replyEntry(await createdEntry(await fs.namespace.symlinkEntry(dir, name, target, req.context)));
      });
    },
    link(req, ino, newParent, newName) {
      const i = Number(ino);
      serve(req, 'link', i, async () => {
        await fs.namespace.link(i, Number(newParent), newName);
        await replyEntryOf(req, i);
      });
    },
    unlink(req, parent, name) {
      const dir = Number(parent);
      serve(req, 'unlink', dir, async () => {
        await fs.namespace.unlink(dir, name);
        req.replyOk();
      });
    },
    rmdir(req, parent, name) {
      const dir = Number(parent);
      serve(req, 'rmdir', dir, async () => {
        await fs.namespace.rmdir(dir, name);
        req.replyOk();
      });
    },
    rename(req, parent, name, newParent, newName, flags) {
      const dir = Number(parent);
      serve(req, 'rename', dir, async () => {
        await fs.namespace.rename(dir, name, Number(newParent), newName, flags);
        req.replyOk();
      });
    },
    open(req, ino, flags) {
      const i = Number(ino);
      serve(req, 'open', i, async () => {
        // open reads the inode afresh (close-to-open); O_TRUNC comes as a setattr before it
        // (atomic_o_trunc is off).
        const fh = await fs.files.open(i, flags);
        try {
          if (timeout > 0) {
            const before = shown.get(i);
            const record = await fs.attributes.stat(i);
            if (before !== signature(record)) {
              shown.delete(i);
              await options.invalidate(i).catch((err: unknown) => log.warn({ ino: i, err }, 'cannot drop the kernel attribute cache'));
            }
          }
          req.replyOpen({ fh });
        } catch (err) {
          await fs.files.release(fh);
          throw err;
        }
      }, true);
    },
    create(req, parent, name, mode, flags) {
      const dir = Number(parent);
      serve(req, 'create', dir, async () => {
        const type = mode & S_IFMT ? mode : S_IFREG | mode;
        // The create commits with the file's first flush or close (see OpenFiles.flush).
        const created = await fs.namespace.createEntry(dir, name, type, req.context, { opened: true });
        const fh = fs.files.openCreated(created.ino, created.record, flags);
        req.replyCreate(await createdEntry(created), { fh });
      });
    },
    read(req, ino, size, offset, fh) {
      serve(req, 'read', Number(ino), async () => {
        const buf = Buffer.allocUnsafe(size);
        const n = await fs.files.read(fh ?? 0, offset, size, buf);
        options.countBytes?.(n, 0);
        req.replyBuf(buf.subarray(0, n));
      });
    },
    write(req, ino, data, offset, fh) {
      serve(req, 'write', Number(ino), async () => {
        const n = await fs.files.write(fh ?? 0, offset, data);
        options.countBytes?.(0, n);
        req.replyWrite(n);
      });
    },
    flush(req, ino, fh) {
      serve(req, 'flush', Number(ino), async () => {
        await fs.files.flush(fh ?? 0);
        req.replyOk();
      });
    },
    release(req, ino, fh) {
      serve(req, 'release', Number(ino), async () => {
        // The last release of a file unlinked while open deletes it (OpenFiles.release).
        await fs.files.release(fh ?? 0);
        req.replyOk();
      });
    },
    fsync(req, ino, _datasync, fh) {
      serve(req, 'fsync', Number(ino), async () => {
        await fs.fsync(fh ?? 0);
        req.replyOk();
      });
    },
    opendir(req, ino) {
      const i = Number(ino);
      serve(req, 'opendir', i, async () => {
        req.replyOpen({ fh: directories.openHandle() });
      });
    },
    readdir(req, ino, size, offset, fh) {
      const i = Number(ino);
      serve(req, 'readdir', i, async () => {
        const slice = await directories.slice(fh, i, Number(offset), size, direntSize);
        req.replyDir(slice.map(({ name, entry: [child, type], off }): KernelDirEntry => ({ name, ino: child, mode: type, off })));
      }, true);
    },
    readdirplus(req, ino, size, offset, fh) {
      const i = Number(ino);
      serve(req, 'readdirplus', i, async () => {
        const slice = await directories.slice(fh, i, Number(offset), size, direntPlusSize);
        const entries = await Promise.all(
          slice.map(async ({ name, entry: [child, type], off }): Promise<DirEntryPlus> => {
            // "." and ".." carry no entry (the kernel counts no lookup for them); a name whose
            // inode went meanwhile is listed without one.
            if (off <= 2) return { name, off, ino: child, mode: type, entry: null };
            const attr = await stat(child).catch(() => undefined);
            return attr ? { name, off, entry: entry(child, attr) } : { name, off, ino: child, mode: type, entry: null };
          }),
        );
        req.replyDir(entries);
      }, true);
    },
    releasedir(req, _ino, fh) {
      if (fh !== null) directories.release(fh);
      req.replyOk();
    },
    statfs(req) {
      serve(req, 'statfs', null, async () => req.replyStatfs(fs.statfs()));
    },
    setxattr(req, ino, name, value, flags) {
      const i = Number(ino);
      serve(req, 'setxattr', i, async () => {
        await fs.attributes.setxattr(i, name, value, flags);
        req.replyOk();
      }, true);
    },
    getxattr(req, ino, name, size) {
      const i = Number(ino);
      serve(req, 'getxattr', i, async () => req.replyXattrValue(await fs.attributes.getxattr(i, name), size), true);
    },
    listxattr(req, ino, size) {
      const i = Number(ino);
      serve(req, 'listxattr', i, async () => {
        const names = await fs.attributes.listxattr(i);
        req.replyXattrValue(Buffer.from(names.map((n) => `${n}\0`).join('')), size);
      }, true);
    },
    removexattr(req, ino, name) {
      const i = Number(ino);
      serve(req, 'removexattr', i, async () => {
        await fs.attributes.removexattr(i, name);
        req.replyOk();
      }, true);
    },
  };
}
