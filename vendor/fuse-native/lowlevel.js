// The libfuse3 low-level binding (lowlevel.c): see README.md, "Low-level binding".
'use strict'

const path = require('path')
const { EventEmitter } = require('events')
const { constants: { errno: ERRNO } } = require('os')

const ADDON = path.join(__dirname, 'build', 'Release', 'fuse_lowlevel.node')

/** The message of a failed load, naming what to install or run. */
function loadErrorMessage (file, cause) {
  cause = String(cause).split('\n')[0] // require() appends its require stack
  const missingLib = /libfuse3\.so/.test(cause)
  const how = missingLib
    ? 'the system library libfuse3 is missing: apt-get install libfuse3-3 (and libfuse3-dev to build)'
    : 'build it with scripts/build-fuse-native (needs libfuse3-dev and pkg-config: apt-get install libfuse3-dev libfuse3-3 pkg-config)'
  return `fuse-native/lowlevel: cannot load the native addon ${file} (${cause}); ${how}`
}

/** Loads the addon from `file` (default: the built one), with an error saying what to do. */
function loadAddon (file = ADDON) {
  try {
    return require(file)
  } catch (err) {
    err.message = loadErrorMessage(file, err.message)
    throw err
  }
}

let addon = null
function binding () {
  if (addon === null) addon = loadAddon()
  return addon
}

// Same order as the OP_* enum in lowlevel.c.
const OPS = ['init', 'lookup', 'forget', 'getattr', 'setattr', 'readlink', 'mknod', 'mkdir',
  'unlink', 'rmdir', 'symlink', 'rename', 'link', 'open', 'read', 'write', 'flush', 'release',
  'fsync', 'opendir', 'readdir', 'releasedir', 'fsyncdir', 'statfs', 'setxattr', 'getxattr',
  'listxattr', 'removexattr', 'access', 'create', 'getlk', 'setlk', 'flock', 'fallocate',
  'readdirplus', 'copyFileRange', 'lseek']
const OP = Object.fromEntries(OPS.map((name, i) => [name, i]))
const MSG_INTERRUPT = 100
const MSG_ENDED = 101

const CAP = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  POSIX_ACL: 1 << 19,
  HANDLE_KILLPRIV: 1 << 20,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25
}

const SET_ATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  CTIME: 1 << 10
}

const RENAME_NOREPLACE = 1
const RENAME_EXCHANGE = 2

const EIO = ERRNO.EIO

function toErrno (err) {
  if (typeof err === 'number') return Math.abs(err)
  if (typeof err === 'string' && ERRNO[err]) return ERRNO[err]
  if (err && typeof err.errno === 'number') return Math.abs(err.errno)
  if (err && typeof err.code === 'string' && ERRNO[err.code]) return ERRNO[err.code]
  return EIO
}

/**
 * One kernel request. Answer it exactly once with one of the reply methods; a second answer
 * throws (code ERR_FUSE_ALREADY_REPLIED). A reply after the session ended returns false and is
 * otherwise ignored.
 */
class Request {
  constructor (session, handle, op) {
    this.session = session
    this.handle = handle
    this.op = op
    this._watchId = undefined
  }

  /** The operation's name, e.g. 'lookup'. */
  get opName () { return OPS[this.op] }

  /** { uid, gid, pid, umask } of the calling process. Valid for the request's whole life. */
  get context () { return binding().context(this.handle) }

  /** True once the kernel sent an interrupt for this request. */
  get interrupted () { return binding().info(this.handle)[1] === 1 }

  /** True until the request is answered (or dropped because the session ended). */
  get pending () { return binding().info(this.handle)[2] === 0 }

  /**
   * Calls cb once if the kernel interrupts this request (the caller got a signal), even if the
   * interrupt came before this call. Answering stays the handler's job (usually EINTR).
   */
  onInterrupt (cb) {
    const [id, interrupted, state] = binding().info(this.handle)
    if (state !== 0) return
    if (interrupted) {
      process.nextTick(cb)
      return
    }
    this.session._watchInterrupt(id, this, cb)
  }

  _done (sent) {
    if (this._watchId !== undefined) this.session._unwatchInterrupt(this._watchId)
    return sent
  }

  /** Answers an error: an errno number (either sign), a code like 'ENOENT' or an Error. 0 is success. */
  replyErr (err) { return this._done(binding().replyErr(this.handle, toErrno(err))) }
  /** Success without data (unlink, rmdir, rename, flush, release, fsync, setxattr, ...). */
  replyOk () { return this._done(binding().replyErr(this.handle, 0)) }
  /** No answer at all: only for requests the kernel expects none for. */
  replyNone () { return this._done(binding().replyNone(this.handle)) }
  replyEntry (entry) { return this._done(binding().replyEntry(this.handle, entry, this.session.entryTimeout, this.session.attrTimeout)) }
  replyCreate (entry, fileInfo) { return this._done(binding().replyCreate(this.handle, entry, fileInfo || {}, this.session.entryTimeout, this.session.attrTimeout)) }
  replyAttr (attr, timeout = this.session.attrTimeout) { return this._done(binding().replyAttr(this.handle, attr, timeout)) }
  replyReadlink (target) { return this._done(binding().replyReadlink(this.handle, target)) }
  replyOpen (fileInfo) { return this._done(binding().replyOpen(this.handle, fileInfo || {})) }
  replyWrite (count) { return this._done(binding().replyWrite(this.handle, count)) }
  replyBuf (buf) { return this._done(binding().replyBuf(this.handle, buf)) }
  replyStatfs (statfs) { return this._done(binding().replyStatfs(this.handle, statfs)) }
  replyXattr (size) { return this._done(binding().replyXattr(this.handle, size)) }
  replyLock (lock) { return this._done(binding().replyLock(this.handle, lock)) }
  replyLseek (offset) { return this._done(binding().replyLseek(this.handle, offset)) }

  /**
   * Answers readdir/readdirplus with as many entries as fit the kernel's buffer and returns how
   * many did (0 after the session ended). readdirplus counts one lookup for each fitted entry
   * that has an `entry` with a non-zero ino.
   */
  replyDir (entries) {
    const n = binding().replyDir(this.handle, entries, this.session.entryTimeout, this.session.attrTimeout)
    this._done(true)
    return n
  }

  /**
   * Answers getxattr/listxattr from the whole value: its size when the caller asked for the
   * size (size 0), ERANGE when it does not fit, else the bytes.
   */
  replyXattrValue (value, size) {
    const buf = Buffer.isBuffer(value) ? value : Buffer.from(value)
    if (size === 0) return this.replyXattr(buf.length)
    if (buf.length > size) return this.replyErr(ERRNO.ERANGE)
    return this.replyBuf(buf)
  }
}

function escapeOption (value) {
  return String(value).replace(/\\/g, '\\\\').replace(/,/g, '\\,')
}

function nonNegative (options, name) {
  const v = options[name]
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new TypeError(`fuse-native/lowlevel: option ${name} must be a non-negative number, got ${String(v)}`)
  }
  return v
}

/** The libfuse3 arguments for the mount options (exported for tests). */
function mountArgs (options = {}) {
  const o = []
  if (options.fsname !== undefined) o.push(`fsname=${escapeOption(options.fsname)}`)
  if (options.subtype !== undefined) o.push(`subtype=${escapeOption(options.subtype)}`)
  if (options.allowOther) o.push('allow_other')
  if (options.allowRoot) o.push('allow_root')
  if (options.defaultPermissions) o.push('default_permissions')
  if (options.readOnly) o.push('ro')
  for (const extra of options.extraOptions || []) o.push(String(extra))
  const args = o.length ? ['-o', o.join(',')] : []
  if (options.debug) args.push('-d')
  return args
}

/** The capability changes asked for by the options (exported for tests). */
function capabilities (options, ops) {
  let wantSet = CAP.READDIRPLUS | (options.readdirplusAuto === false ? 0 : CAP.READDIRPLUS_AUTO)
  let wantClear = CAP.EXPORT_SUPPORT
  if (options.readdirplus === false || !ops.readdirplus) {
    wantSet &= ~(CAP.READDIRPLUS | CAP.READDIRPLUS_AUTO)
    wantClear |= CAP.READDIRPLUS | CAP.READDIRPLUS_AUTO
  }
  if (options.writebackCache) wantSet |= CAP.WRITEBACK_CACHE
  else wantClear |= CAP.WRITEBACK_CACHE
  if (options.posixLocks && ops.getlk && ops.setlk) wantSet |= CAP.POSIX_LOCKS
  else wantClear |= CAP.POSIX_LOCKS
  if (options.flockLocks && ops.flock) wantSet |= CAP.FLOCK_LOCKS
  else wantClear |= CAP.FLOCK_LOCKS
  if (options.cacheSymlinks) wantSet |= CAP.CACHE_SYMLINKS
  wantSet |= options.wantSet || 0
  wantClear |= options.wantClear || 0
  return { wantSet: wantSet >>> 0, wantClear: wantClear >>> 0 }
}

/**
 * A libfuse3 low-level session: mount(dir, ops, options), then every kernel request calls
 * ops[name](req, ...args) on Node's thread; the handler answers through req.reply*() whenever it
 * is ready. Events: 'unmounted' ({ external }) once the loop has ended and the session is gone.
 */
class LowLevelSession extends EventEmitter {
  constructor () {
    super()
    this._handle = null
    this._ops = null
    this._state = 'unmounted' // unmounted | mounting | mounted | unmounting
    this._watchers = new Map()
    this._notifies = new Set()
    this._ended = null
    this._onInit = null
    this._lastCounts = null
    this.mountpoint = null
    this.conn = null
    this.entryTimeout = 1
    this.attrTimeout = 1
    this._dispatch = this._dispatch.bind(this)
  }

  get mounted () { return this._state === 'mounted' }

  /** Requests handed to JS and not yet answered. */
  get outstanding () { return this._handle ? binding().outstanding(this._handle) : 0 }

  /**
   * Requests the kernel sent since the mount, by operation name ({ lookup: 3, create: 1, ... },
   * ops never sent left out), counting those the binding answers itself (forget, the
   * getxattr("security.capability") of noFileCapabilities). After the session ended: its
   * last counts.
   */
  requestCounts () {
    const counts = this._handle ? binding().requestCounts(this._handle) : this._lastCounts
    const out = {}
    if (counts) for (let i = 0; i < OPS.length; i++) if (counts[i] > 0) out[OPS[i]] = counts[i]
    return out
  }

  /**
   * Mounts and starts serving. Resolves with the negotiated connection ({ protoMajor,
   * protoMinor, capable, want, maxWrite, maxReadahead, ... }) once the kernel's INIT is answered.
   */
  async mount (dir, ops, options = {}) {
    if (this._state !== 'unmounted') throw new Error(`fuse-native/lowlevel: cannot mount: session is ${this._state}`)
    const b = binding()
    const mnt = path.resolve(dir)
    this.entryTimeout = nonNegative(options, 'entryTimeout') ?? 1
    this.attrTimeout = nonNegative(options, 'attrTimeout') ?? 1
    const maxWrite = nonNegative(options, 'maxWrite') ?? 1024 * 1024
    const maxReadahead = nonNegative(options, 'maxReadahead') ?? 0
    let enabled = 0n
    for (let i = 0; i < OPS.length; i++) {
      const name = OPS[i]
      if (typeof ops[name] === 'function' || (name === 'forget' && typeof ops.forgetMulti === 'function')) enabled |= 1n << BigInt(i)
    }
    const { wantSet, wantClear } = capabilities(options, ops)
    this._ops = ops
    this._state = 'mounting'
    this._ended = null
    const init = new Promise((resolve) => { this._onInit = resolve })
    try {
      this._handle = b.mount(this._dispatch, mnt, mountArgs(options), enabled, { maxWrite, maxReadahead, wantSet, wantClear, noFileCapabilities: !!options.noFileCapabilities })
    } catch (err) {
      this._state = 'unmounted'
      err.message = `${err.message} (mountpoint ${mnt})`
      throw err
    }
    this.mountpoint = mnt
    const ended = new Promise((resolve) => { this._endedWaiter = resolve })
    const first = await Promise.race([init.then((conn) => ({ conn })), ended.then(() => ({ ended: true }))])
    if (first.ended) throw new Error(`fuse-native/lowlevel: the session ended before the kernel initialised it (${mnt})`)
    this.conn = first.conn
    this._state = 'mounted'
    return this.conn
  }

  /**
   * Stops serving and unmounts. Requests still held by JS are answered EIO; their later replies
   * return false. Resolves once the session is destroyed.
   */
  async unmount () {
    if (this._state === 'unmounted') return
    if (this._closing) return this._closing
    this._state = 'unmounting'
    const closing = new Promise((resolve) => { this._closed = resolve })
    this._closing = closing
    binding().stop(this._handle)
    await closing
  }

  /** Invalidates cached data (off, len; len 0 = to the end) and attributes of an inode. */
  notifyInvalInode (ino, off = 0, len = 0) { return this._notify(0, ino, off, len, '') }
  /** Drops a cached name (parent, name) from the kernel's dentry cache. */
  notifyInvalEntry (parent, name) { return this._notify(1, parent, 0, 0, name) }
  /** Tells the kernel that `name` in `parent`, which was `child`, is gone. */
  notifyDelete (parent, child, name) { return this._notify(2, parent, child, 0, name) }

  _notify (kind, ino, a, b, name) {
    if (this._state !== 'mounted') return Promise.reject(new Error('fuse-native/lowlevel: not mounted'))
    const p = binding().notify(this._handle, kind, ino, a, b, name)
    this._notifies.add(p)
    const forget = () => this._notifies.delete(p)
    p.then(forget, forget)
    return p
  }

  _watchInterrupt (id, req, cb) {
    req._watchId = id
    this._watchers.set(id, cb)
  }

  _unwatchInterrupt (id) {
    this._watchers.delete(id)
  }

  _dispatch (op, handle, ...args) {
    if (handle !== undefined) {
      const req = new Request(this, handle, op)
      const fn = this._ops[OPS[op]]
      let res
      try {
        res = fn.call(this._ops, req, ...args)
      } catch (err) {
        if (req.pending) req.replyErr(EIO)
        throw err
      }
      if (res && typeof res.then === 'function') {
        res.then(undefined, (err) => {
          if (req.pending) req.replyErr(EIO)
          throw err
        })
      }
      return
    }
    const a = args[0]
    switch (op) {
      case OP.forget: this._forget(a); break
      case MSG_INTERRUPT: {
        const cb = this._watchers.get(a)
        if (cb) {
          this._watchers.delete(a)
          cb()
        }
        break
      }
      case OP.init:
        this._onInit?.(a)
        this._onInit = null
        if (this._ops.init) this._ops.init(a)
        break
      case MSG_ENDED: this._end(a).catch((err) => this.emit('error', err)); break
    }
  }

  _forget (list) {
    const ops = this._ops
    if (ops.forgetMulti) {
      ops.forgetMulti(list)
      return
    }
    for (let i = 0; i < list.length; i += 2) ops.forget(list[i], list[i + 1])
  }

  // The loop thread has ended: by unmount() (reason 0) or because the kernel unmounted us.
  async _end (reason) {
    const external = !this._closing
    const b = binding()
    this._state = 'unmounting'
    b.closeRequests(this._handle)
    this._watchers.clear()
    // Notifications in flight may wait on the kernel; they finish now that nothing is pending.
    await Promise.allSettled([...this._notifies])
    this._lastCounts = b.requestCounts(this._handle)
    b.destroy(this._handle)
    this._handle = null
    this._state = 'unmounted'
    this._closing = null
    this._endedWaiter?.()
    this._closed?.()
    this._closed = null
    if (this._ops.destroy) this._ops.destroy()
    this.emit('unmounted', { external, errno: reason })
  }
}

module.exports = {
  LowLevelSession,
  Request,
  OPS,
  CAP,
  SET_ATTR,
  RENAME_NOREPLACE,
  RENAME_EXCHANGE,
  mountArgs,
  capabilities,
  loadAddon,
  loadErrorMessage
}
