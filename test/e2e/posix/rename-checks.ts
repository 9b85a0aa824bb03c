/** POSIX checks on rename(2): replacing, type clashes, loops, no-ops, open files. */
import assert from 'node:assert/strict';
import { link, lstat, mkdir, open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectErrno, expectMissing, python, type PosixCheck } from './util.js';

/** Python: renameat2(2) through libc (os has no binding); prints OK or the errno name. */
const RENAMEAT2_PY = `
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
flags = {'noreplace': 1, 'exchange': 2}[sys.argv[1]]
r = libc.renameat2(AT_FDCWD, sys.argv[2].encode(), AT_FDCWD, sys.argv[3].encode(), flags)
print('OK' if r == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno())))
`;
const renameat2 = (flag: 'noreplace' | 'exchange', from: string, to: string): Promise<string> =>
  python(RENAMEAT2_PY, [flag, from, to]);

export const renameChecks: readonly PosixCheck[] = [
  {
    name: 'rename file over an existing file',
    async run(dir) {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      await writeFile(a, 'from a');
      await writeFile(b, 'old b');
      const inoA = (await stat(a)).ino;
      await rename(a, b);
      await expectMissing(a, 'source after rename');
      assert.equal(await readFile(b, 'utf8'), 'from a');
      assert.equal((await stat(b)).ino, inoA, 'the target name now points to the source inode');
      assert.deepEqual((await readdir(dir)).sort(), ['b']);
    },
  },
  {
    name: 'rename directory over an empty directory',
    async run(dir) {
      await mkdir(join(dir, 'src'));
      await writeFile(join(dir, 'src', 'inner'), 'x');
      await mkdir(join(dir, 'dst'));
      await rename(join(dir, 'src'), join(dir, 'dst'));
      await expectMissing(join(dir, 'src'));
      assert.equal(await readFile(join(dir, 'dst', 'inner'), 'utf8'), 'x');
      assert.equal((await stat(dir)).nlink, 3, 'parent nlink: 2 + one subdirectory');
    },
  },
  {
    name: 'rename directory over a non-empty directory fails with ENOTEMPTY',
    async run(dir) {
      await mkdir(join(dir, 'src'));
      await mkdir(join(dir, 'dst'));
      await writeFile(join(dir, 'dst', 'keep'), 'k');
      await expectErrno(rename(join(dir, 'src'), join(dir, 'dst')), 'ENOTEMPTY', 'rename dir over non-empty dir');
      assert.ok((await stat(join(dir, 'src'))).isDirectory(), 'source untouched');
      assert.equal(await readFile(join(dir, 'dst', 'keep'), 'utf8'), 'k', 'target untouched');
    },
  },
  {
    name: 'rename file over a directory fails with EISDIR',
    async run(dir) {
      await writeFile(join(dir, 'f'), 'x');
      await mkdir(join(dir, 'd'));
      await expectErrno(rename(join(dir, 'f'), join(dir, 'd')), 'EISDIR', 'rename file over dir');
      assert.ok((await stat(join(dir, 'f'))).isFile());
      assert.ok((await stat(join(dir, 'd'))).isDirectory());
    },
  },
  {
    name: 'rename directory over a file fails with ENOTDIR',
    async run(dir) {
      await mkdir(join(dir, 'd'));
      await writeFile(join(dir, 'f'), 'x');
      await expectErrno(rename(join(dir, 'd'), join(dir, 'f')), 'ENOTDIR', 'rename dir over file');
      assert.ok((await stat(join(dir, 'd'))).isDirectory());
      assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'x');
    },
  },
  {
    name: 'rename directory into its own subdirectory fails with EINVAL',
    async run(dir) {
      await mkdir(join(dir, 'a', 'b', 'c'), { recursive: true });
      await expectErrno(rename(join(dir, 'a'), join(dir, 'a', 'b', 'c', 'a')), 'EINVAL', 'rename dir into its own subdir');
      await expectErrno(rename(join(dir, 'a'), join(dir, 'a', 'x')), 'EINVAL', 'rename dir into itself');
      assert.ok((await stat(join(dir, 'a', 'b', 'c'))).isDirectory(), 'tree untouched');
    },
  },
  {
    name: 'rename across directories moves files and subdirectories',
    async run(dir) {
      await mkdir(join(dir, 'x'));
      await mkdir(join(dir, 'y'));
      await writeFile(join(dir, 'x', 'f'), 'moved');
      await mkdir(join(dir, 'x', 'sub'));
      await writeFile(join(dir, 'x', 'sub', 'g'), 'deep');
      await rename(join(dir, 'x', 'f'), join(dir, 'y', 'f2'));
      await rename(join(dir, 'x', 'sub'), join(dir, 'y', 'sub'));
      assert.deepEqual(await readdir(join(dir, 'x')), []);
      assert.deepEqual((await readdir(join(dir, 'y'))).sort(), ['f2', 'sub']);
      assert.equal(await readFile(join(dir, 'y', 'f2'), 'utf8'), 'moved');
      assert.equal(await readFile(join(dir, 'y', 'sub', 'g'), 'utf8'), 'deep');
      assert.equal((await stat(join(dir, 'x'))).nlink, 2, 'old parent lost its subdirectory link');
      assert.equal((await stat(join(dir, 'y'))).nlink, 3, 'new parent gained it');
      // '..' of the moved directory now names the new parent.
      assert.equal((await stat(join(dir, 'y', 'sub', '..'))).ino, (await stat(join(dir, 'y'))).ino);
    },
  },
  {
    name: 'rename to the same name, or between links of one inode, is a no-op',
    async run(dir) {
      const a = join(dir, 'a');
      await writeFile(a, 'same');
      await rename(a, a);
      assert.equal(await readFile(a, 'utf8'), 'same');
      await mkdir(join(dir, 'd'));
      await rename(join(dir, 'd'), join(dir, 'd'));
      assert.ok((await stat(join(dir, 'd'))).isDirectory());
      const b = join(dir, 'b');
      await link(a, b);
      await rename(a, b); // POSIX: both names stay when they are links to the same file
      assert.equal(await readFile(a, 'utf8'), 'same');
      assert.equal(await readFile(b, 'utf8'), 'same');
      assert.equal((await stat(a)).nlink, 2);
    },
  },
  {
    name: 'rename of a missing source fails with ENOENT',
    async run(dir) {
      await expectErrno(rename(join(dir, 'nope'), join(dir, 'x')), 'ENOENT', 'rename missing source');
      await writeFile(join(dir, 'f'), 'x');
      await expectErrno(rename(join(dir, 'f'), join(dir, 'nodir', 'f')), 'ENOENT', 'rename into a missing dir');
      await expectErrno(rename(join(dir, 'f'), join(dir, 'f', 'g')), 'ENOTDIR', 'rename under a file');
      assert.ok((await lstat(join(dir, 'f'))).isFile());
    },
  },
  {
    name: 'an open file stays readable and writable across its rename',
    async run(dir) {
      await writeFile(join(dir, 'a'), 'abc');
      const fh = await open(join(dir, 'a'), 'r+');
      try {
        await rename(join(dir, 'a'), join(dir, 'b'));
        await fh.write(Buffer.from('Z'), 0, 1, 3);
        const buf = Buffer.alloc(8);
        const { bytesRead } = await fh.read(buf, 0, 8, 0);
        assert.equal(buf.subarray(0, bytesRead).toString(), 'abcZ');
      } finally {
        await fh.close();
      }
      assert.equal(await readFile(join(dir, 'b'), 'utf8'), 'abcZ');
    },
  },
  {
    name: 'rename with RENAME_NOREPLACE fails with EEXIST on an existing target',
    async run(dir) {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      await writeFile(a, 'from a');
      await writeFile(b, 'old b');
      assert.equal(await renameat2('noreplace', a, b), 'EEXIST', 'NOREPLACE over a file');
      assert.equal(await readFile(a, 'utf8'), 'from a', 'source untouched');
      assert.equal(await readFile(b, 'utf8'), 'old b', 'target untouched');
      await link(b, join(dir, 'b2'));
      assert.equal(await renameat2('noreplace', b, join(dir, 'b2')), 'EEXIST', 'NOREPLACE between links of one inode');
      assert.equal(await renameat2('noreplace', a, join(dir, 'c')), 'OK', 'NOREPLACE to a free name');
      await expectMissing(a);
      assert.equal(await readFile(join(dir, 'c'), 'utf8'), 'from a');
      assert.equal(await renameat2('noreplace', join(dir, 'missing'), join(dir, 'd')), 'ENOENT');
    },
  },
  {
    name: 'rename with RENAME_EXCHANGE swaps two names atomically',
    async run(dir) {
      const f = join(dir, 'f');
      await writeFile(f, 'file');
      await mkdir(join(dir, 'sub'));
      await mkdir(join(dir, 'sub', 'd'));
      await writeFile(join(dir, 'sub', 'd', 'inner'), 'inner');
      const d = join(dir, 'sub', 'd');
      const [inoF, inoD] = [(await stat(f)).ino, (await stat(d)).ino];
      assert.equal(await renameat2('exchange', f, d), 'OK', 'exchange a file and a directory across directories');
      assert.equal((await stat(f)).ino, inoD, 'the file name now holds the directory');
      assert.ok((await stat(f)).isDirectory());
      assert.equal(await readFile(join(f, 'inner'), 'utf8'), 'inner');
      assert.equal((await stat(d)).ino, inoF);
      assert.equal(await readFile(d, 'utf8'), 'file');
      assert.equal((await stat(dir)).nlink, 4, 'parent: 2 + sub + the directory moved in');
      assert.equal((await stat(join(dir, 'sub'))).nlink, 2, 'sub lost its subdirectory');
      assert.equal(await readFile(join(f, '..', 'f', 'inner'), 'utf8'), 'inner', '".." of the moved directory is its new parent');
      await writeFile(join(dir, 'g'), 'g');
      assert.equal(await renameat2('exchange', join(dir, 'g'), join(dir, 'sub', 'd')), 'OK', 'exchange two files');
      assert.equal(await readFile(join(dir, 'g'), 'utf8'), 'file');
      assert.equal(await readFile(join(dir, 'sub', 'd'), 'utf8'), 'g');
      assert.equal(await renameat2('exchange', join(dir, 'g'), join(dir, 'missing')), 'ENOENT', 'exchange with a missing name');
      assert.equal(await renameat2('exchange', f, join(f, 'inner')), 'EINVAL', 'exchange a directory with its own entry');
      assert.deepEqual((await readdir(dir)).sort(), ['f', 'g', 'sub']);
    },
  },
];
