/** POSIX checks on directories and names: mkdir, rmdir, unlink, nlink, readdir, name length. */
import assert from 'node:assert/strict';
import { lstat, mkdir, opendir, readdir, readFile, rename, rmdir, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pMap from 'p-map';
import { expectErrno, expectMissing, modeOf, type PosixCheck } from './util.js';


export const dirChecks: readonly PosixCheck[] = [
  {
    name: 'mkdir and rmdir with their errnos',
    async run(dir) {
      const d = join(dir, 'd');
      await mkdir(d, 0o750);
      const umask = process.umask();
      assert.equal(await modeOf(d), 0o750 & ~umask, 'mode given to mkdir, less the umask');
      assert.ok((await stat(d)).isDirectory());
      assert.deepEqual(await readdir(d), [], 'a new directory is empty');
      await expectErrno(mkdir(d), 'EEXIST', 'mkdir of an existing directory');
      await writeFile(join(dir, 'f'), 'x');
      await expectErrno(mkdir(join(dir, 'f')), 'EEXIST', 'mkdir over a file');
      await expectErrno(mkdir(join(dir, 'no', 'such')), 'ENOENT', 'mkdir under a missing parent');
      await expectErrno(mkdir(join(dir, 'f', 'sub')), 'ENOTDIR', 'mkdir under a file');
      await writeFile(join(d, 'inner'), 'x');
      await expectErrno(rmdir(d), 'ENOTEMPTY', 'rmdir of a non-empty directory');
      await expectErrno(rmdir(join(dir, 'f')), 'ENOTDIR', 'rmdir of a file');
      await expectErrno(rmdir(join(dir, 'missing')), 'ENOENT', 'rmdir of a missing name');
      await unlink(join(d, 'inner'));
      await rmdir(d);
      await expectMissing(d);
      assert.deepEqual(await readdir(dir), ['f']);
    },
  },
  {
    name: 'unlink removes files and symlinks, not directories',
    async run(dir) {
      await writeFile(join(dir, 'f'), 'x');
      await symlink('f', join(dir, 'l'));
      await unlink(join(dir, 'l'));
      await expectMissing(join(dir, 'l'));
      assert.ok((await stat(join(dir, 'f'))).isFile(), 'unlinking a symlink keeps its target');
      await unlink(join(dir, 'f'));
      await expectMissing(join(dir, 'f'));
      await expectErrno(unlink(join(dir, 'f')), 'ENOENT', 'unlink of a missing name');
      await mkdir(join(dir, 'd'));
      // POSIX allows EPERM; Linux answers EISDIR.
      await expectErrno(unlink(join(dir, 'd')), 'EISDIR', 'unlink of a directory');
      await writeFile(join(dir, 'g'), 'x');
      await expectErrno(unlink(join(dir, 'g', 'x')), 'ENOTDIR', 'unlink below a file');
    },
  },
  {
    name: 'directory nlink is 2 plus subdirectories',
    async run(dir) {
      const d = join(dir, 'd');
      await mkdir(d);
      assert.equal((await stat(d)).nlink, 2, 'empty directory');
      await mkdir(join(d, 'a'));
      await mkdir(join(d, 'b'));
      assert.equal((await stat(d)).nlink, 4, 'two subdirectories');
      await writeFile(join(d, 'file'), 'x');
      await symlink('a', join(d, 'link'));
      assert.equal((await stat(d)).nlink, 4, 'files and symlinks do not count');
      await rmdir(join(d, 'a'));
      assert.equal((await stat(d)).nlink, 3, 'after rmdir');
      await rename(join(d, 'b'), join(dir, 'b'));
      assert.equal((await stat(d)).nlink, 2, 'after moving a subdirectory out');
    },
  },
  {
    name: 'readdir of 10,000 entries returns every name once',
    timeoutMs: 240_000,
    async run(dir) {
      const d = join(dir, 'big');
      await mkdir(d);
      const names = Array.from({ length: 10_000 }, (_, i) => `entry-${String(i).padStart(5, '0')}-${(i * 7919) % 10007}`);
      await pMap(names, (n) => writeFile(join(d, n), ''), { concurrency: 16 });
      const listed = await readdir(d);
      assert.equal(listed.length, names.length, 'number of names');
      assert.equal(new Set(listed).size, listed.length, 'no duplicates');
      assert.deepEqual([...listed].sort(), [...names].sort());
      // A streaming directory handle (getdents in small batches) sees the same names.
      let streamed = 0;
      for await (const ent of await opendir(d, { bufferSize: 32 })) {
        assert.ok(ent.isFile(), `${ent.name} listed as a regular file`);
        streamed++;
      }
      assert.equal(streamed, names.length, 'entries seen by opendir');
    },
  },
  {
    name: 'a listing read in small batches while names come and go lists each lasting name once',
    timeoutMs: 240_000,
    async run(dir) {
      const d = join(dir, 'changing');
      await mkdir(d);
      const lasting = Array.from({ length: 1500 }, (_, i) => `stays-${i}`);
      const going = Array.from({ length: 500 }, (_, i) => `goes-${i}`);
      await pMap([...lasting, ...going], (n) => writeFile(join(d, n), ''), { concurrency: 16 });
      const seen = new Map<string, number>();
      let read = 0;
      const handle = await opendir(d, { bufferSize: 16 });
      for await (const ent of handle) {
        seen.set(ent.name, (seen.get(ent.name) ?? 0) + 1);
        // Every 100 names read: 100 new names (directory records split) and 25 removed.
        if (++read % 100 === 0) {
          await pMap(Array.from({ length: 100 }, (_, i) => `new-${read}-${i}`), (n) => writeFile(join(d, n), ''), { concurrency: 16 });
          await pMap(going.splice(0, 25), (n) => unlink(join(d, n)), { concurrency: 16 });
        }
      }
      for (const name of lasting) assert.equal(seen.get(name), 1, `${name} listed once`);
      for (const [name, count] of seen) assert.equal(count, 1, `${name} listed ${count} times`);
    },
  },
  {
    name: 'names that are JavaScript property names are names like any other',
    async run(dir) {
      const names = ['__proto__', '__proto_', '__proto___', 'constructor', 'toString', 'hasOwnProperty', '0'];
      for (const [i, n] of names.entries()) await writeFile(join(dir, n), `content ${i}`);
      assert.deepEqual((await readdir(dir)).sort(), [...names].sort());
      for (const [i, n] of names.entries()) assert.equal(await readFile(join(dir, n), 'utf8'), `content ${i}`, n);
      await rename(join(dir, 'constructor'), join(dir, '__proto__'));
      assert.equal(await readFile(join(dir, '__proto__'), 'utf8'), 'content 3', 'renamed over __proto__');
      await unlink(join(dir, '__proto___'));
      await mkdir(join(dir, '__proto__dir'));
      await writeFile(join(dir, '__proto__dir', '__proto__'), 'inner');
      assert.equal(await readFile(join(dir, '__proto__dir', '__proto__'), 'utf8'), 'inner');
      assert.deepEqual((await readdir(dir)).sort(), ['0', '__proto_', '__proto__', '__proto__dir', 'hasOwnProperty', 'toString']);
    },
  },
  {
    name: 'names of 255 bytes work, 256 give ENAMETOOLONG',
    async run(dir) {
      const ok = 'n'.repeat(255);
      const long = 'n'.repeat(256);
      await writeFile(join(dir, ok), 'x');
      assert.ok((await stat(join(dir, ok))).isFile());
      assert.deepEqual(await readdir(dir), [ok]);
      // 255 bytes of UTF-8 (85 three-byte characters) is also a legal name.
      const wide = '€'.repeat(85);
      await mkdir(join(dir, wide));
      assert.ok((await lstat(join(dir, wide))).isDirectory());
      await expectErrno(writeFile(join(dir, long), 'x'), 'ENAMETOOLONG', 'create with a 256-byte name');
      await expectErrno(mkdir(join(dir, long)), 'ENAMETOOLONG', 'mkdir with a 256-byte name');
      await expectErrno(symlink('x', join(dir, long)), 'ENAMETOOLONG', 'symlink with a 256-byte name');
      await expectErrno(rename(join(dir, ok), join(dir, long)), 'ENAMETOOLONG', 'rename to a 256-byte name');
      await expectErrno(stat(join(dir, long)), 'ENAMETOOLONG', 'lookup of a 256-byte name');
      assert.deepEqual((await readdir(dir)).sort(), [ok, wide].sort(), 'failed calls created nothing');
    },
  },
];
