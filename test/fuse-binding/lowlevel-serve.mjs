// Child process for lowlevel-lifecycle.test.ts: mounts example/memory-ll.js on argv[2] and
// reports on stdout, one line per event, so the test can check that the process survives and
// exits by itself.
//   inflight: holds a lookup of "hold" (made by a `stat` it starts), unmounts while JS still
//             holds it, then answers it late.
//   external: waits to be unmounted from outside.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { MemoryFs } from 'fuse-native/example/memory-ll.js'

const [dir, mode] = process.argv.slice(2)
const fs = new MemoryFs()
const say = (line) => process.stdout.write(line + '\n')

fs.session.on('unmounted', ({ external }) => say(`unmounted external=${external}`))

if (mode === 'inflight') {
  const lookup = fs.ops.lookup
  fs.ops.lookup = (req, parent, name) => {
    if (name !== 'hold') return lookup(req, parent, name)
    say(`held outstanding=${fs.session.outstanding}`)
    fs.unmount().then(() => {
      say(`unmount resolved outstanding=${fs.session.outstanding}`)
      say(`late reply sent=${req.replyErr(0)}`)
      try {
        req.replyErr(0)
        say('second late reply sent')
      } catch (err) {
        say(`second late reply threw ${err.code}`)
      }
    })
  }
}

await fs.mount(dir)
say('mounted')
if (mode === 'inflight') {
  const child = spawn('stat', [join(dir, 'hold')], { stdio: 'ignore' })
  child.on('exit', (code) => say(`stat exited ${code}`))
}
