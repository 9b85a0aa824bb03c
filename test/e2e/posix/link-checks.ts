/** POSIX checks on hard links and symbolic links. */
import assert from 'node:assert/strict';
import { chmod, link, lstat, mkdir, open, readFile, readlink, realpath, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectErrno, expectMissing, type PosixCheck } from './util.js';

export const linkChecks: readonly PosixCheck[] = [
  {
    name: 'hard links share inode, content and nlink',
    async run(dir) {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      await mkdir(join(dir, 'sub'));
      const c = join(dir, 'sub', 'c');
      await writeFile(a, 'shared');
      await link(a, b);
      await link(b, c);
      const [sa, sb, sc] = await Promise.all([stat(a), stat(b), stat(c)]);
      assert.equal(sb.ino, sa.ino, 'same inode');
      assert.equal(sc.ino, sa.ino, 'same inode across directories');
      for (const s of [sa, sb, sc]) assert.equal(s.nlink, 3, 'nlink counts every name');
      const fh = await open(b, 'r+');
      try {
        await fh.write(Buffer.from('S'), 0, 1, 0);
      } finally {
        await fh.close();
      }
      assert.equal(await readFile(a, 'utf8'), 'Shared', 'a write through one name shows through the others');
      assert.equal(await readFile(c, 'utf8'), 'Shared');
      await unlink(a);
      await expectMissing(a);
      assert.equal((await stat(b)).nlink, 2, 'nlink after one unlink');
      await unlink(c);
      assert.equal((await stat(b)).nlink, 1);
      assert.equal(await readFile(b, 'utf8'), 'Shared', 'the last name keeps the content');
    },
  },
  {
    name: 'every name of a hard-linked file shows its nlink, mode and ctime at once',
    async run(dir) {
      // One inode behind every name: a change made through one name must show through the
      // others right away, however long the attributes are cached.
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      await writeFile(a, 'x');
      await link(a, b);
      const before = await stat(b, { bigint: true });
      assert.equal(before.nlink, 2n);
      await new Promise((r) => setTimeout(r, 20));
      await link(a, join(dir, 'c'));
      const after = await stat(b, { bigint: true });
      assert.equal(after.nlink, 3n, 'nlink through another name after link');
      assert.ok(after.ctimeNs > before.ctimeNs, 'ctime through another name after link');
      await chmod(a, 0o600);
      assert.equal((await stat(b)).mode & 0o7777, 0o600, 'mode through another name after chmod');
      await unlink(join(dir, 'c'));
      assert.equal((await stat(b)).nlink, 2, 'nlink through another name after unlink');
      await writeFile(a, 'longer');
      assert.equal((await stat(b)).size, 6, 'size through another name after a write');
    },
  },
  {
    name: 'link errnos: existing target, directory source, missing source',
    async run(dir) {
      await writeFile(join(dir, 'a'), 'x');
      await writeFile(join(dir, 'b'), 'y');
      await mkdir(join(dir, 'd'));
      await expectErrno(link(join(dir, 'a'), join(dir, 'b')), 'EEXIST', 'link onto an existing name');
      await expectErrno(link(join(dir, 'd'), join(dir, 'd2')), 'EPERM', 'hard link to a directory');
      await expectErrno(link(join(dir, 'missing'), join(dir, 'c')), 'ENOENT', 'link of a missing source');
      assert.equal((await stat(join(dir, 'a'))).nlink, 1, 'failed links leave nlink alone');
      assert.equal(await readFile(join(dir, 'b'), 'utf8'), 'y');
    },
  },
  {
    name: 'symlinks: readlink, lstat versus stat, dangling links',
    async run(dir) {
      await writeFile(join(dir, 'target'), 'content');
      await symlink('target', join(dir, 'rel'));
      await symlink(join(dir, 'target'), join(dir, 'abs'));
      await symlink('does/not/exist', join(dir, 'dangling'));
      await mkdir(join(dir, 'd'));
      await symlink('d', join(dir, 'dirlink'));
      assert.equal(await readlink(join(dir, 'rel')), 'target');
      assert.equal(await readlink(join(dir, 'abs')), join(dir, 'target'));
      assert.equal(await readlink(join(dir, 'dangling')), 'does/not/exist');
      const l = await lstat(join(dir, 'rel'));
      assert.ok(l.isSymbolicLink(), 'lstat sees the link');
      assert.equal(l.size, 'target'.length, 'a symlink size is its target length');
      assert.ok((await stat(join(dir, 'rel'))).isFile(), 'stat follows the link');
      assert.equal(await readFile(join(dir, 'abs'), 'utf8'), 'content');
      assert.ok((await lstat(join(dir, 'dangling'))).isSymbolicLink());
      await expectErrno(stat(join(dir, 'dangling')), 'ENOENT', 'stat through a dangling link');
      assert.ok((await stat(join(dir, 'dirlink'))).isDirectory());
      await writeFile(join(dir, 'dirlink', 'via-link'), 'x');
      assert.equal(await readFile(join(dir, 'd', 'via-link'), 'utf8'), 'x', 'path walk through a directory symlink');
      assert.equal(await realpath(join(dir, 'dirlink', 'via-link')), join(await realpath(dir), 'd', 'via-link'));
      await expectErrno(readlink(join(dir, 'target')), 'EINVAL', 'readlink of a regular file');
      await expectErrno(symlink('x', join(dir, 'rel')), 'EEXIST', 'symlink onto an existing name');
      // Writing through a dangling link creates its target.
      await symlink('created-by-write', join(dir, 'maker'));
      await writeFile(join(dir, 'maker'), 'made');
      assert.equal(await readFile(join(dir, 'created-by-write'), 'utf8'), 'made');
    },
  },
  {
    name: 'symlink targets keep long and unusual bytes',
    async run(dir) {
      const long = 'x/'.repeat(1000) + 'end'; // 2003 bytes, within PATH_MAX
      const odd = 'spaces and\ttabs/ünïcødé/../..';
      await symlink(long, join(dir, 'long'));
      await symlink(odd, join(dir, 'odd'));
      assert.equal(await readlink(join(dir, 'long')), long);
      assert.equal(await readlink(join(dir, 'odd')), odd);
      assert.equal((await lstat(join(dir, 'odd'))).size, Buffer.byteLength(odd));
    },
  },
];
