/** POSIX checks on regular file contents: create, read, write, append, truncate, holes, fsync. */
import assert from 'node:assert/strict';
import { appendFile, mkdir, open, readdir, readFile, rename, rmdir, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectErrno, expectMissing, patternBytes, type PosixCheck } from './util.js';

const MiB = 1024 * 1024;

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export const fileChecks: readonly PosixCheck[] = [
  {
    name: 'create, write and read back a file',
    async run(dir) {
      const p = join(dir, 'f');
      await writeFile(p, 'hello');
      assert.equal(await readFile(p, 'utf8'), 'hello');
      const s = await stat(p);
      assert.ok(s.isFile(), 'a regular file');
      assert.equal(s.size, 5);
      assert.equal(s.nlink, 1);
      await writeFile(p, 'bye'); // O_TRUNC
      assert.equal(await readFile(p, 'utf8'), 'bye');
      const empty = join(dir, 'empty');
      await writeFile(empty, '');
      assert.equal((await stat(empty)).size, 0);
      assert.equal((await readFile(empty)).length, 0);
      await expectErrno(readFile(join(dir, 'missing')), 'ENOENT', 'read of a missing file');
      await expectErrno(writeFile(join(dir, 'nodir', 'f'), 'x'), 'ENOENT', 'create under a missing directory');
      await expectErrno(writeFile(join(dir, 'f', 'g'), 'x'), 'ENOTDIR', 'create under a regular file');
      await expectErrno(readFile(dir), 'EISDIR', 'read of a directory');
    },
  },
  {
    name: 'append, also with pwrite on O_APPEND',
    async run(dir) {
      const p = join(dir, 'f');
      await writeFile(p, 'abc');
      await appendFile(p, 'def');
      assert.equal(await readFile(p, 'utf8'), 'abcdef');
      const fh = await open(p, 'a');
      try {
        // Linux ignores the offset of pwrite on an O_APPEND descriptor: data goes to the end.
        await fh.write(Buffer.from('XY'), 0, 2, 0);
      } finally {
        await fh.close();
      }
      assert.equal(await readFile(p, 'utf8'), 'abcdefXY');
      assert.equal((await stat(p)).size, 8);
    },
  },
  {
    name: 'overwrite in the middle keeps the rest',
    async run(dir) {
      const p = join(dir, 'f');
      await writeFile(p, 'abcdefghijklmnopqrst');
      const fh = await open(p, 'r+');
      try {
        await fh.write(Buffer.from('XYZ'), 0, 3, 5);
      } finally {
        await fh.close();
      }
      assert.equal(await readFile(p, 'utf8'), 'abcdeXYZijklmnopqrst');
      assert.equal((await stat(p)).size, 20);
    },
  },
  {
    name: 'read at and past EOF returns short or zero counts',
    async run(dir) {
      const p = join(dir, 'f');
      await writeFile(p, '0123456789');
      assert.equal((await readAt(p, 100, 10)).length, 0, 'read far past EOF');
      assert.equal((await readAt(p, 10, 10)).length, 0, 'read exactly at EOF');
      assert.equal((await readAt(p, 5, 100)).toString(), '56789', 'read spanning EOF');
    },
  },
  {
    name: 'writes across block boundaries read back exactly',
    async run(dir) {
      const p = join(dir, 'f');
      const size = 3 * MiB + 17;
      const data = patternBytes(size, 1);
      // Expected content: the data, then patches, the last one past EOF after a hole of zeros.
      const model = Buffer.alloc(4 * MiB + 90);
      data.copy(model);
      const fh = await open(p, 'w+');
      try {
        // Pieces of an odd size so that no write lines up with a power-of-two block.
        for (let off = 0; off < size; off += MiB + 1) {
          await fh.write(data, off, Math.min(size, off + MiB + 1) - off, off);
        }
        for (const at of [MiB - 50, 2 * MiB - 1, 4 * MiB - 10]) {
          const patch = patternBytes(100, at);
          await fh.write(patch, 0, patch.length, at);
          patch.copy(model, at);
        }
        assert.equal((await fh.stat()).size, model.length, 'fstat size while open');
      } finally {
        await fh.close();
      }
      const back = await readFile(p);
      assert.equal(back.length, model.length);
      assert.ok(back.equals(model), 'content equals the writes, hole reads zeros');
    },
  },
  {
    name: 'truncate down, up and ftruncate',
    async run(dir) {
      const p = join(dir, 'f');
      await writeFile(p, 'hello world');
      await truncate(p, 5);
      assert.equal(await readFile(p, 'utf8'), 'hello');
      await truncate(p, 10);
      assert.deepEqual(await readFile(p), Buffer.concat([Buffer.from('hello'), Buffer.alloc(5)]), 'growth reads zeros');
      // Data cut off by a truncate must not come back when the file grows again.
      await writeFile(p, 'abcdefgh');
      await truncate(p, 2);
      await truncate(p, 8);
      assert.deepEqual(await readFile(p), Buffer.concat([Buffer.from('ab'), Buffer.alloc(6)]), 'no stale bytes after shrink+grow');
      const fh = await open(p, 'r+');
      try {
        await fh.truncate(1);
        assert.equal((await fh.stat()).size, 1, 'fstat size after ftruncate');
        await fh.truncate(3 * MiB);
        assert.equal((await fh.stat()).size, 3 * MiB);
      } finally {
        await fh.close();
      }
      const back = await readFile(p);
      assert.equal(back.length, 3 * MiB);
      assert.equal(back[0], 'a'.charCodeAt(0));
      assert.ok(back.subarray(1).every((b) => b === 0), 'bytes past the old end are zero');
      await truncate(p, 0);
      assert.equal((await stat(p)).size, 0);
      await expectErrno(truncate(dir, 0), 'EISDIR', 'truncate of a directory');
      await expectErrno(truncate(join(dir, 'missing'), 0), 'ENOENT', 'truncate of a missing file');
    },
  },
  {
    name: 'sparse file: 100 MiB hole reads zeros',
    async run(dir) {
      const p = join(dir, 'sparse');
      const off = 100 * MiB;
      const fh = await open(p, 'w');
      try {
        await fh.write(Buffer.from('tail'), 0, 4, off);
      } finally {
        await fh.close();
      }
      assert.equal((await stat(p)).size, off + 4);
      assert.deepEqual(await readAt(p, 0, 16), Buffer.alloc(16), 'start of the hole');
      const mid = await readAt(p, 50 * MiB - 3, 128 * 1024);
      assert.equal(mid.length, 128 * 1024);
      assert.ok(mid.every((b) => b === 0), 'middle of the hole is zero');
      assert.deepEqual(await readAt(p, off - 2, 100), Buffer.from('\0\0tail', 'latin1'), 'end of hole then data then EOF');
    },
  },
  {
    name: 'fsync and fdatasync on files and directories',
    async run(dir) {
      const p = join(dir, 'f');
      const fh = await open(p, 'w');
      try {
        await fh.write(Buffer.from('durable'));
        await fh.sync();
        await fh.datasync();
      } finally {
        await fh.close();
      }
      const dh = await open(dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
      assert.equal(await readFile(p, 'utf8'), 'durable');
    },
  },
  {
    name: 'open, unlink, then read and write through the open file',
    async run(dir) {
      const p = join(dir, 'f');
      await writeFile(p, 'still here');
      const fh = await open(p, 'r+');
      try {
        await unlink(p);
        await expectMissing(p, 'unlinked name');
        const buf = Buffer.alloc(64);
        const { bytesRead } = await fh.read(buf, 0, 64, 0);
        assert.equal(buf.subarray(0, bytesRead).toString(), 'still here');
        await fh.write(Buffer.from('!'), 0, 1, 10);
        const again = Buffer.alloc(64);
        const r2 = await fh.read(again, 0, 64, 0);
        assert.equal(again.subarray(0, r2.bytesRead).toString(), 'still here!');
        const s = await fh.stat();
        assert.equal(s.nlink, 0, 'fstat of an unlinked file');
        assert.equal(s.size, 11);
      } finally {
        await fh.close();
      }
      await expectMissing(p, 'unlinked name after close');
      await writeFile(p, 'new'); // the name is free again
      assert.equal(await readFile(p, 'utf8'), 'new');
    },
  },
  {
    name: 'fstat, fchmod, fchown and futimens of an unlinked open file',
    async run(dir) {
      const p = join(dir, 'f');
      await writeFile(p, 'kept', { mode: 0o644 });
      await mkdir(join(dir, 'sub'));
      const other = join(dir, 'sub', 'other');
      await writeFile(other, 'x');
      const fh = await open(p, 'r+');
      try {
        await unlink(p);
        await fh.chmod(0o600);
        await fh.chown(1234, 5678);
        await fh.truncate(2);
        await fh.utimes(new Date(1_000_000_000_000), new Date(1_100_000_000_000));
        const s = await fh.stat();
        assert.equal(s.nlink, 0);
        assert.equal(s.mode & 0o7777, 0o600, 'fchmod');
        assert.deepEqual([s.uid, s.gid], [1234, 5678], 'fchown');
        assert.equal(s.mtimeMs, 1_100_000_000_000, 'futimens');
        assert.equal(s.size, 2, 'ftruncate');
        const buf = Buffer.alloc(8);
        const { bytesRead } = await fh.read(buf, 0, 8, 0);
        assert.equal(buf.subarray(0, bytesRead).toString(), 'ke');
        // The directory it was in can go while it is open.
        await rename(other, join(dir, 'moved'));
        await rmdir(join(dir, 'sub'));
      } finally {
        await fh.close();
      }
      assert.deepEqual((await readdir(dir)).sort(), ['moved'], 'nothing left of the unlinked file');
    },
  },
  {
    name: 'O_EXCL create fails on an existing name, even a dangling symlink',
    async run(dir) {
      const p = join(dir, 'f');
      const fh = await open(p, 'wx', 0o644);
      await fh.close();
      await expectErrno(open(p, 'wx'), 'EEXIST', 'O_CREAT|O_EXCL on a file');
      await expectErrno(open(dir, 'wx'), 'EEXIST', 'O_CREAT|O_EXCL on a directory');
      await symlink('nowhere', join(dir, 'dangling'));
      await expectErrno(open(join(dir, 'dangling'), 'wx'), 'EEXIST', 'O_CREAT|O_EXCL on a dangling symlink');
      await expectMissing(join(dir, 'nowhere'), 'target of the dangling symlink');
    },
  },
];
