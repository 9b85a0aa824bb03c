const os = require('os')
const fs = require('fs')
const path = require('path')
const { exec } = require('child_process')

const binding = loadBinding()

const IS_OSX = os.platform() === 'darwin'
const OSX_FOLDER_ICON = '/System/Library/CoreServices/CoreTypes.bundle/Contents/Resources/GenericFolderIcon.icns'
const HAS_FOLDER_ICON = IS_OSX && fs.existsSync(OSX_FOLDER_ICON)
// No timeout unless asked for: answering ETIMEDOUT while the real operation still runs makes
// a slow store look like a failed write or a vanished file.
const DEFAULT_TIMEOUT = 0
const TIMEOUT_ERRNO = IS_OSX ? -60 : -110
const ENOTCONN = IS_OSX ? -57 : -107

const OpcodesAndDefaults = new Map([
  ['init', {
    op: binding.op_init
  }],
  ['error', {
    op: binding.op_error
  }],
  ['access', {
    op: binding.op_access,
    defaults: [0]
  }],
  ['statfs', {
    op: binding.op_statfs,
    defaults: [getStatfsArray()]
  }],
  ['fgetattr', {
    op: binding.op_fgetattr,
    defaults: [getStatArray()]
  }],
  ['getattr', {
    op: binding.op_getattr,
    defaults: [getStatArray()]
  }],
  ['flush', {
    op: binding.op_flush
  }],
  ['fsync', {
    op: binding.op_fsync
  }],
  ['fsyncdir', {
    op: binding.op_fsyncdir
  }],
  ['readdir', {
    op: binding.op_readdir,
    defaults: [[], []]
  }],
  ['truncate', {
    op: binding.op_truncate
  }],
  ['ftruncate', {
    op: binding.op_ftruncate
  }],
  ['utimens', {
    op: binding.op_utimens
  }],
  ['readlink', {
    op: binding.op_readlink,
    defaults: ['']
  }],
  ['chown', {
    op: binding.op_chown
  }],
  ['chmod', {
    op: binding.op_chmod
  }],
  ['mknod', {
    op: binding.op_mknod
  }],
  ['setxattr', {
    op: binding.op_setxattr
  }],
  ['getxattr', {
    op: binding.op_getxattr
  }],
  ['listxattr', {
    op: binding.op_listxattr
  }],
  ['removexattr', {
    op: binding.op_removexattr
  }],
  ['open', {
    op: binding.op_open,
    defaults: [0]
  }],
  ['opendir', {
    op: binding.op_opendir,
    defaults: [0]
  }],
  ['read', {
    op: binding.op_read,
    defaults: [0]
  }],
  ['write', {
    op: binding.op_write,
    defaults: [0]
  }],
  ['release', {
    op: binding.op_release
  }],
  ['releasedir', {
    op: binding.op_releasedir
  }],
  ['create', {
    op: binding.op_create,
    defaults: [0]
  }],
  ['unlink', {
    op: binding.op_unlink
  }],
  ['rename', {
    op: binding.op_rename
  }],
  ['link', {
    op: binding.op_link
  }],
  ['symlink', {
    op: binding.op_symlink
  }],
  ['mkdir', {
    op: binding.op_mkdir
  }],
  ['rmdir', {
    op: binding.op_rmdir
  }]
])

class Fuse {
  constructor (mnt, ops, opts = {}) {
    this.opts = opts
    this.mnt = path.resolve(mnt)
    this.ops = ops
    this.timeout = opts.timeout === false ? 0 : (opts.timeout || DEFAULT_TIMEOUT)

    this._force = !!opts.force
    this._mkdir = !!opts.mkdir
    this._thread = null
    this._handlers = this._makeHandlerArray()
    this._threads = new Set()

    const implemented = [binding.op_init, binding.op_error, binding.op_getattr]
    if (ops) {
      for (const [name, { op }] of OpcodesAndDefaults) {
        if (ops[name]) implemented.push(op)
      }
    }
    this._implemented = new Set(implemented)

    // The thread-locals buffer of the request being dispatched, read by callerContext().
    this._request = null
    this._state = 'unmounted'
  }

  _getImplementedArray () {
    const implemented = new Uint32Array(35)
    for (const impl of this._implemented) {
      implemented[impl] = 1
    }
    return implemented
  }

  // The comma-separated list passed to libfuse as `-o LIST` ('' for none). Numbers are checked
  // here because libfuse only prints a bad value to stderr; 0 is a real value for timeouts,
  // uid and gid, so only undefined/null/false leave an option out.
  _fuseOptions () {
    const opts = this.opts
    const options = []
    const flag = (key, name) => { if (opts[key]) options.push(name) }
    const num = (key, name, format = String) => {
      const v = opts[key]
      if (v === undefined || v === null || v === false) return
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        throw new TypeError(`fuse-native: option ${key} must be a non-negative number, got ${JSON.stringify(v)}`)
      }
      options.push(name + '=' + format(v))
    }
    // libfuse splits on commas and takes a backslash as an escape.
    const str = (key, name) => { if (opts[key]) options.push(name + '=' + String(opts[key]).replace(/[\\,]/g, '\\$&')) }

    if ((/\*|(^,)fuse-bindings(,$)/.test(process.env.DEBUG)) || opts.debug) options.push('debug')
    flag('allowOther', 'allow_other')
    flag('allowRoot', 'allow_root')
    flag('autoUnmount', 'auto_unmount')
    flag('defaultPermissions', 'default_permissions')
    flag('blkdev', 'blkdev')
    num('blksize', 'blksize')
    num('maxRead', 'max_read')
    num('maxWrite', 'max_write')
    flag('bigWrites', 'big_writes')
    flag('useIno', 'use_ino')
    flag('hardRemove', 'hard_remove')
    num('fd', 'fd')
    num('userId', 'user_id')
    str('fsname', 'fsname')
    str('subtype', 'subtype')
    flag('kernelCache', 'kernel_cache')
    flag('autoCache', 'auto_cache')
    if (typeof opts.umask === 'string') options.push('umask=' + opts.umask)
    else num('umask', 'umask', v => v.toString(8)) // libfuse reads umask as octal
    num('uid', 'uid')
    num('gid', 'gid')
    num('entryTimeout', 'entry_timeout')
    num('attrTimeout', 'attr_timeout')
    num('negativeTimeout', 'negative_timeout')
    num('acAttrTimeout', 'ac_attr_timeout')
    flag('noforget', 'noforget')
    num('remember', 'remember')
    str('modules', 'modules')

    if (this.opts.displayFolder && IS_OSX) { // only works on osx
      options.push('volname=' + path.basename(this.opts.name || this.mnt))
      if (HAS_FOLDER_ICON) options.push('volicon=' + OSX_FOLDER_ICON)
    }

    if (opts.extraOptions !== undefined) {
      if (!Array.isArray(opts.extraOptions) || !opts.extraOptions.every(o => typeof o === 'string' && o !== '')) {
        throw new TypeError('fuse-native: option extraOptions must be an array of non-empty strings')
      }
      options.push(...opts.extraOptions)
    }

    return options.join(',')
  }

  _malloc (size) {
    const buf = Buffer.alloc(size)
    this._threads.add(buf)
    return buf
  }

  _makeHandlerArray () {
    const self = this
    const handlers = new Array(OpcodesAndDefaults.size)

    for (const [name, { op, defaults }] of OpcodesAndDefaults) {
      const nativeSignal = binding[`fuse_native_signal_${name}`]
      if (!nativeSignal) continue

      handlers[op] = makeHandler(name, op, defaults, nativeSignal)
    }

    return handlers

    function makeHandler (name, op, defaults, nativeSignal) {
      let to = self.timeout
      if (typeof to === 'object' && to) {
        const defaultTimeout = to.default || DEFAULT_TIMEOUT
        to = to[name]
        if (!to && to !== false) to = defaultTimeout
      }

      return function (nativeHandler, opCode, ...args) {
        // A second answer would wake the FUSE thread while it serves another request.
        let answered = false
        const sig = (...a) => {
          if (answered) return
          answered = true
          signal(nativeHandler, ...a)
        }
        const input = [...args]
        const boundSignal = to ? autoTimeout(sig, input) : sig
        const funcName = `_op_${name}`
        if (!self[funcName] || !self._implemented.has(op)) return boundSignal(-1, ...defaults)
        self._request = nativeHandler
        try {
          return self[funcName].apply(self, [boundSignal, ...args])
        } catch (err) {
          // Answer, so the kernel request does not hang, then let the bug surface.
          boundSignal(Fuse.EIO, ...bufferArgs(input))
          throw err
        } finally {
          self._request = null
        }
      }

      // Ops that lend JS a libfuse buffer must hand it back (it is detached) even on failure.
      function bufferArgs (input) {
        switch (name) {
          case 'write':
          case 'read':
            return [0, input[2].buffer]
          case 'setxattr':
          case 'getxattr':
            return [input[2].buffer]
          case 'listxattr':
            return [input[1].buffer]
        }
        return []
      }

      function signal (nativeHandler, err, ...args) {
        // The native side reads an int32: null/undefined mean success, anything else non-numeric
        // (an Error, say) becomes EIO.
        if (typeof err !== 'number') err = err ? Fuse.EIO : 0
        var arr = [nativeHandler, err, ...args]

        if (defaults) {
          while (arr.length > 2 && arr[arr.length - 1] === undefined) arr.pop()
          if (arr.length === 2) arr = arr.concat(defaults)
        }

        return process.nextTick(nativeSignal, ...arr)
      }

      function autoTimeout (cb, input) {
        let called = false
        const timeout = setTimeout(timeoutWrap, to, TIMEOUT_ERRNO)
        return timeoutWrap

        function timeoutWrap (err, ...args) {
          if (called) return
          called = true

          clearTimeout(timeout)

          if (err === TIMEOUT_ERRNO) return cb(TIMEOUT_ERRNO, ...bufferArgs(input))

          cb(err, ...args)
        }
      }
    }
  }

  // Static methods

  static unmount (mnt, cb) {
    mnt = JSON.stringify(mnt)
    const cmd = IS_OSX ? `diskutil unmount force ${mnt}` : `fusermount -uz ${mnt}`
    exec(cmd, err => {
      if (err) return cb(err)
      return cb(null)
    })
  }

  // Debugging methods

  // Lifecycle methods

  _open (cb) {
    const self = this

    if (this._force) {
      return fs.stat(path.join(this.mnt, 'test'), (err, st) => {
        if (err && (err.errno === ENOTCONN || err.errno === Fuse.ENXIO)) return Fuse.unmount(this.mnt, open)
        return open()
      })
    }
    return open()

    function open () {
      // If there was an unmount error, continue attempting to mount (this is the best we can do)
      self._thread = Buffer.alloc(binding.sizeof_fuse_thread_t)
      self._openCallback = cb

      let opts
      try {
        opts = self._fuseOptions()
      } catch (err) {
        return cb(err)
      }
      const implemented = self._getImplementedArray()

      return fs.stat(self.mnt, (err, stat) => {
        if (err && err.errno !== -2) return cb(err)
        if (err) {
          if (!self._mkdir) return cb(new Error(`fuse-native: mountpoint ${self.mnt} does not exist (create it, or pass mkdir: true)`))
          return fs.mkdir(self.mnt, { recursive: true }, err => {
            if (err) return cb(err)
            fs.stat(self.mnt, (err, stat) => {
              if (err) return cb(err)
              return onexists(stat)
            })
          })
        }
        if (!stat.isDirectory()) return cb(new Error(`fuse-native: mountpoint ${self.mnt} is not a directory`))
        return onexists(stat)
      })

      function onexists (stat) {
        fs.stat(path.join(self.mnt, '..'), (_, parent) => {
          if (parent && parent.dev !== stat.dev) return cb(new Error(`fuse-native: mountpoint ${self.mnt} is already a mount point (unmount it first)`))
          try {
            // TODO: asyncify
            binding.fuse_native_mount(self.mnt, opts, self._thread, self, self._malloc, self._handlers, implemented)
          } catch (err) {
            return cb(err)
          }
        })
      }
    }
  }

  _close (cb) {
    const self = this

    Fuse.unmount(this.mnt, err => {
      if (err) {
        err.unmountFailure = true
        return cb(err)
      }
      nativeUnmount()
    })

    function nativeUnmount () {
      try {
        binding.fuse_native_unmount(self.mnt, self._thread)
      } catch (err) {
        return cb(err)
      }
      return cb(null)
    }
  }

  // Handlers

  _op_init (signal) {
    if (this._openCallback) {
      process.nextTick(this._openCallback, null)
      this._openCallback = null
    }
    if (!this.ops.init) {
      signal(0)
      return
    }
    this.ops.init(err => {
      return signal(err)
    })
  }

  _op_error (signal) {
    if (!this.ops.error) {
      signal(0)
      return
    }
    this.ops.error(err => {
      return signal(err)
    })
  }

  _op_statfs (signal, path) {
    this.ops.statfs(path, (err, statfs) => {
      if (err) return signal(err)
      const arr = getStatfsArray(statfs)
      return signal(0, arr)
    })
  }

  _op_getattr (signal, path) {
    if (!this.ops.getattr) {
      if (path !== '/') {
        signal(Fuse.EPERM)
      } else {
        signal(0, getStatArray({ mtime: new Date(0), atime: new Date(0), ctime: new Date(0), mode: 16877, size: 4096 }))
      }
      return
    }

    this.ops.getattr(path, (err, stat) => {
      if (err) return signal(err, getStatArray())
      return signal(0, getStatArray(stat))
    })
  }

  // Only registered when ops.fgetattr exists; otherwise libfuse falls back to getattr itself.
  _op_fgetattr (signal, path, fd) {
    this.ops.fgetattr(path, fd, (err, stat) => {
      if (err) return signal(err, getStatArray())
      return signal(0, getStatArray(stat))
    })
  }

  _op_access (signal, path, mode) {
    this.ops.access(path, mode, err => {
      return signal(err)
    })
  }

  _op_open (signal, path, flags) {
    this.ops.open(path, flags, (err, fd) => {
      return signal(err, fd)
    })
  }

  // fuse-native 2.2.6 passed the (still unset) fh here in place of the flags.
  _op_opendir (signal, path, flags) {
    this.ops.opendir(path, flags, (err, fd) => {
      return signal(err, fd)
    })
  }

  // The open flags come after the callback so that existing create(path, mode, cb) handlers keep working.
  _op_create (signal, path, mode, flags) {
    this.ops.create(path, mode, (err, fd) => {
      return signal(err, fd)
    }, flags)
  }

  _op_utimens (signal, path, atimeLow, atimeHigh, atimeNsec, mtimeLow, mtimeHigh, mtimeNsec) {
    const atime = getTimespec(atimeLow, atimeHigh, atimeNsec)
    const mtime = getTimespec(mtimeLow, mtimeHigh, mtimeNsec)
    this.ops.utimens(path, atime, mtime, err => {
      return signal(err)
    })
  }

  _op_release (signal, path, fd) {
    this.ops.release(path, fd, err => {
      return signal(err)
    })
  }

  _op_releasedir (signal, path, fd) {
    this.ops.releasedir(path, fd, err => {
      return signal(err)
    })
  }

  _op_read (signal, path, fd, buf, len, offsetLow, offsetHigh) {
    this.ops.read(path, fd, buf, len, getDoubleArg(offsetLow, offsetHigh), (err, bytesRead) => {
      return signal(err, bytesRead || 0, buf.buffer)
    })
  }

  _op_write (signal, path, fd, buf, len, offsetLow, offsetHigh) {
    this.ops.write(path, fd, buf, len, getDoubleArg(offsetLow, offsetHigh), (err, bytesWritten) => {
      return signal(err, bytesWritten || 0, buf.buffer)
    })
  }

  _op_readdir (signal, path) {
    this.ops.readdir(path, (err, names, stats) => {
      if (err) return signal(err)
      if (stats) stats = stats.map(getStatArray)
      return signal(0, names, stats || [])
    })
  }

  _op_setxattr (signal, path, name, value, position, flags) {
    this.ops.setxattr(path, name, value, position, flags, err => {
      return signal(err, value.buffer)
    })
  }

  // An empty valueBuf asks for the size; a value that does not fit is ERANGE, as getxattr(2) says.
  _op_getxattr (signal, path, name, valueBuf, position) {
    this.ops.getxattr(path, name, position, (err, value) => {
      if (!err) {
        if (!value) return signal(IS_OSX ? -93 : -61, valueBuf.buffer)
        if (typeof value === 'string') value = Buffer.from(value)
        if (!valueBuf.length) return signal(value.length, valueBuf.buffer)
        if (value.length > valueBuf.length) return signal(Fuse.ERANGE, valueBuf.buffer)
        value.copy(valueBuf)
        return signal(value.length, valueBuf.buffer)
      }
      return signal(err, valueBuf.buffer)
    })
  }

  _op_listxattr (signal, path, listBuf) {
    this.ops.listxattr(path, (err, list) => {
      if (list && !err) {
        let size = 0
        for (const name of list) size += Buffer.byteLength(name) + 1
        if (IS_OSX) size += 128 // macFUSE wants room for its own names
        if (!listBuf.length) return signal(size, listBuf.buffer)
        if (size > listBuf.length) return signal(Fuse.ERANGE, listBuf.buffer)

        let ptr = 0
        for (const name of list) {
          listBuf.write(name, ptr)
          ptr += Buffer.byteLength(name)
          listBuf[ptr++] = 0
        }

        return signal(ptr, listBuf.buffer)
      }
      return signal(err, listBuf.buffer)
    })
  }

  _op_removexattr (signal, path, name) {
    this.ops.removexattr(path, name, err => {
      return signal(err)
    })
  }

  _op_flush (signal, path, fd) {
    this.ops.flush(path, fd, err => {
      return signal(err)
    })
  }

  _op_fsync (signal, path, datasync, fd) {
    this.ops.fsync(path, datasync, fd, err => {
      return signal(err)
    })
  }

  _op_fsyncdir (signal, path, datasync, fd) {
    this.ops.fsyncdir(path, datasync, fd, err => {
      return signal(err)
    })
  }

  _op_truncate (signal, path, sizeLow, sizeHigh) {
    const size = getDoubleArg(sizeLow, sizeHigh)
    this.ops.truncate(path, size, err => {
      return signal(err)
    })
  }

  _op_ftruncate (signal, path, fd, sizeLow, sizeHigh) {
    const size = getDoubleArg(sizeLow, sizeHigh)
    this.ops.ftruncate(path, fd, size, err => {
      return signal(err)
    })
  }

  _op_readlink (signal, path) {
    this.ops.readlink(path, (err, linkname) => {
      return signal(err, linkname)
    })
  }

  _op_chown (signal, path, uid, gid) {
    this.ops.chown(path, uid, gid, err => {
      return signal(err)
    })
  }

  _op_chmod (signal, path, mode) {
    this.ops.chmod(path, mode, err => {
      return signal(err)
    })
  }

  _op_mknod (signal, path, mode, dev) {
    this.ops.mknod(path, mode, dev, err => {
      return signal(err)
    })
  }

  _op_unlink (signal, path) {
    this.ops.unlink(path, err => {
      return signal(err)
    })
  }

  _op_rename (signal, src, dest) {
    this.ops.rename(src, dest, err => {
      return signal(err)
    })
  }

  _op_link (signal, src, dest) {
    this.ops.link(src, dest, err => {
      return signal(err)
    })
  }

  _op_symlink (signal, src, dest) {
    this.ops.symlink(src, dest, err => {
      return signal(err)
    })
  }

  _op_mkdir (signal, path, mode) {
    this.ops.mkdir(path, mode, err => {
      return signal(err)
    })
  }

  _op_rmdir (signal, path) {
    this.ops.rmdir(path, err => {
      return signal(err)
    })
  }

  // Public API

  mount (cb) {
    if (!cb) return promisify(this, this.mount)
    if (this._state === 'mounted') return process.nextTick(cb, null)
    if (this._state !== 'unmounted') return process.nextTick(cb, new Error(`fuse-native: cannot mount ${this.mnt} while ${this._state}`))
    this._state = 'mounting'
    this._open(err => {
      this._state = err ? 'unmounted' : 'mounted'
      cb(err || null)
    })
  }

  unmount (cb) {
    if (!cb) return promisify(this, this.unmount)
    if (this._state === 'unmounted') return process.nextTick(cb, null)
    if (this._state !== 'mounted') return process.nextTick(cb, new Error(`fuse-native: cannot unmount ${this.mnt} while ${this._state}`))
    this._state = 'unmounting'
    this._close(err => {
      this._state = err ? 'mounted' : 'unmounted'
      cb(err || null)
    })
  }

  // Identity of the process behind the request being handled. Only valid synchronously in an
  // op handler: after the handler returns (first await) the next request may already run.
  callerContext () {
    if (!this._request) {
      throw new Error('fuse-native: callerContext() is only valid synchronously inside an operation handler, before its first await')
    }
    return binding.fuse_native_caller_context(this._request)
  }

  errno (code) {
    return (code && Fuse[code.toUpperCase()]) || -1
  }
}

Fuse.EPERM = -1
Fuse.ENOENT = -2
Fuse.ESRCH = -3
Fuse.EINTR = -4
Fuse.EIO = -5
Fuse.ENXIO = -6
Fuse.E2BIG = -7
Fuse.ENOEXEC = -8
Fuse.EBADF = -9
Fuse.ECHILD = -10
Fuse.EAGAIN = -11
Fuse.ENOMEM = -12
Fuse.EACCES = -13
Fuse.EFAULT = -14
Fuse.ENOTBLK = -15
Fuse.EBUSY = -16
Fuse.EEXIST = -17
Fuse.EXDEV = -18
Fuse.ENODEV = -19
Fuse.ENOTDIR = -20
Fuse.EISDIR = -21
Fuse.EINVAL = -22
Fuse.ENFILE = -23
Fuse.EMFILE = -24
Fuse.ENOTTY = -25
Fuse.ETXTBSY = -26
Fuse.EFBIG = -27
Fuse.ENOSPC = -28
Fuse.ESPIPE = -29
Fuse.EROFS = -30
Fuse.EMLINK = -31
Fuse.EPIPE = -32
Fuse.EDOM = -33
Fuse.ERANGE = -34
Fuse.EDEADLK = -35
Fuse.ENAMETOOLONG = -36
Fuse.ENOLCK = -37
Fuse.ENOSYS = -38
Fuse.ENOTEMPTY = -39
Fuse.ELOOP = -40
Fuse.EWOULDBLOCK = -11
Fuse.ENOMSG = -42
Fuse.EIDRM = -43
Fuse.ECHRNG = -44
Fuse.EL2NSYNC = -45
Fuse.EL3HLT = -46
Fuse.EL3RST = -47
Fuse.ELNRNG = -48
Fuse.EUNATCH = -49
Fuse.ENOCSI = -50
Fuse.EL2HLT = -51
Fuse.EBADE = -52
Fuse.EBADR = -53
Fuse.EXFULL = -54
Fuse.ENOANO = -55
Fuse.EBADRQC = -56
Fuse.EBADSLT = -57
Fuse.EDEADLOCK = -35
Fuse.EBFONT = -59
Fuse.ENOSTR = -60
Fuse.ENODATA = -61
Fuse.ETIME = -62
Fuse.ENOSR = -63
Fuse.ENONET = -64
Fuse.ENOPKG = -65
Fuse.EREMOTE = -66
Fuse.ENOLINK = -67
Fuse.EADV = -68
Fuse.ESRMNT = -69
Fuse.ECOMM = -70
Fuse.EPROTO = -71
Fuse.EMULTIHOP = -72
Fuse.EDOTDOT = -73
Fuse.EBADMSG = -74
Fuse.EOVERFLOW = -75
Fuse.ENOTUNIQ = -76
Fuse.EBADFD = -77
Fuse.EREMCHG = -78
Fuse.ELIBACC = -79
Fuse.ELIBBAD = -80
Fuse.ELIBSCN = -81
Fuse.ELIBMAX = -82
Fuse.ELIBEXEC = -83
Fuse.EILSEQ = -84
Fuse.ERESTART = -85
Fuse.ESTRPIPE = -86
Fuse.EUSERS = -87
Fuse.ENOTSOCK = -88
Fuse.EDESTADDRREQ = -89
Fuse.EMSGSIZE = -90
Fuse.EPROTOTYPE = -91
Fuse.ENOPROTOOPT = -92
Fuse.EPROTONOSUPPORT = -93
Fuse.ESOCKTNOSUPPORT = -94
Fuse.EOPNOTSUPP = -95
Fuse.EPFNOSUPPORT = -96
Fuse.EAFNOSUPPORT = -97
Fuse.EADDRINUSE = -98
Fuse.EADDRNOTAVAIL = -99
Fuse.ENETDOWN = -100
Fuse.ENETUNREACH = -101
Fuse.ENETRESET = -102
Fuse.ECONNABORTED = -103
Fuse.ECONNRESET = -104
Fuse.ENOBUFS = -105
Fuse.EISCONN = -106
Fuse.ENOTCONN = -107
Fuse.ESHUTDOWN = -108
Fuse.ETOOMANYREFS = -109
Fuse.ETIMEDOUT = -110
Fuse.ECONNREFUSED = -111
Fuse.EHOSTDOWN = -112
Fuse.EHOSTUNREACH = -113
Fuse.EALREADY = -114
Fuse.EINPROGRESS = -115
Fuse.ESTALE = -116
Fuse.EUCLEAN = -117
Fuse.ENOTNAM = -118
Fuse.ENAVAIL = -119
Fuse.EISNAM = -120
Fuse.EREMOTEIO = -121
Fuse.EDQUOT = -122
Fuse.ENOMEDIUM = -123
Fuse.EMEDIUMTYPE = -124

// utimens: timespec.nsec values meaning "set to the current time" / "leave unchanged".
Fuse.UTIME_NOW = (1 << 30) - 1
Fuse.UTIME_OMIT = (1 << 30) - 2

module.exports = Fuse

function loadBinding () {
  try {
    return require('./build/Release/fuse.node')
  } catch (err) {
    err.message = `fuse-native: cannot load the native addon (${err.message}); build it with scripts/build-fuse-native (needs libfuse-dev)`
    throw err
  }
}

function promisify (self, method) {
  return new Promise((resolve, reject) => method.call(self, err => err ? reject(err) : resolve()))
}

// Layout read by populate_statvfs in fuse-native.c: counts are 64-bit pairs.
function getStatfsArray (statfs) {
  const ints = new Uint32Array(17)

  ints[0] = (statfs && statfs.bsize) || 0
  ints[1] = (statfs && statfs.frsize) || 0
  setDoubleInt(ints, 2, (statfs && statfs.blocks) || 0)
  setDoubleInt(ints, 4, (statfs && statfs.bfree) || 0)
  setDoubleInt(ints, 6, (statfs && statfs.bavail) || 0)
  setDoubleInt(ints, 8, (statfs && statfs.files) || 0)
  setDoubleInt(ints, 10, (statfs && statfs.ffree) || 0)
  setDoubleInt(ints, 12, (statfs && statfs.favail) || 0)
  ints[14] = (statfs && statfs.fsid) || 0
  ints[15] = (statfs && statfs.flag) || 0
  ints[16] = (statfs && statfs.namemax) || 0

  return ints
}

// Low and high uint32 halves of a 64-bit value; negative numbers wrap to two's complement.
function setDoubleInt (arr, idx, num) {
  if (typeof num === 'bigint') {
    arr[idx] = Number(BigInt.asUintN(32, num))
    arr[idx + 1] = Number(BigInt.asUintN(32, num >> 32n))
    return
  }
  num = Math.floor(num)
  const low = ((num % 4294967296) + 4294967296) % 4294967296
  arr[idx] = low
  arr[idx + 1] = (num - low) / 4294967296
}

function getDoubleArg (a, b) {
  return a + b * 4294967296
}

// { sec, nsec } from the native halves; the high half is signed (times before 1970).
function getTimespec (low, high, nsec) {
  return { sec: (high | 0) * 4294967296 + low, nsec }
}

// A stat time as seconds (two uint32) and nanoseconds. Accepts { sec, nsec }, a Date, a bigint
// of nanoseconds, or a number of milliseconds; missing means now.
function setTime (arr, idx, t) {
  let sec, nsec
  if (t === undefined || t === null) t = Date.now()
  if (typeof t === 'bigint') {
    sec = t / 1000000000n
    nsec = t % 1000000000n
    if (nsec < 0n) {
      nsec += 1000000000n
      sec -= 1n
    }
    sec = Number(sec)
    nsec = Number(nsec)
  } else if (typeof t === 'number' || t instanceof Date) {
    const ms = +t
    sec = Math.floor(ms / 1000)
    nsec = Math.floor((ms - sec * 1000) * 1e6)
  } else {
    sec = t.sec
    nsec = t.nsec
  }
  setDoubleInt(arr, idx, sec)
  arr[idx + 2] = nsec
}

// Layout read by populate_stat in fuse-native.c (22 uint32).
function getStatArray (stat) {
  const ints = new Uint32Array(22)

  ints[0] = (stat && stat.mode) || 0
  ints[1] = (stat && stat.uid) || 0
  ints[2] = (stat && stat.gid) || 0
  setDoubleInt(ints, 3, (stat && stat.size) || 0)
  ints[5] = (stat && stat.dev) || 0
  ints[6] = (stat && stat.nlink) || 1
  setDoubleInt(ints, 7, (stat && stat.ino) || 0)
  ints[9] = (stat && stat.rdev) || 0
  ints[10] = (stat && stat.blksize) || 0
  setDoubleInt(ints, 11, (stat && stat.blocks) || 0)
  setTime(ints, 13, stat && stat.atime)
  setTime(ints, 16, stat && stat.mtime)
  setTime(ints, 19, stat && stat.ctime)

  return ints
}
