#!/usr/bin/env node
// memory-fs: the reference filesystem of `npm run bench`, a minimal in-memory filesystem on
// fuse-native's libfuse 2 binding (vendor/fuse-native), the one voldfs mounted with until it
// moved to the libfuse3 low-level binding; vendor/fuse-native/example/memory-ll.js is the same
// kind of filesystem on the low-level binding.
//
// It is the ceiling for any filesystem built on this binding: every request crosses the kernel,
// libfuse 2 and the N-API bridge into the JS main thread and back, as voldfs's do, but the JS side
// only touches Maps and Buffers. File data lives in 1 MiB Buffers, the last one grown
// geometrically (a 4 KiB file holds 4 KiB, a 1 GiB file is never copied as it grows).
//
// Mount options: the ones that shaped voldfs's data path on libfuse 2: big_writes,
// max_write = max_read = 128 KiB, no per-request timeout. Attribute and name caching
// keep libfuse's defaults (1 s), which is what makes it a ceiling rather than a copy of voldfs.
//
// Usage: node bench/memory-fs.cjs MOUNTPOINT
//   SIGINT/SIGTERM unmount and exit (status 0, or 1 if the unmount failed). On exit, and on
//   SIGUSR1, it prints the operation counts and the average write and read sizes to stderr.
//   Also used by test/helpers/fake-voldfs-cli.mjs as the filesystem behind a stand-in voldfs CLI.
'use strict'

const Fuse = require('fuse-native')

const mnt = process.argv[2]
if (!mnt || process.argv.length > 3) {
  console.error('usage: memory-fs.cjs MOUNTPOINT')
  process.exit(2)
}

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const UID = process.getuid()
const GID = process.getgid()
const CHUNK = 1 << 20
const MAX_IO = 128 * 1024 // max_write and max_read

function now () {
  const ms = Date.now()
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 }
}

let nextIno = 1
function newNode (mode) {
  const t = now()
  const dir = (mode & S_IFMT) === S_IFDIR
  return {
    ino: nextIno++,
    mode,
    uid: UID,
    gid: GID,
    nlink: dir ? 2 : 1,
    size: 0,
    atime: t,
    mtime: t,
    ctime: t,
    chunks: null, // regular file: Buffers of CHUNK bytes (the last may be shorter); [0, size) valid
    children: dir ? new Map() : null, // directory: name -> node
    target: null // symlink: its target
  }
}

const root = newNode(S_IFDIR | 0o755)
const isDir = n => (n.mode & S_IFMT) === S_IFDIR

function lookup (path) {
  if (path === '/') return root
  let node = root
  let start = 1
  for (;;) {
    if (!node.children) return undefined
    const slash = path.indexOf('/', start)
    node = node.children.get(slash === -1 ? path.slice(start) : path.slice(start, slash))
    if (!node) return undefined
    if (slash === -1) return node
    start = slash + 1
  }
}

// '/a/b/c' -> [node of /a/b or undefined, 'c']
function parentOf (path) {
  const i = path.lastIndexOf('/')
  return [i === 0 ? root : lookup(path.slice(0, i)), path.slice(i + 1)]
}

function statOf (n) {
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
    ctime: n.ctime
  }
}

// Room for bytes [0, need): full chunks below the last, the last grown geometrically up to
// CHUNK. Spare bytes are uninitialised (zero() clears what a hole exposes).
function reserve (n, need) {
  if (need <= 0) return
  if (!n.chunks) n.chunks = []
  const c = n.chunks
  const last = Math.floor((need - 1) / CHUNK)
  for (let i = Math.max(0, c.length - 1); i <= last; i++) {
    const want = i < last ? CHUNK : need - last * CHUNK
    const cur = c[i]
    if (cur && cur.length >= want) continue
    const buf = Buffer.allocUnsafeSlow(Math.min(CHUNK, Math.max(want, cur ? cur.length * 2 : 0, 4096)))
    if (cur) cur.copy(buf, 0, 0, cur.length)
    c[i] = buf
  }
}

function zero (n, from, to) {
  while (from < to) {
    const i = Math.floor(from / CHUNK)
    const o = from - i * CHUNK
    const k = Math.min(to - from, CHUNK - o)
    n.chunks[i].fill(0, o, o + k)
    from += k
  }
}

function setSize (n, size) {
  if (size > n.size) {
    reserve(n, size)
    zero(n, n.size, size)
  } else if (n.chunks) {
    n.chunks.length = Math.ceil(size / CHUNK) // whole chunks past the end go
  }
  n.size = size
  n.mtime = n.ctime = now()
}

const handles = new Map() // fh -> node: an unlinked file stays readable while open
let nextFh = 10 // fuse-native treats fh 0 as none
function openHandle (node) {
  const fh = nextFh++
  if (nextFh > 0xfffffff0) nextFh = 10
  handles.set(fh, node)
  return fh
}

const counts = Object.create(null)
let writeBytes = 0
let readBytes = 0
const count = op => { counts[op] = (counts[op] || 0) + 1 }

// A new directory entry at path, or an errno.
function addEntry (path, node) {
  const [parent, name] = parentOf(path)
  if (!parent) return Fuse.ENOENT
  if (!isDir(parent)) return Fuse.ENOTDIR
  if (parent.children.has(name)) return Fuse.EEXIST
  parent.children.set(name, node)
  if (isDir(node)) parent.nlink++
  parent.mtime = parent.ctime = node.ctime = now()
  return 0
}

const ops = {
  getattr (path, cb) {
    count('getattr')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    cb(0, statOf(n))
  },

  fgetattr (path, fh, cb) {
    count('fgetattr')
    const n = handles.get(fh) || lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    cb(0, statOf(n))
  },

  statfs (path, cb) {
    count('statfs')
    cb(0, { bsize: 4096, frsize: 4096, blocks: 1 << 24, bfree: 1 << 24, bavail: 1 << 24, files: 1 << 24, ffree: 1 << 24, favail: 1 << 24, namemax: 255 })
  },

  readdir (path, cb) {
    count('readdir')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    if (!isDir(n)) return cb(Fuse.ENOTDIR)
    cb(0, ['.', '..', ...n.children.keys()])
  },

  create (path, mode, cb) {
    count('create')
    const n = newNode(S_IFREG | (mode & 0o7777))
    const err = addEntry(path, n)
    if (err) return cb(err)
    cb(0, openHandle(n))
  },

  open (path, flags, cb) {
    count('open')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    cb(0, openHandle(n))
  },

  release (path, fh, cb) {
    count('release')
    handles.delete(fh)
    cb(0)
  },

  read (path, fh, buf, len, pos, cb) {
    count('read')
    const n = handles.get(fh) || lookup(path)
    if (!n) return cb(Fuse.EBADF)
    if (isDir(n)) return cb(Fuse.EISDIR)
    if (pos >= n.size) return cb(0)
    const end = Math.min(n.size, pos + len)
    for (let p = pos; p < end;) {
      const i = Math.floor(p / CHUNK)
      const o = p - i * CHUNK
      const k = Math.min(end - p, CHUNK - o)
      n.chunks[i].copy(buf, p - pos, o, o + k)
      p += k
    }
    readBytes += end - pos
    cb(end - pos)
  },

  write (path, fh, buf, len, pos, cb) {
    count('write')
    const n = handles.get(fh) || lookup(path)
    if (!n) return cb(Fuse.EBADF)
    if (isDir(n)) return cb(Fuse.EISDIR)
    const end = pos + len
    reserve(n, end)
    if (pos > n.size) zero(n, n.size, pos)
    for (let p = pos; p < end;) {
      const i = Math.floor(p / CHUNK)
      const o = p - i * CHUNK
      const k = Math.min(end - p, CHUNK - o)
      buf.copy(n.chunks[i], o, p - pos, p - pos + k)
      p += k
    }
    if (end > n.size) n.size = end
    n.mtime = n.ctime = now()
    writeBytes += len
    cb(len)
  },

  truncate (path, size, cb) {
    count('truncate')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    if (isDir(n)) return cb(Fuse.EISDIR)
    setSize(n, size)
    cb(0)
  },

  ftruncate (path, fh, size, cb) {
    count('ftruncate')
    const n = handles.get(fh) || lookup(path)
    if (!n) return cb(Fuse.EBADF)
    if (isDir(n)) return cb(Fuse.EISDIR)
    setSize(n, size)
    cb(0)
  },

  unlink (path, cb) {
    count('unlink')
    const [parent, name] = parentOf(path)
    const n = parent && parent.children && parent.children.get(name)
    if (!n) return cb(Fuse.ENOENT)
    if (isDir(n)) return cb(Fuse.EISDIR)
    parent.children.delete(name)
    n.nlink--
    parent.mtime = parent.ctime = n.ctime = now()
    cb(0)
  },

  mkdir (path, mode, cb) {
    count('mkdir')
    cb(addEntry(path, newNode(S_IFDIR | (mode & 0o7777))))
  },

  rmdir (path, cb) {
    count('rmdir')
    const [parent, name] = parentOf(path)
    const n = parent && parent.children && parent.children.get(name)
    if (!n) return cb(Fuse.ENOENT)
    if (!isDir(n)) return cb(Fuse.ENOTDIR)
    if (n.children.size > 0) return cb(Fuse.ENOTEMPTY)
    parent.children.delete(name)
    parent.nlink--
    parent.mtime = parent.ctime = now()
    cb(0)
  },

  rename (src, dest, cb) {
    count('rename')
    const [sp, sname] = parentOf(src)
    const n = sp && sp.children && sp.children.get(sname)
    if (!n) return cb(Fuse.ENOENT)
    const [dp, dname] = parentOf(dest)
    if (!dp) return cb(Fuse.ENOENT)
    if (!isDir(dp)) return cb(Fuse.ENOTDIR)
    if (src === dest) return cb(0)
    if (isDir(n) && dest.startsWith(src + '/')) return cb(Fuse.EINVAL)
    const old = dp.children.get(dname)
    if (old === n) return cb(0)
    if (old) {
      if (isDir(n) && !isDir(old)) return cb(Fuse.ENOTDIR)
      if (!isDir(n) && isDir(old)) return cb(Fuse.EISDIR)
      if (isDir(old) && old.children.size > 0) return cb(Fuse.ENOTEMPTY)
      if (isDir(old)) dp.nlink--
      else old.nlink--
    }
    sp.children.delete(sname)
    dp.children.set(dname, n)
    if (isDir(n) && sp !== dp) { sp.nlink--; dp.nlink++ }
    sp.mtime = sp.ctime = dp.mtime = dp.ctime = n.ctime = now()
    cb(0)
  },

  link (src, dest, cb) {
    count('link')
    const n = lookup(src)
    if (!n) return cb(Fuse.ENOENT)
    if (isDir(n)) return cb(Fuse.EPERM)
    const err = addEntry(dest, n)
    if (!err) n.nlink++
    cb(err)
  },

  // The fork passes {sec, nsec} times; nsec may be UTIME_NOW or UTIME_OMIT.
  utimens (path, atime, mtime, cb) {
    count('utimens')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    const t = now()
    const pick = (v, old) => v.nsec === Fuse.UTIME_OMIT ? old : v.nsec === Fuse.UTIME_NOW ? t : { sec: v.sec, nsec: v.nsec }
    n.atime = pick(atime, n.atime)
    n.mtime = pick(mtime, n.mtime)
    n.ctime = t
    cb(0)
  },

  chmod (path, mode, cb) {
    count('chmod')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    n.mode = (n.mode & S_IFMT) | (mode & 0o7777)
    n.ctime = now()
    cb(0)
  },

  chown (path, uid, gid, cb) {
    count('chown')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    if (uid !== -1 && uid !== 0xffffffff) n.uid = uid
    if (gid !== -1 && gid !== 0xffffffff) n.gid = gid
    n.ctime = now()
    cb(0)
  },

  symlink (target, path, cb) {
    count('symlink')
    const n = newNode(S_IFLNK | 0o777)
    n.target = target
    n.size = Buffer.byteLength(target)
    cb(addEntry(path, n))
  },

  readlink (path, cb) {
    count('readlink')
    const n = lookup(path)
    if (!n) return cb(Fuse.ENOENT)
    if ((n.mode & S_IFMT) !== S_IFLNK) return cb(Fuse.EINVAL)
    cb(0, n.target)
  }
}

const fuse = new Fuse(mnt, ops, {
  fsname: 'memory-fs',
  subtype: 'memory-fs',
  bigWrites: true,
  maxWrite: MAX_IO,
  maxRead: MAX_IO,
  timeout: false, // no per-request JS timer
  mkdir: true
})

function report () {
  const avgW = counts.write ? Math.round(writeBytes / counts.write) : 0
  const avgR = counts.read ? Math.round(readBytes / counts.read) : 0
  console.error(`memory-fs: ops ${JSON.stringify(counts)} write_bytes=${writeBytes} avg_write=${avgW} read_bytes=${readBytes} avg_read=${avgR}`)
}

fuse.mount(err => {
  if (err) {
    console.error('memory-fs: mount failed:', err.message)
    process.exit(1)
  }
  console.error(`memory-fs: mounted on ${mnt} (pid ${process.pid})`)
})

let stopping = false
function stop (sig) {
  if (stopping) return
  stopping = true
  report()
  fuse.unmount(err => {
    if (err) console.error(`memory-fs: unmount on ${sig} failed: ${err.message}`)
    process.exit(err ? 1 : 0)
  })
}
process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGUSR1', report)
