// An in-memory filesystem on the fuse-native binding, for the binding's own tests: it records
// what crossed the bridge (op counts, write sizes, null paths, callers) so a test can assert it.
import Fuse from 'fuse-native';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** File data is kept in sparse chunks of this many bytes: a 1 GiB file is never copied. */
const CHUNK = 1 << 20;

/** One inode: a file, a directory or a symlink. */
export interface MemoryNode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  atime: Fuse.Timespec;
  mtime: Fuse.Timespec;
  ctime: Fuse.Timespec;
  chunks: Map<number, Buffer>;
  children: Map<string, MemoryNode> | undefined;
  target: string;
  xattrs: Map<string, Buffer>;
}

/** What a handler saw from callerContext(). */
export interface CallerRecord {
  op: string;
  path: string;
  caller: Fuse.CallerContext;
}

function now(): Fuse.Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

function isDir(n: MemoryNode): boolean {
  return (n.mode & S_IFMT) === S_IFDIR;
}

/**
 * The filesystem. `ops` is handed to `new Fuse(...)`; `attach(fuse)` must follow so handlers can
 * read the caller's identity. New nodes belong to the calling uid/gid.
 */
export class MemoryFs {
  readonly counts = new Map<string, number>();
  readonly writeSizes: number[] = [];
  /** "op" for every request that arrived with a null path. */
  readonly nullPathOps: string[] = [];
  readonly callers: CallerRecord[] = [];
  readonly root: MemoryNode;
  readonly ops: Fuse.Operations;

  private nextIno = 1;
  private nextFd = 10;
  private readonly fds = new Map<number, MemoryNode>();
  private fuse: Fuse | undefined;

  constructor() {
    this.root = this.newNode(S_IFDIR | 0o777, 0, 0);
    this.root.nlink = 2;
    this.ops = this.makeOps();
  }

  attach(fuse: Fuse): void {
    this.fuse = fuse;
  }

  count(op: string): number {
    return this.counts.get(op) ?? 0;
  }

  /** Bytes of a file, for assertions. */
  contents(path: string): Buffer | undefined {
    const n = this.lookup(path);
    return n === undefined ? undefined : this.readRange(n, 0, n.size);
  }

  lookup(path: string): MemoryNode | undefined {
    if (path === '/') return this.root;
    let node: MemoryNode | undefined = this.root;
    for (const name of path.slice(1).split('/')) {
      node = node?.children?.get(name);
      if (node === undefined) return undefined;
    }
    return node;
  }

  private newNode(mode: number, uid: number, gid: number): MemoryNode {
    const t = now();
    return {
      ino: this.nextIno++,
      mode,
      uid,
      gid,
      nlink: 1,
      size: 0,
      atime: t,
      mtime: t,
      ctime: t,
      chunks: new Map(),
      children: (mode & S_IFMT) === S_IFDIR ? new Map() : undefined,
      target: '',
      xattrs: new Map(),
    };
  }

  private parentOf(path: string): [MemoryNode | undefined, string] {
    const i = path.lastIndexOf('/');
    return [this.lookup(i === 0 ? '/' : path.slice(0, i)), path.slice(i + 1)];
  }

  private statOf(n: MemoryNode): Fuse.Stat {
    return {
      mode: n.mode,
      uid: n.uid,
      gid: n.gid,
      size: n.size,
      nlink: n.nlink,
      ino: n.ino,
      blksize: 4096,
      blocks: Math.ceil(n.size / 512),
      atime: n.atime,
      mtime: n.mtime,
      ctime: n.ctime,
    };
  }

  /** Records the op; a null path is noted and resolved through the fd when there is one. */
  private enter(op: string, path: string | null, fd?: number): MemoryNode | undefined {
    this.counts.set(op, this.count(op) + 1);
    if (path === null) {
      this.nullPathOps.push(op);
      return fd === undefined ? undefined : this.fds.get(fd);
    }
    return (fd === undefined ? undefined : this.fds.get(fd)) ?? this.lookup(path);
  }

  private recordCaller(op: string, path: string): Fuse.CallerContext {
    if (this.fuse === undefined) throw new Error('MemoryFs.attach(fuse) was not called');
    const caller = this.fuse.callerContext();
    this.callers.push({ op, path, caller });
    return caller;
  }

  private readRange(n: MemoryNode, pos: number, end: number): Buffer {
    const out = Buffer.alloc(Math.max(0, end - pos));
    for (let p = pos; p < end; ) {
      const i = Math.floor(p / CHUNK);
      const o = p - i * CHUNK;
      const k = Math.min(end - p, CHUNK - o);
      n.chunks.get(i)?.copy(out, p - pos, o, o + k);
      p += k;
    }
    return out;
  }

  private writeRange(n: MemoryNode, buf: Buffer, pos: number): void {
    const end = pos + buf.length;
    for (let p = pos; p < end; ) {
      const i = Math.floor(p / CHUNK);
      const o = p - i * CHUNK;
      const k = Math.min(end - p, CHUNK - o);
      let chunk = n.chunks.get(i);
      if (chunk === undefined) {
        chunk = Buffer.alloc(CHUNK);
        n.chunks.set(i, chunk);
      }
      buf.copy(chunk, o, p - pos, p - pos + k);
      p += k;
    }
    if (end > n.size) n.size = end;
  }

  private setSize(n: MemoryNode, size: number): void {
    if (size < n.size) {
      for (const i of n.chunks.keys()) if (i * CHUNK >= size) n.chunks.delete(i);
      const last = n.chunks.get(Math.floor(size / CHUNK));
      last?.fill(0, size % CHUNK);
    }
    n.size = size;
    n.mtime = n.ctime = now();
  }

  private addChild(path: string, mode: number, caller: Fuse.CallerContext): MemoryNode | number {
    const [parent, name] = this.parentOf(path);
    if (parent === undefined) return Fuse.ENOENT;
    if (parent.children === undefined) return Fuse.ENOTDIR;
    if (parent.children.has(name)) return Fuse.EEXIST;
    const n = this.newNode(mode, caller.uid, caller.gid);
    parent.children.set(name, n);
    parent.mtime = parent.ctime = n.ctime;
    return n;
  }

  private allocFd(n: MemoryNode): number {
    const fd = this.nextFd++;
    this.fds.set(fd, n);
    return fd;
  }

  private makeOps(): Fuse.Operations {
    return {
      getattr: (path, cb) => {
        const n = this.enter('getattr', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        cb(0, this.statOf(n));
      },
      fgetattr: (path, fd, cb) => {
        const n = this.enter('fgetattr', path, fd);
        if (n === undefined) return cb(Fuse.EBADF);
        cb(0, this.statOf(n));
      },
      statfs: (path, cb) => {
        this.enter('statfs', path);
        cb(0, { bsize: 4096, frsize: 4096, blocks: 2 ** 33, bfree: 2 ** 32 + 5, bavail: 2 ** 32 + 5, files: 2 ** 40, ffree: 2 ** 40 - 1, favail: 2 ** 40 - 1, namemax: 255 });
      },
      readdir: (path, cb) => {
        const n = this.enter('readdir', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        if (n.children === undefined) return cb(Fuse.ENOTDIR);
        cb(0, ['.', '..', ...n.children.keys()]);
      },
      create: (path, mode, cb, flags) => {
        this.enter('create', path);
        const caller = this.recordCaller('create', path);
        if (typeof flags !== 'number') return cb(Fuse.EINVAL);
        const n = this.addChild(path, S_IFREG | (mode & 0o7777), caller);
        if (typeof n === 'number') return cb(n);
        cb(0, this.allocFd(n));
      },
      open: (path, _flags, cb) => {
        const n = this.enter('open', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        cb(0, this.allocFd(n));
      },
      release: (path, fd, cb) => {
        this.enter('release', path, fd);
        this.fds.delete(fd);
        cb(0);
      },
      flush: (path, fd, cb) => {
        this.enter('flush', path, fd);
        cb(0);
      },
      fsync: (path, _datasync, fd, cb) => {
        this.enter('fsync', path, fd);
        cb(0);
      },
      read: (path, fd, buf, len, pos, cb) => {
        const n = this.enter('read', path, fd);
        if (n === undefined) return cb(Fuse.EBADF);
        const end = Math.min(n.size, pos + len);
        if (pos >= end) return cb(0);
        this.readRange(n, pos, end).copy(buf);
        cb(end - pos);
      },
      write: (path, fd, buf, len, pos, cb) => {
        const n = this.enter('write', path, fd);
        if (n === undefined) return cb(Fuse.EBADF);
        this.writeSizes.push(len);
        this.writeRange(n, buf.subarray(0, len), pos);
        n.mtime = n.ctime = now();
        cb(len);
      },
      truncate: (path, size, cb) => {
        const n = this.enter('truncate', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        this.setSize(n, size);
        cb(0);
      },
      ftruncate: (path, fd, size, cb) => {
        const n = this.enter('ftruncate', path, fd);
        if (n === undefined) return cb(Fuse.EBADF);
        this.setSize(n, size);
        cb(0);
      },
      unlink: (path, cb) => {
        this.enter('unlink', path);
        const [parent, name] = this.parentOf(path);
        const n = parent?.children?.get(name);
        if (parent === undefined || n === undefined) return cb(Fuse.ENOENT);
        if (isDir(n)) return cb(Fuse.EISDIR);
        parent.children?.delete(name);
        n.nlink--;
        parent.mtime = parent.ctime = n.ctime = now();
        cb(0);
      },
      mkdir: (path, mode, cb) => {
        this.enter('mkdir', path);
        const caller = this.recordCaller('mkdir', path);
        const n = this.addChild(path, S_IFDIR | (mode & 0o7777), caller);
        if (typeof n === 'number') return cb(n);
        n.nlink = 2;
        const parent = this.parentOf(path)[0];
        if (parent !== undefined) parent.nlink++;
        cb(0);
      },
      rmdir: (path, cb) => {
        this.enter('rmdir', path);
        const [parent, name] = this.parentOf(path);
        const n = parent?.children?.get(name);
        if (parent === undefined || n === undefined) return cb(Fuse.ENOENT);
        if (n.children === undefined) return cb(Fuse.ENOTDIR);
        if (n.children.size > 0) return cb(Fuse.ENOTEMPTY);
        parent.children?.delete(name);
        parent.nlink--;
        parent.mtime = parent.ctime = now();
        cb(0);
      },
      rename: (src, dest, cb) => {
        this.enter('rename', src);
        const [sp, sname] = this.parentOf(src);
        const [dp, dname] = this.parentOf(dest);
        const n = sp?.children?.get(sname);
        if (sp === undefined || n === undefined || dp?.children === undefined) return cb(Fuse.ENOENT);
        const old = dp.children.get(dname);
        if (old?.children !== undefined && old.children.size > 0) return cb(Fuse.ENOTEMPTY);
        sp.children?.delete(sname);
        dp.children.set(dname, n);
        sp.mtime = sp.ctime = dp.mtime = dp.ctime = n.ctime = now();
        cb(0);
      },
      utimens: (path, atime, mtime, cb) => {
        const n = this.enter('utimens', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        const t = now();
        const pick = (given: Fuse.Timespec, old: Fuse.Timespec): Fuse.Timespec =>
          given.nsec === Fuse.UTIME_OMIT ? old : given.nsec === Fuse.UTIME_NOW ? t : { sec: given.sec, nsec: given.nsec };
        n.atime = pick(atime, n.atime);
        n.mtime = pick(mtime, n.mtime);
        n.ctime = t;
        cb(0);
      },
      chmod: (path, mode, cb) => {
        const n = this.enter('chmod', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        n.mode = (n.mode & S_IFMT) | (mode & 0o7777);
        n.ctime = now();
        cb(0);
      },
      chown: (path, uid, gid, cb) => {
        const n = this.enter('chown', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        if (uid !== 0xffffffff) n.uid = uid;
        if (gid !== 0xffffffff) n.gid = gid;
        n.ctime = now();
        cb(0);
      },
      symlink: (target, path, cb) => {
        this.enter('symlink', path);
        const caller = this.recordCaller('symlink', path);
        const n = this.addChild(path, S_IFLNK | 0o777, caller);
        if (typeof n === 'number') return cb(n);
        n.target = target;
        n.size = Buffer.byteLength(target);
        cb(0);
      },
      readlink: (path, cb) => {
        const n = this.enter('readlink', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        if ((n.mode & S_IFMT) !== S_IFLNK) return cb(Fuse.EINVAL);
        cb(0, n.target);
      },
      setxattr: (path, name, value, _position, _flags, cb) => {
        const n = this.enter('setxattr', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        n.xattrs.set(name, Buffer.from(value));
        cb(0);
      },
      getxattr: (path, name, _position, cb) => {
        const n = this.enter('getxattr', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        cb(0, n.xattrs.get(name) ?? null);
      },
      listxattr: (path, cb) => {
        const n = this.enter('listxattr', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        cb(0, [...n.xattrs.keys()]);
      },
      removexattr: (path, name, cb) => {
        const n = this.enter('removexattr', path);
        if (n === undefined) return cb(Fuse.ENOENT);
        if (!n.xattrs.delete(name)) return cb(Fuse.ENODATA);
        cb(0);
      },
    };
  }
}
