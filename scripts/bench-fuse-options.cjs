// Preloaded (node -r) by scripts/bench when it runs shared/bench/fuse-ceiling.js.
//
// The ceiling asks for big_writes by smuggling it into the fsname option ('ceiling,big_writes'),
// which upstream fuse-native passes to libfuse unescaped. Our fuse-native fork escapes commas in
// option values, so there the trick silently yields fsname "ceiling,big_writes" and 4 KiB writes,
// and the "ceiling" is no longer one. With the fork (detected by that escaping), this moves every
// comma-separated extra out of fsname into the fork's extraOptions. Upstream is left untouched.
'use strict'

const Module = require('module')

const originalLoad = Module._load
let patched

function escapesCommas (Fuse) {
  if (typeof Fuse.prototype._fuseOptions !== 'function') return false
  const probe = Object.create(Fuse.prototype)
  probe.opts = { fsname: 'a,b' }
  probe.mnt = '/nonexistent'
  return String(probe._fuseOptions()).includes('a\\,b')
}

function patch (Fuse) {
  if (!escapesCommas(Fuse)) return Fuse
  return class BenchFuse extends Fuse {
    constructor (mnt, ops, opts = {}) {
      const [fsname, ...extra] = String(opts.fsname ?? '').split(',')
      if (extra.length === 0) {
        super(mnt, ops, opts)
        return
      }
      super(mnt, ops, { ...opts, fsname, extraOptions: [...(opts.extraOptions ?? []), ...extra.filter(Boolean)] })
    }
  }
}

Module._load = function (request, parent, isMain) {
  const loaded = originalLoad.apply(this, arguments)
  if (request !== 'fuse-native') return loaded
  if (patched === undefined) patched = patch(loaded)
  return patched
}
