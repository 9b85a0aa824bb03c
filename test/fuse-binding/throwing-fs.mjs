// Fixture for handler-errors.test.ts: a filesystem whose getattr throws for /throw. It runs in
// its own process because the binding rethrows the exception (after answering EIO), which a
// test runner would report as an unhandled error. Prints "mounted" when ready, each uncaught
// exception as "uncaught: MESSAGE", and unmounts on SIGTERM.
import Fuse from 'fuse-native'

const fuse = new Fuse(process.argv[2], {
  getattr (path, cb) {
    if (path === '/') return cb(0, { mode: 0o40755, nlink: 2 })
    if (path === '/throw') throw new Error('handler bug')
    cb(Fuse.ENOENT)
  }
}, { attrTimeout: 0, entryTimeout: 0 })

process.on('uncaughtException', (err) => console.log(`uncaught: ${err.message}`))
process.on('SIGTERM', () => fuse.unmount((err) => process.exit(err ? 1 : 0)))
fuse.mount((err) => {
  if (err) {
    console.log(`mount failed: ${err.message}`)
    process.exit(1)
  }
  console.log('mounted')
})
