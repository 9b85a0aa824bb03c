/** POSIX checks on attributes: mode, ownership, timestamps and when they change. */
import assert from 'node:assert/strict';
import { appendFile, chmod, chown, lchown, link, lstat, mkdir, open, rename, rmdir, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { modeOf, mustRun, tick, timesNs, type PosixCheck } from './util.js';

const SEC = 1_000_000_000n;
/** 2001-02-03T04:05:06.123456789Z and 1999-12-31T23:59:58.987654321Z as epoch nanoseconds. */
const T1 = 981173106n * SEC + 123456789n;
const T2 = 946684798n * SEC + 987654321n;
const touchArg = (ns: bigint): string => `@${ns / SEC}.${String(ns % SEC).padStart(9, '0')}`;

/** Sets atime and mtime to a fixed point far in the past, so any update is visible. */
async function age(path: string): Promise<void> {
  await utimes(path, 1_000_000_000, 1_000_000_000);
}

async function expectUpdated(path: string, before: { mtime: bigint; ctime: bigint }, what: string, m: boolean, c: boolean): Promise<void> {
  const after = await timesNs(path);
  if (m) assert.ok(after.mtime > before.mtime, `${what}: mtime of ${path} should advance`);
  else assert.equal(after.mtime, before.mtime, `${what}: mtime of ${path} should not change`);
  if (c) assert.ok(after.ctime > before.ctime, `${what}: ctime of ${path} should advance`);
}

export const attrChecks: readonly PosixCheck[] = [
  {
    name: 'chmod sets permission, setuid and sticky bits',
    async run(dir) {
      const f = join(dir, 'f');
      await writeFile(f, 'x');
      await chmod(f, 0o640);
      assert.equal(await modeOf(f), 0o640);
      await chmod(f, 0o4755);
      assert.equal(await modeOf(f), 0o4755, 'setuid kept when root sets it');
      await chmod(f, 0);
      assert.equal(await modeOf(f), 0);
      const d = join(dir, 'd');
      await mkdir(d);
      await chmod(d, 0o1777);
      assert.equal(await modeOf(d), 0o1777, 'sticky directory');
      assert.ok((await stat(d)).isDirectory(), 'chmod keeps the file type');
      const fh = await open(join(dir, 'g'), 'w', 0o600);
      try {
        await fh.chmod(0o604);
        assert.equal((await fh.stat()).mode & 0o7777, 0o604, 'fchmod');
      } finally {
        await fh.close();
      }
      await symlink('f', join(dir, 'l'));
      await chmod(join(dir, 'l'), 0o600); // follows the link
      assert.equal(await modeOf(f), 0o600);
      assert.ok((await lstat(join(dir, 'l'))).isSymbolicLink());
    },
  },
  {
    name: 'chown and lchown as root',
    async run(dir) {
      const f = join(dir, 'f');
      await writeFile(f, 'x');
      await chown(f, 1234, 5678);
      let s = await stat(f);
      assert.deepEqual([s.uid, s.gid], [1234, 5678]);
      await chown(f, -1, 4321); // -1 leaves the uid alone
      s = await stat(f);
      assert.deepEqual([s.uid, s.gid], [1234, 4321]);
      await symlink('f', join(dir, 'l'));
      await lchown(join(dir, 'l'), 42, 43);
      const l = await lstat(join(dir, 'l'));
      assert.deepEqual([l.uid, l.gid], [42, 43], 'lchown changes the link');
      s = await stat(f);
      assert.deepEqual([s.uid, s.gid], [1234, 4321], 'lchown leaves the target alone');
      await mkdir(join(dir, 'd'));
      await chown(join(dir, 'd'), 7, 8);
      const d = await stat(join(dir, 'd'));
      assert.deepEqual([d.uid, d.gid], [7, 8]);
    },
  },
  {
    name: 'utimens: explicit times, UTIME_OMIT and UTIME_NOW via touch',
    async run(dir) {
      const f = join(dir, 'f');
      await writeFile(f, 'x');
      await utimes(f, 1_500_000_000, 1_600_000_000);
      let t = await timesNs(f);
      assert.equal(t.atime, 1_500_000_000n * SEC);
      assert.equal(t.mtime, 1_600_000_000n * SEC);
      // touch -m -d: mtime given, atime UTIME_OMIT.
      await mustRun('touch', ['-m', '-d', touchArg(T1), f]);
      t = await timesNs(f);
      assert.equal(t.mtime, T1, 'mtime set to the nanosecond');
      assert.equal(t.atime, 1_500_000_000n * SEC, 'atime untouched (UTIME_OMIT)');
      // touch -a -d: atime given, mtime UTIME_OMIT.
      await mustRun('touch', ['-a', '-d', touchArg(T2), f]);
      t = await timesNs(f);
      assert.equal(t.atime, T2, 'atime set to the nanosecond');
      assert.equal(t.mtime, T1, 'mtime untouched (UTIME_OMIT)');
      // touch -m alone: mtime UTIME_NOW, atime UTIME_OMIT.
      const before = BigInt(Date.now() - 2000) * 1_000_000n;
      const ctimeBefore = t.ctime;
      await tick();
      await mustRun('touch', ['-m', f]);
      t = await timesNs(f);
      const after = BigInt(Date.now() + 2000) * 1_000_000n;
      assert.ok(t.mtime >= before && t.mtime <= after, `mtime ${t.mtime} should be now (UTIME_NOW)`);
      assert.equal(t.atime, T2, 'atime untouched by touch -m');
      assert.ok(t.ctime > ctimeBefore, 'ctime advances on utimens');
    },
  },
  {
    name: 'nanosecond timestamps on files, directories and symlinks',
    async run(dir) {
      await writeFile(join(dir, 'f'), 'x');
      await mkdir(join(dir, 'd'));
      await symlink('f', join(dir, 'l'));
      await mustRun('touch', ['-d', touchArg(T1), join(dir, 'f'), join(dir, 'd')]);
      await mustRun('touch', ['-h', '-d', touchArg(T2), join(dir, 'l')]);
      for (const name of ['f', 'd']) {
        const s = await stat(join(dir, name), { bigint: true });
        assert.equal(s.mtimeNs, T1, `mtime of ${name}`);
        assert.equal(s.atimeNs, T1, `atime of ${name}`);
      }
      const l = await lstat(join(dir, 'l'), { bigint: true });
      assert.equal(l.mtimeNs, T2, 'mtime of the symlink itself (touch -h)');
      assert.equal((await stat(join(dir, 'f'), { bigint: true })).mtimeNs, T1, 'target untouched by touch -h');
      const odd = 1_234_567_890n * SEC + 1n; // one nanosecond past the second
      await mustRun('touch', ['-m', '-d', touchArg(odd), join(dir, 'f')]);
      assert.equal((await stat(join(dir, 'f'), { bigint: true })).mtimeNs, odd);
    },
  },
  {
    name: 'write, append and truncate update mtime and ctime; chmod only ctime',
    async run(dir) {
      const f = join(dir, 'f');
      await writeFile(f, 'start');
      await age(f);
      let before = await timesNs(f);
      await tick();
      const fh = await open(f, 'r+');
      try {
        await fh.write(Buffer.from('X'), 0, 1, 2);
      } finally {
        await fh.close();
      }
      await expectUpdated(f, before, 'pwrite', true, true);
      await age(f);
      before = await timesNs(f);
      await tick();
      await appendFile(f, 'more');
      await expectUpdated(f, before, 'append', true, true);
      await age(f);
      before = await timesNs(f);
      await tick();
      await truncate(f, 2);
      await expectUpdated(f, before, 'truncate', true, true);
      await age(f);
      before = await timesNs(f);
      await tick();
      await chmod(f, 0o600);
      await expectUpdated(f, before, 'chmod', false, true);
      before = await timesNs(f);
      await tick();
      await link(f, join(dir, 'f2'));
      await expectUpdated(f, before, 'link', false, true);
    },
  },
  {
    name: 'directory mtime and ctime change when entries change',
    async run(dir) {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      await mkdir(a);
      await mkdir(b);
      const step = async (what: string, dirs: string[], op: () => Promise<void>): Promise<void> => {
        for (const d of dirs) await age(d);
        const before = await Promise.all(dirs.map(timesNs));
        await tick();
        await op();
        for (const [i, d] of dirs.entries()) await expectUpdated(d, before[i], what, true, true);
      };
      await step('create', [a], () => writeFile(join(a, 'f'), 'x'));
      await step('mkdir', [a], () => mkdir(join(a, 'sub')));
      await step('symlink', [a], () => symlink('f', join(a, 'l')));
      await step('link', [a], () => link(join(a, 'f'), join(a, 'f2')));
      await step('rename within', [a], () => rename(join(a, 'f2'), join(a, 'f3')));
      await step('rename across', [a, b], () => rename(join(a, 'f3'), join(b, 'f3')));
      await step('unlink', [b], () => unlink(join(b, 'f3')));
      await step('rmdir', [a], () => rmdir(join(a, 'sub')));
      // Writing a file's content leaves its directory alone.
      await age(a);
      const before = await timesNs(a);
      await tick();
      await writeFile(join(a, 'f'), 'changed');
      assert.equal((await timesNs(a)).mtime, before.mtime, 'writing a file does not touch its directory mtime');
    },
  },
  {
    name: 'cp -a and rsync -a preserve modes, owners and mtimes',
    async run(dir) {
      // cp -a sets the mode through the system.posix_acl_access xattr when the filesystem takes
      // it, and only falls back to chmod when that fails: a filesystem that stores the xattr
      // without applying it to the mode leaves every copy at its creation mode (0600/0700).
      await mkdir(join(dir, 'src', 'sub'), { recursive: true });
      await writeFile(join(dir, 'src', 'f644'), 'a');
      await chmod(join(dir, 'src', 'f644'), 0o644);
      await writeFile(join(dir, 'src', 'f4755'), 'b');
      await chmod(join(dir, 'src', 'f4755'), 0o4755);
      await chmod(join(dir, 'src', 'sub'), 0o751);
      await chown(join(dir, 'src', 'f644'), 1234, 5678);
      await mustRun('touch', ['-m', '-d', touchArg(T1), join(dir, 'src', 'f644'), join(dir, 'src', 'sub')]);
      for (const [tool, args] of [['cp', ['-a', 'src', 'cp-copy']], ['rsync', ['-a', 'src/', 'rsync-copy/']]] as const) {
        await mustRun('sh', ['-c', 'cd "$1" && shift && exec "$@"', 'sh', dir, tool, ...args]);
        const copy = join(dir, `${tool}-copy`);
        assert.equal(await modeOf(join(copy, 'f644')), 0o644, `${tool}: mode of a 0644 file`);
        assert.equal(await modeOf(join(copy, 'f4755')), 0o4755, `${tool}: mode of a setuid file`);
        assert.equal(await modeOf(join(copy, 'sub')), 0o751, `${tool}: mode of a 0751 directory`);
        const s = await stat(join(copy, 'f644'), { bigint: true });
        assert.deepEqual([s.uid, s.gid], [1234n, 5678n], `${tool}: owner`);
        assert.equal(s.mtimeNs, T1, `${tool}: file mtime`);
        assert.equal((await stat(join(copy, 'sub'), { bigint: true })).mtimeNs, T1, `${tool}: directory mtime`);
      }
    },
  },
];
