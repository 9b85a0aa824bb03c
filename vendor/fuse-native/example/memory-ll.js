#!/usr/bin/env node
// An in-memory filesystem on the low-level binding (fuse-native/lowlevel): the reference for
// how to answer each request, and a workload target for benchmarks.
//
//   node example/memory-ll.js MOUNTPOINT [--timeout SECONDS] [--writeback] [--debug]
//
// Stays in the foreground; SIGINT/SIGTERM unmount and exit. As a module it exports MemoryFs.
'use strict'

const { constants: { errno: E } } = require('os')
const { LowLevelSession, SET_ATTR, RENAME_NOREPLACE, RENAME_EXCHANGE } = require('../lowlevel')

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const CHUNK = 1024 * 1024 // file data lives in chunks; a missing chunk is a hole
const SEEK_DATA = 3
const SEEK_HOLE = 4
const FALLOC_FL_KEEP_SIZE = 1
const FALLOC_FL_PUNCH_HOLE = 2
const XATTR_CREATE = 1
const XATTR_REPLACE = 2
const O_TRUNC = 0o1000
const ROOT = 1

function now () {
  const ms = performance.timeOrigin + performance.now()
  const sec = Math.floor(ms / 1000)
  return { sec, nsec: Math.min(999999999, Math.round((ms - sec * 1000) * 1e6)) }
}

class Inode {
  constructor (ino, mode, uid, gid) {
    // These fields are the stat object the binding reads.
    this.ino = ino
    this.mode = mode
    this.nlink = (mode & S_IFMT) === S_IFDIR ? 2 : 1
    this.uid = uid
    this.gid = gid
    this.rdev = 0
    this.size = 0
    const t = now()
    this.atime = t
    this.mtime = t
    this.ctime = t
    this.nlookup = 0 // references the kernel holds (lookups minus forgets)
    this.opens = 0
    this.chunks = [] // regular files: Buffer or undefined per CHUNK of data
    this.children = (mode & S_IFMT) === S_IFDIR ? new Map() : null // name -> ino
    this.parent = ROOT
    this.target = null // symlinks
    this.xattrs = null // Map name -> Buffer
  }

  get isDir () { return (this.mode & S_IFMT) === S_IFDIR }
}

class MemoryFs {
  constructor ({ entryTimeout = 1, attrTimeout = 1 } = {}) {
    this.entryTimeout = entryTimeout
    this.attrTimeout = attrTimeout
    this.inodes = new Map()
    this.nextIno = ROOT + 1
    this.dirHandles = new Map()
    this.nextDirHandle = 1
    const root = new Inode(ROOT, S_IFDIR | 0o755, process.getuid(), process.getgid())
    root.nlookup = 1 // the kernel's reference to the root is never forgotten
    this.inodes.set(ROOT, root)
    this.session = new LowLevelSession()
    this.ops = this._makeOps()
  }

  mount (dir, options = {}) {
    return this.session.mount(dir, this.ops, {
      fsname: 'memory-ll',
      subtype: 'memory-ll',
      defaultPermissions: true,
      noFileCapabilities: true,
      entryTimeout: this.entryTimeout,
      attrTimeout: this.attrTimeout,
      ...options
    })
  }

  unmount () { return this.session.unmount() }

  /** Lookups minus forgets for an inode (0 when the kernel holds no reference or it is gone). */
  lookups (ino) { return this.inodes.get(ino)?.nlookup ?? 0 }

  _entry (node) {
    node.nlookup++
    return { ino: node.ino, generation: 0, attr: node, entryTimeout: this.entryTimeout, attrTimeout: this.attrTimeout }
  }

  _newNode (req, parent, name, mode) {
    const dir = this.inodes.get(parent)
    if (!dir || !dir.isDir) return E.ENOTDIR
    if (dir.children.has(name)) return E.EEXIST
    if (Buffer.byteLength(name) > 255) return E.ENAMETOOLONG
    const { uid, gid } = req.context
    const node = new Inode(this.nextIno++, mode, uid, dir.mode & 0o2000 ? dir.gid : gid)
    this.inodes.set(node.ino, node)
    dir.children.set(name, node.ino)
    if (node.isDir) {
      node.parent = dir.ino
      dir.nlink++
    }
    dir.mtime = dir.ctime = node.ctime
    return node
  }

  _maybeFree (node) {
    if (node.nlink === 0 && node.nlookup === 0 && node.opens === 0) this.inodes.delete(node.ino)
  }

  _drop (node) {
    node.nlink -= node.isDir ? 2 : 1
    node.ctime = now()
    this._maybeFree(node)
  }

  _truncate (node, size) {
    const keep = Math.ceil(size / CHUNK)
    node.chunks.length = Math.min(node.chunks.length, keep)
    const last = node.chunks[keep - 1]
    const inLast = size - (keep - 1) * CHUNK
    if (last && last.length > inLast) last.fill(0, inLast)
    node.size = size
  }

  _write (node, buf, off) {
    let done = 0
    while (done < buf.length) {
      const pos = off + done
      const i = Math.floor(pos / CHUNK)
      const at = pos - i * CHUNK
      const n = Math.min(CHUNK - at, buf.length - done)
      let chunk = node.chunks[i]
      if (chunk === undefined && at === 0 && n === CHUNK) {
        node.chunks[i] = done === 0 && buf.length === CHUNK ? buf : Buffer.from(buf.subarray(done, done + n))
      } else {
        if (chunk === undefined || chunk.length < at + n) {
          // Grow the chunk (a short last chunk keeps small files small).
          const grown = Buffer.alloc(Math.min(CHUNK, Math.max(at + n, chunk ? chunk.length * 2 : 0)))
          if (chunk) chunk.copy(grown)
          node.chunks[i] = chunk = grown
        }
        buf.copy(chunk, at, done, done + n)
      }
      done += n
    }
    if (off + buf.length > node.size) node.size = off + buf.length
  }

  _read (node, off, size) {
    const end = Math.min(node.size, off + size)
    if (end <= off) return Buffer.alloc(0)
    const first = Math.floor(off / CHUNK)
    const chunk = node.chunks[first]
    const at = off - first * CHUNK
    if (chunk && at + (end - off) <= chunk.length) return chunk.subarray(at, at + end - off)
    const out = Buffer.alloc(end - off)
    for (let pos = off; pos < end;) {
      const i = Math.floor(pos / CHUNK)
      const a = pos - i * CHUNK
      const n = Math.min(CHUNK - a, end - pos)
      const c = node.chunks[i]
      if (c && a < c.length) c.copy(out, pos - off, a, Math.min(c.length, a + n))
      pos += n
    }
    return out
  }

  _makeOps () {
    const fs = this
    const inodes = this.inodes
    const get = (req, ino) => {
      const node = inodes.get(ino)
      if (!node) req.replyErr(E.ENOENT)
      return node
    }
    return {
      lookup (req, parent, name) {
        const dir = get(req, parent)
        if (!dir) return
        const ino = dir.children?.get(name)
        // A negative entry with a timeout lets the kernel cache "no such name" too.
        if (ino === undefined) return req.replyEntry({ ino: 0, entryTimeout: fs.entryTimeout })
        req.replyEntry(fs._entry(inodes.get(ino)))
      },
      forget (ino, nlookup) {
        const node = inodes.get(ino)
        if (!node) return
        node.nlookup -= nlookup
        fs._maybeFree(node)
      },
      getattr (req, ino) {
        const node = get(req, ino)
        if (node) req.replyAttr(node, fs.attrTimeout)
      },
      setattr (req, ino, attr, toSet) {
        const node = get(req, ino)
        if (!node) return
        const t = now()
        if (toSet & SET_ATTR.MODE) node.mode = (node.mode & S_IFMT) | (attr.mode & 0o7777)
        if (toSet & SET_ATTR.UID) node.uid = attr.uid
        if (toSet & SET_ATTR.GID) node.gid = attr.gid
        if (toSet & SET_ATTR.SIZE) {
          if (node.isDir) return req.replyErr(E.EISDIR)
          fs._truncate(node, attr.size)
          node.mtime = t
        }
        if (toSet & SET_ATTR.ATIME_NOW) node.atime = t
        else if (toSet & SET_ATTR.ATIME) node.atime = attr.atime
        if (toSet & SET_ATTR.MTIME_NOW) node.mtime = t
        else if (toSet & SET_ATTR.MTIME) node.mtime = attr.mtime
        node.ctime = (toSet & SET_ATTR.CTIME) ? attr.ctime : t
        req.replyAttr(node, fs.attrTimeout)
      },
      readlink (req, ino) {
        const node = get(req, ino)
        if (!node) return
        if (node.target === null) return req.replyErr(E.EINVAL)
        req.replyReadlink(node.target)
      },
      mknod (req, parent, name, mode, rdev) {
        const node = fs._newNode(req, parent, name, mode)
        if (typeof node === 'number') return req.replyErr(node)
        node.rdev = rdev
        req.replyEntry(fs._entry(node))
      },
      mkdir (req, parent, name, mode) {
        const node = fs._newNode(req, parent, name, S_IFDIR | (mode & 0o7777))
        if (typeof node === 'number') return req.replyErr(node)
        req.replyEntry(fs._entry(node))
      },
      unlink (req, parent, name) {
        const dir = get(req, parent)
        if (!dir) return
        const node = inodes.get(dir.children.get(name))
        if (!node) return req.replyErr(E.ENOENT)
        if (node.isDir) return req.replyErr(E.EISDIR)
        dir.children.delete(name)
        dir.mtime = dir.ctime = now()
        fs._drop(node)
        req.replyOk()
      },
      rmdir (req, parent, name) {
        const dir = get(req, parent)
        if (!dir) return
        const node = inodes.get(dir.children.get(name))
        if (!node) return req.replyErr(E.ENOENT)
        if (!node.isDir) return req.replyErr(E.ENOTDIR)
        if (node.children.size > 0) return req.replyErr(E.ENOTEMPTY)
        dir.children.delete(name)
        dir.nlink--
        dir.mtime = dir.ctime = now()
        fs._drop(node)
        req.replyOk()
      },
      symlink (req, target, parent, name) {
        const node = fs._newNode(req, parent, name, S_IFLNK | 0o777)
        if (typeof node === 'number') return req.replyErr(node)
        node.target = target
        node.size = Buffer.byteLength(target)
        req.replyEntry(fs._entry(node))
      },
      rename (req, parent, name, newParent, newName, flags) {
        const from = get(req, parent)
        const to = from && get(req, newParent)
        if (!to) return
        const node = inodes.get(from.children.get(name))
        if (!node) return req.replyErr(E.ENOENT)
        const victim = inodes.get(to.children.get(newName))
        if (flags & RENAME_EXCHANGE) {
          if (!victim) return req.replyErr(E.ENOENT)
          from.children.set(name, victim.ino)
          to.children.set(newName, node.ino)
          if (node.isDir) node.parent = to.ino
          if (victim.isDir) victim.parent = from.ino
          if (node.isDir !== victim.isDir && from !== to) {
            from.nlink += node.isDir ? -1 : 1
            to.nlink += node.isDir ? 1 : -1
          }
        } else {
          if (victim && (flags & RENAME_NOREPLACE)) return req.replyErr(E.EEXIST)
          if (victim === node) return req.replyOk()
          if (victim) {
            if (victim.isDir && !node.isDir) return req.replyErr(E.EISDIR)
            if (!victim.isDir && node.isDir) return req.replyErr(E.ENOTDIR)
            if (victim.isDir && victim.children.size > 0) return req.replyErr(E.ENOTEMPTY)
            if (victim.isDir) to.nlink--
            fs._drop(victim)
          }
          from.children.delete(name)
          to.children.set(newName, node.ino)
          if (node.isDir) {
            node.parent = to.ino
            from.nlink--
            to.nlink++
          }
        }
        const t = now()
        from.mtime = from.ctime = to.mtime = to.ctime = node.ctime = t
        req.replyOk()
      },
      link (req, ino, newParent, newName) {
        const node = get(req, ino)
        const dir = node && get(req, newParent)
        if (!dir) return
        if (dir.children.has(newName)) return req.replyErr(E.EEXIST)
        dir.children.set(newName, ino)
        node.nlink++
        node.ctime = dir.mtime = dir.ctime = now()
        req.replyEntry(fs._entry(node))
      },
      open (req, ino, flags) {
        const node = get(req, ino)
        if (!node) return
        if (flags & O_TRUNC) fs._truncate(node, 0)
        node.opens++
        req.replyOpen({ fh: ino })
      },
      create (req, parent, name, mode, flags) {
        const node = fs._newNode(req, parent, name, S_IFREG | (mode & 0o7777))
        if (typeof node === 'number') return req.replyErr(node)
        node.opens++
        req.replyCreate(fs._entry(node), { fh: node.ino })
      },
      read (req, ino, size, off) {
        const node = get(req, ino)
        if (node) req.replyBuf(fs._read(node, off, size))
      },
      write (req, ino, buf, off) {
        const node = get(req, ino)
        if (!node) return
        fs._write(node, buf, off)
        node.mtime = node.ctime = now()
        req.replyWrite(buf.length)
      },
      // No flush: nothing to do at close, and without the op the kernel stops sending it
      // (libfuse answers ENOSYS once), which saves a round trip per close.
      fsync (req) { req.replyOk() },
      release (req, ino) {
        const node = inodes.get(ino)
        if (node) {
          node.opens--
          fs._maybeFree(node)
        }
        req.replyOk()
      },
      opendir (req, ino) {
        const dir = get(req, ino)
        if (!dir) return
        if (!dir.isDir) return req.replyErr(E.ENOTDIR)
        // A snapshot, so that offsets stay valid while the directory changes.
        const list = [['.', dir.ino], ['..', dir.parent]]
        for (const entry of dir.children) list.push(entry)
        const fh = fs.nextDirHandle++
        fs.dirHandles.set(fh, list)
        req.replyOpen({ fh })
      },
      readdir (req, ino, size, off, fh) {
        const list = fs.dirHandles.get(fh)
        if (!list) return req.replyErr(E.EBADF)
        const entries = []
        for (let i = off; i < list.length && entries.length < 1024; i++) {
          const node = inodes.get(list[i][1])
          if (node) entries.push({ name: list[i][0], ino: node.ino, mode: node.mode, off: i + 1 })
        }
        req.replyDir(entries)
      },
      readdirplus (req, ino, size, off, fh) {
        const list = fs.dirHandles.get(fh)
        if (!list) return req.replyErr(E.EBADF)
        const entries = []
        const nodes = []
        for (let i = off; i < list.length && entries.length < 512; i++) {
          const node = inodes.get(list[i][1])
          if (!node) continue
          const dot = i < 2
          // "." and ".." carry no entry: the kernel counts no lookup for them.
          entries.push(dot
            ? { name: list[i][0], ino: node.ino, mode: node.mode, off: i + 1, entry: null }
            : { name: list[i][0], off: i + 1, entry: { ino: node.ino, attr: node } })
          nodes.push(dot ? null : node)
        }
        const fitted = req.replyDir(entries)
        for (let i = 0; i < fitted; i++) if (nodes[i]) nodes[i].nlookup++
      },
      releasedir (req, ino, fh) {
        fs.dirHandles.delete(fh)
        req.replyOk()
      },
      fsyncdir (req) { req.replyOk() },
      statfs (req) {
        let bytes = 0
        for (const node of inodes.values()) bytes += node.size
        const blocks = 1 << 24 // 64 GiB of 4 KiB blocks
        const used = Math.ceil(bytes / 4096)
        req.replyStatfs({
          bsize: 4096,
          blocks,
          bfree: Math.max(0, blocks - used),
          bavail: Math.max(0, blocks - used),
          files: 1 << 24,
          ffree: (1 << 24) - inodes.size,
          favail: (1 << 24) - inodes.size,
          namemax: 255
        })
      },
      setxattr (req, ino, name, value, flags) {
        const node = get(req, ino)
        if (!node) return
        node.xattrs ??= new Map()
        const exists = node.xattrs.has(name)
        if ((flags & XATTR_CREATE) && exists) return req.replyErr(E.EEXIST)
        if ((flags & XATTR_REPLACE) && !exists) return req.replyErr(E.ENODATA)
        node.xattrs.set(name, value)
        node.ctime = now()
        req.replyOk()
      },
      getxattr (req, ino, name, size) {
        const node = get(req, ino)
        if (!node) return
        const value = node.xattrs?.get(name)
        if (value === undefined) return req.replyErr(E.ENODATA)
        req.replyXattrValue(value, size)
      },
      listxattr (req, ino, size) {
        const node = get(req, ino)
        if (!node) return
        const names = [...(node.xattrs?.keys() ?? [])].map((n) => n + '\0').join('')
        req.replyXattrValue(Buffer.from(names), size)
      },
      removexattr (req, ino, name) {
        const node = get(req, ino)
        if (!node) return
        if (!node.xattrs?.delete(name)) return req.replyErr(E.ENODATA)
        node.ctime = now()
        req.replyOk()
      },
      fallocate (req, ino, mode, off, len) {
        const node = get(req, ino)
        if (!node) return
        if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) return req.replyErr(E.EOPNOTSUPP)
        if (mode & FALLOC_FL_PUNCH_HOLE) {
          const end = Math.min(off + len, node.size)
          for (let pos = off; pos < end;) {
            const i = Math.floor(pos / CHUNK)
            const a = pos - i * CHUNK
            const n = Math.min(CHUNK - a, end - pos)
            if (a === 0 && n === CHUNK) node.chunks[i] = undefined
            else node.chunks[i]?.fill(0, a, a + n)
            pos += n
          }
        } else {
          for (let i = Math.floor(off / CHUNK); i * CHUNK < off + len; i++) {
            node.chunks[i] ??= Buffer.alloc(CHUNK)
          }
          if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > node.size) node.size = off + len
        }
        node.ctime = now()
        req.replyOk()
      },
      lseek (req, ino, off, whence) {
        const node = get(req, ino)
        if (!node) return
        if (whence !== SEEK_DATA && whence !== SEEK_HOLE) return req.replyErr(E.EINVAL)
        if (off >= node.size) return req.replyErr(E.ENXIO)
        let i = Math.floor(off / CHUNK)
        const want = whence === SEEK_DATA
        while (i * CHUNK < node.size && (node.chunks[i] !== undefined) !== want) i++
        const at = Math.max(off, i * CHUNK)
        if (at >= node.size) return want ? req.replyErr(E.ENXIO) : req.replyLseek(node.size)
        req.replyLseek(at)
      },
      copyFileRange (req, inoIn, offIn, fhIn, inoOut, offOut, fhOut, len) {
        const src = get(req, inoIn)
        const dst = src && get(req, inoOut)
        if (!dst) return
        const data = Buffer.from(fs._read(src, offIn, len))
        fs._write(dst, data, offOut)
        dst.mtime = dst.ctime = now()
        req.replyWrite(data.length)
      }
    }
  }
}

module.exports = { MemoryFs, CHUNK }

if (require.main === module) {
  const args = process.argv.slice(2)
  const dir = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--timeout')
  if (!dir) {
    console.error('usage: node memory-ll.js MOUNTPOINT [--timeout SECONDS] [--writeback] [--debug]')
    process.exit(2)
  }
  const t = args.indexOf('--timeout')
  const timeout = t >= 0 ? Number(args[t + 1]) : 1
  const fs = new MemoryFs({ entryTimeout: timeout, attrTimeout: timeout })
  const stop = () => {
    fs.unmount().then(() => process.exit(0), (err) => {
      console.error(err)
      process.exit(1)
    })
  }
  fs.session.on('unmounted', ({ external }) => {
    if (external) {
      console.error('memory-ll: unmounted from outside')
      process.exit(0)
    }
  })
  fs.mount(dir, { writebackCache: args.includes('--writeback'), debug: args.includes('--debug') }).then((conn) => {
    console.error(`memory-ll: mounted on ${dir} (max_write ${conn.maxWrite})`)
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  }, (err) => {
    console.error(err.message)
    process.exit(1)
  })
}
