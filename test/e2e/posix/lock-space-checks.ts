/** POSIX checks of file locks, fallocate, lseek SEEK_DATA/SEEK_HOLE and copy_file_range. */
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mustFail, mustRun, patternBytes, python, type PosixCheck } from './util.js';

/**
 * Python: a child process takes a write lock on bytes 10-19 (fcntl) and flock(LOCK_EX) through
 * its own open file, then the parent reports what it meets: F_SETLK, F_GETLK, flock LOCK_NB,
 * then the same once the child has exited.
 */
const LOCKS_PY = `
import errno, fcntl, os, struct, sys, time
path = sys.argv[1]
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    fd = os.open(path, os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 10)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(w, b'x')
    time.sleep(30)
    os._exit(0)
os.read(r, 1)
fd = os.open(path, os.O_RDWR)
def attempt(fn):
    try:
        fn(); return 'ok'
    except OSError as e:
        return errno.errorcode[e.errno]
def getlk(start, length):
    kind, _, s, l, p = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack('hhqqi', fcntl.F_WRLCK, 0, start, length, 0)))
    return 'unlocked' if kind == fcntl.F_UNLCK else f'{kind} {s} {l} {p == pid}'
out = [attempt(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 15)),
       attempt(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)),
       getlk(0, 0), getlk(20, 5),
       attempt(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))]
os.kill(pid, 9); os.waitpid(pid, 0)
out += [attempt(lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 5, 15)), getlk(0, 0),
        attempt(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))]
print(','.join(out))
`;

/** Python: lseek(SEEK_DATA / SEEK_HOLE) at each offset given; the result or the errno name. */
const SEEK_PY = `
import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
out = []
for arg in sys.argv[2:]:
    whence, off = arg.split(':')
    try:
        out.append(str(os.lseek(fd, int(off), os.SEEK_DATA if whence == 'data' else os.SEEK_HOLE)))
    except OSError as e:
        out.append(errno.errorcode[e.errno])
print(','.join(out))
`;

/** Python: copy_file_range(src, dst, len, off_in, off_out) until done; the bytes copied. */
const COPY_PY = `
import os, sys
src, dst = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o644)
n, off_in, off_out, total = int(sys.argv[5]), int(sys.argv[3]), int(sys.argv[4]), 0
while total < n:
    k = os.copy_file_range(src, dst, n - total, off_in + total, off_out + total)
    if k == 0:
        break
    total += k
print(total)
`;

export const lockSpaceChecks: readonly PosixCheck[] = [
  {
    name: 'locks: fcntl ranges and flock conflict between processes, and go when the holder dies',
    async run(dir) {
      const p = join(dir, 'locked');
      await writeFile(p, patternBytes(100, 1));
      const F_WRLCK = 1;
      assert.equal(
        await python(LOCKS_PY, [p]),
        ['EAGAIN', 'ok', `${F_WRLCK} 10 10 True`, 'unlocked', 'EAGAIN', 'ok', 'unlocked', 'ok'].join(','),
      );
    },
  },
  {
    name: 'fallocate: grow, keep size, punch a hole, zero a range',
    async run(dir) {
      const p = join(dir, 'space');
      const MiB = 1024 * 1024;
      const data = patternBytes(2 * MiB + 100, 2);
      await writeFile(p, data);
      await mustRun('fallocate', ['-n', '-o', '0', '-l', String(8 * MiB), p]);
      assert.equal((await stat(p)).size, data.length, '-n keeps the size');
      await mustRun('fallocate', ['-l', String(3 * MiB), p]);
      assert.equal((await stat(p)).size, 3 * MiB, 'mode 0 grows the size');
      await mustRun('fallocate', ['-p', '-o', '1000', '-l', String(MiB + 10), p]);
      await mustRun('fallocate', ['-z', '-o', String(2 * MiB + 50), '-l', String(2 * MiB), p]);
      const want = Buffer.concat([data, Buffer.alloc(3 * MiB - data.length)]);
      want.fill(0, 1000, 1000 + MiB + 10);
      want.fill(0, 2 * MiB + 50);
      const got = await readFile(p);
      assert.equal(got.length, 4 * MiB + 50, '-z past the end grows the size');
      assert.ok(got.subarray(0, 3 * MiB).equals(want), 'punched and zeroed ranges read as zeros, the rest unchanged');
      assert.ok(got.subarray(3 * MiB).every((b) => b === 0), 'bytes past the old end read as zeros');
      await mustFail('fallocate', ['-p', '-o', '0', '-l', '10', join(dir, 'missing')]);
    },
  },
  {
    name: 'lseek: SEEK_DATA and SEEK_HOLE on a file without holes, ENXIO at and past the end',
    async run(dir) {
      const p = join(dir, 'dense');
      await writeFile(p, patternBytes(70000, 3));
      assert.equal(await python(SEEK_PY, [p, 'data:0', 'data:69999', 'data:70000', 'data:1000000', 'hole:0', 'hole:69999', 'hole:70000']), '0,69999,ENXIO,ENXIO,70000,70000,ENXIO');
      await writeFile(join(dir, 'empty'), '');
      assert.equal(await python(SEEK_PY, [join(dir, 'empty'), 'data:0', 'hole:0']), 'ENXIO,ENXIO');
    },
  },
  {
    name: 'copy_file_range: copies a range into another file and past its end',
    async run(dir) {
      const src = join(dir, 'src');
      const dst = join(dir, 'dst');
      const data = patternBytes(1500000, 4);
      await writeFile(src, data);
      await writeFile(dst, patternBytes(1000, 5));
      assert.equal(await python(COPY_PY, [src, dst, '7', '500', '1400000']), '1400000');
      assert.equal(await python(COPY_PY, [src, dst, '1499990', '0', '100']), '10', 'stops at the end of the source');
      const want = Buffer.concat([patternBytes(1000, 5).subarray(0, 500), data.subarray(7, 1400007)]);
      data.copy(want, 0, 1499990, 1500000);
      assert.ok((await readFile(dst)).equals(want));
    },
  },
];
