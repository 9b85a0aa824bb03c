// Types for the voldfs fork of fuse-native (see PATCHES.md). Paths are absolute inside the mount
// ('/', '/a/b'). Results are 0 or a negative errno (Fuse.ENOENT, ...), or a byte count where noted.

declare namespace Fuse {
  /** Answer with 0 or a negative errno. */
  type Callback = (err: number) => void;

  /** A time with nanoseconds; sec may be negative (before 1970). */
  interface Timespec {
    sec: number;
    /** 0..999999999, or Fuse.UTIME_NOW / Fuse.UTIME_OMIT in utimens. */
    nsec: number;
  }

  /** A stat time: {sec, nsec}, a Date, a bigint of nanoseconds or a number of milliseconds. */
  type Time = Timespec | Date | bigint | number;

  interface Stat {
    mode: number;
    uid?: number;
    gid?: number;
    /** Bytes. */
    size?: number | bigint;
    dev?: number;
    /** Default 1. */
    nlink?: number;
    /** 64-bit; the kernel sees it only with the useIno option. */
    ino?: number | bigint;
    rdev?: number;
    blksize?: number;
    /** 512-byte blocks. */
    blocks?: number | bigint;
    /** Missing means now. */
    atime?: Time;
    mtime?: Time;
    ctime?: Time;
  }

  interface StatFs {
    bsize?: number;
    frsize?: number;
    blocks?: number;
    bfree?: number;
    bavail?: number;
    files?: number;
    ffree?: number;
    favail?: number;
    fsid?: number;
    flag?: number;
    namemax?: number;
  }

  /** Identity of the process behind a request (libfuse's fuse_get_context()). */
  interface CallerContext {
    uid: number;
    gid: number;
    pid: number;
    /** Meaningful in create/mkdir/mknod only (the mode given there already has it applied). */
    umask: number;
  }

  /**
   * Handlers. Call the callback exactly once (later calls are ignored). A handler that throws
   * synchronously answers EIO and the exception is rethrown. A path is null when libfuse serves
   * an open file or directory whose name is gone (hardRemove): use the fd then.
   * Buffers handed to read/write/setxattr are libfuse memory, valid only until the callback.
   */
  interface Operations {
    init?(cb: Callback): void;
    access?(path: string, mode: number, cb: Callback): void;
    statfs?(path: string, cb: (err: number, statfs?: StatFs) => void): void;
    getattr?(path: string, cb: (err: number, stat?: Stat) => void): void;
    /** fstat-style getattr on an open file (GETATTR with a file handle). */
    fgetattr?(path: string | null, fd: number, cb: (err: number, stat?: Stat) => void): void;
    flush?(path: string | null, fd: number, cb: Callback): void;
    fsync?(path: string | null, datasync: number, fd: number, cb: Callback): void;
    fsyncdir?(path: string | null, datasync: number, fd: number, cb: Callback): void;
    /** Names should include '.' and '..'; stats, when given, parallel names. */
    readdir?(path: string | null, cb: (err: number, names?: string[], stats?: Stat[]) => void): void;
    truncate?(path: string | null, size: number, cb: Callback): void;
    ftruncate?(path: string | null, fd: number, size: number, cb: Callback): void;
    /** nsec may be Fuse.UTIME_NOW (use the current time) or Fuse.UTIME_OMIT (leave unchanged). */
    utimens?(path: string | null, atime: Timespec, mtime: Timespec, cb: Callback): void;
    /** A target longer than 4095 bytes answers ENAMETOOLONG. */
    readlink?(path: string, cb: (err: number, target?: string) => void): void;
    /** uid/gid 0xffffffff means "leave unchanged". */
    chown?(path: string | null, uid: number, gid: number, cb: Callback): void;
    chmod?(path: string | null, mode: number, cb: Callback): void;
    mknod?(path: string, mode: number, dev: number, cb: Callback): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Callback): void;
    /** Answer the whole value (or null for ENODATA): the binding handles sizing and ERANGE. */
    getxattr?(path: string, name: string, position: number, cb: (err: number, value?: Buffer | string | null) => void): void;
    /** Answer all names: the binding handles sizing and ERANGE. */
    listxattr?(path: string, cb: (err: number, names?: string[]) => void): void;
    removexattr?(path: string, name: string, cb: Callback): void;
    /** Answer a non-zero fd (up to 2^53); it comes back as fd in the file's other ops. */
    open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    opendir?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    /** Answer the number of bytes read (0 at end of file) or a negative errno. */
    read?(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
    /** Answer the number of bytes written or a negative errno. */
    write?(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void): void;
    release?(path: string | null, fd: number, cb: Callback): void;
    releasedir?(path: string | null, fd: number, cb: Callback): void;
    /** flags (open(2) flags) come after the callback, for compatibility with 2.2.6 handlers. */
    create?(path: string, mode: number, cb: (err: number, fd?: number) => void, flags: number): void;
    unlink?(path: string, cb: Callback): void;
    rename?(src: string, dest: string, cb: Callback): void;
    link?(src: string, dest: string, cb: Callback): void;
    /** target is the link's content, path the new link. */
    symlink?(target: string, path: string, cb: Callback): void;
    mkdir?(path: string, mode: number, cb: Callback): void;
    rmdir?(path: string, cb: Callback): void;
  }

  /** Mount options; each maps to one libfuse -o option. Numbers must be non-negative. */
  interface Options {
    /** Per-op timeout in ms answering ETIMEDOUT; default off. */
    timeout?: number | false | ({ default?: number } & { [op: string]: number | false | undefined });
    /** Create the mountpoint if missing. */
    mkdir?: boolean;
    /** Lazily unmount a dead mount (ENOTCONN) at the mountpoint before mounting. */
    force?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    allowRoot?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    blkdev?: boolean;
    blksize?: number;
    /** big_writes: writes of up to 128 KiB instead of 4 KiB. */
    bigWrites?: boolean;
    /** max_write=N bytes (with bigWrites). */
    maxWrite?: number;
    /** max_read=N bytes. */
    maxRead?: number;
    /** use_ino: the kernel uses Stat.ino. */
    useIno?: boolean;
    /** hard_remove: unlink an open file at once (its ops then get a null path). */
    hardRemove?: boolean;
    fd?: number;
    userId?: number;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    /** A number (written in octal) or an octal string. */
    umask?: number | string;
    uid?: number;
    gid?: number;
    /** Seconds (fractions allowed); 0 is honoured. libfuse's default is 1. */
    entryTimeout?: number;
    attrTimeout?: number;
    negativeTimeout?: number;
    acAttrTimeout?: number;
    noforget?: boolean;
    remember?: number;
    modules?: string;
    /** Appended verbatim to the -o list. */
    extraOptions?: string[];
  }
}

declare class Fuse {
  /** mnt is resolved to an absolute path. Bad options make mount() fail with a TypeError. */
  constructor(mnt: string, ops: Fuse.Operations, opts?: Fuse.Options);
  readonly mnt: string;
  readonly ops: Fuse.Operations;
  readonly opts: Fuse.Options;

  /** Mounts; completes once libfuse has called init. Without a callback returns a promise. */
  mount(cb: (err: Error | null) => void): void;
  mount(): Promise<void>;
  /** Unmounts (fusermount -uz, lazy). Without a callback returns a promise. */
  unmount(cb: (err: Error | null) => void): void;
  unmount(): Promise<void>;

  /**
   * Identity of the process that made the request being handled. Valid only synchronously in
   * an op handler, before its first await; throws anywhere else.
   */
  callerContext(): Fuse.CallerContext;

  /** Negative errno for a code name ('ENOENT'), or -1 (EPERM) when unknown. */
  errno(code: string): number;

  /** Lazily unmounts whatever is mounted at mnt (fusermount -uz). */
  static unmount(mnt: string, cb: (err: Error | null) => void): void;

  static readonly UTIME_NOW: number;
  static readonly UTIME_OMIT: number;

  static readonly EPERM: number;
  static readonly ENOENT: number;
  static readonly ESRCH: number;
  static readonly EINTR: number;
  static readonly EIO: number;
  static readonly ENXIO: number;
  static readonly E2BIG: number;
  static readonly ENOEXEC: number;
  static readonly EBADF: number;
  static readonly ECHILD: number;
  static readonly EAGAIN: number;
  static readonly ENOMEM: number;
  static readonly EACCES: number;
  static readonly EFAULT: number;
  static readonly ENOTBLK: number;
  static readonly EBUSY: number;
  static readonly EEXIST: number;
  static readonly EXDEV: number;
  static readonly ENODEV: number;
  static readonly ENOTDIR: number;
  static readonly EISDIR: number;
  static readonly EINVAL: number;
  static readonly ENFILE: number;
  static readonly EMFILE: number;
  static readonly ENOTTY: number;
  static readonly ETXTBSY: number;
  static readonly EFBIG: number;
  static readonly ENOSPC: number;
  static readonly ESPIPE: number;
  static readonly EROFS: number;
  static readonly EMLINK: number;
  static readonly EPIPE: number;
  static readonly EDOM: number;
  static readonly ERANGE: number;
  static readonly EDEADLK: number;
  static readonly ENAMETOOLONG: number;
  static readonly ENOLCK: number;
  static readonly ENOSYS: number;
  static readonly ENOTEMPTY: number;
  static readonly ELOOP: number;
  static readonly EWOULDBLOCK: number;
  static readonly ENOMSG: number;
  static readonly EIDRM: number;
  static readonly ECHRNG: number;
  static readonly EL2NSYNC: number;
  static readonly EL3HLT: number;
  static readonly EL3RST: number;
  static readonly ELNRNG: number;
  static readonly EUNATCH: number;
  static readonly ENOCSI: number;
  static readonly EL2HLT: number;
  static readonly EBADE: number;
  static readonly EBADR: number;
  static readonly EXFULL: number;
  static readonly ENOANO: number;
  static readonly EBADRQC: number;
  static readonly EBADSLT: number;
  static readonly EDEADLOCK: number;
  static readonly EBFONT: number;
  static readonly ENOSTR: number;
  static readonly ENODATA: number;
  static readonly ETIME: number;
  static readonly ENOSR: number;
  static readonly ENONET: number;
  static readonly ENOPKG: number;
  static readonly EREMOTE: number;
  static readonly ENOLINK: number;
  static readonly EADV: number;
  static readonly ESRMNT: number;
  static readonly ECOMM: number;
  static readonly EPROTO: number;
  static readonly EMULTIHOP: number;
  static readonly EDOTDOT: number;
  static readonly EBADMSG: number;
  static readonly EOVERFLOW: number;
  static readonly ENOTUNIQ: number;
  static readonly EBADFD: number;
  static readonly EREMCHG: number;
  static readonly ELIBACC: number;
  static readonly ELIBBAD: number;
  static readonly ELIBSCN: number;
  static readonly ELIBMAX: number;
  static readonly ELIBEXEC: number;
  static readonly EILSEQ: number;
  static readonly ERESTART: number;
  static readonly ESTRPIPE: number;
  static readonly EUSERS: number;
  static readonly ENOTSOCK: number;
  static readonly EDESTADDRREQ: number;
  static readonly EMSGSIZE: number;
  static readonly EPROTOTYPE: number;
  static readonly ENOPROTOOPT: number;
  static readonly EPROTONOSUPPORT: number;
  static readonly ESOCKTNOSUPPORT: number;
  static readonly EOPNOTSUPP: number;
  static readonly EPFNOSUPPORT: number;
  static readonly EAFNOSUPPORT: number;
  static readonly EADDRINUSE: number;
  static readonly EADDRNOTAVAIL: number;
  static readonly ENETDOWN: number;
  static readonly ENETUNREACH: number;
  static readonly ENETRESET: number;
  static readonly ECONNABORTED: number;
  static readonly ECONNRESET: number;
  static readonly ENOBUFS: number;
  static readonly EISCONN: number;
  static readonly ENOTCONN: number;
  static readonly ESHUTDOWN: number;
  static readonly ETOOMANYREFS: number;
  static readonly ETIMEDOUT: number;
  static readonly ECONNREFUSED: number;
  static readonly EHOSTDOWN: number;
  static readonly EHOSTUNREACH: number;
  static readonly EALREADY: number;
  static readonly EINPROGRESS: number;
  static readonly ESTALE: number;
  static readonly EUCLEAN: number;
  static readonly ENOTNAM: number;
  static readonly ENAVAIL: number;
  static readonly EISNAM: number;
  static readonly EREMOTEIO: number;
  static readonly EDQUOT: number;
  static readonly ENOMEDIUM: number;
  static readonly EMEDIUMTYPE: number;
}

export = Fuse;
