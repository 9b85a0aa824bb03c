/** POSIX checks on special files, extended attributes, statfs and permission enforcement. */
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, readdir, readFile, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../helpers/run.js';
import { asNobody, expectMissing, modeOf, mustFail, mustRun, NOBODY, python, type PosixCheck } from './util.js';

/** Python: performs one xattr call and prints OK, the value in hex, a sorted list, or the errno name. */
const XATTR_PY = `
import errno, os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == 'get': print(os.getxattr(path, sys.argv[3]).hex())
    elif op == 'list': print(','.join(sorted(n for n in os.listxattr(path) if n.startswith('user.'))))
    elif op == 'remove': os.removexattr(path, sys.argv[3]); print('OK')
    else:
        flags = {'set': 0, 'create': os.XATTR_CREATE, 'replace': os.XATTR_REPLACE}[op]
        os.setxattr(path, sys.argv[3], bytes.fromhex(sys.argv[4]), flags); print('OK')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
`;
const xattr = (op: string, ...args: string[]): Promise<string> => python(XATTR_PY, [op, ...args]);
const hex = (s: string): string => Buffer.from(s).toString('hex');

export const specialChecks: readonly PosixCheck[] = [
  {
    name: 'mkfifo makes a FIFO that passes data',
    async run(dir) {
      const p = join(dir, 'fifo');
      await mustRun('mkfifo', ['-m', '0640', p]);
      const s = await lstat(p);
      assert.ok(s.isFIFO(), 'lstat reports a FIFO');
      assert.equal(await modeOf(p), 0o640);
      assert.ok((await readdir(dir, { withFileTypes: true }))[0].isFIFO(), 'readdir reports a FIFO');
      const writer = run('sh', ['-c', 'printf "through the pipe" > "$1"', 'sh', p], { timeoutMs: 20_000 });
      const reader = run('cat', [p], { timeoutMs: 20_000 });
      const [w, r] = await Promise.all([writer, reader]);
      assert.equal(w.code, 0, `writer: ${w.stderr}`);
      assert.equal(r.stdout, 'through the pipe');
      await unlink(p);
      await expectMissing(p);
    },
  },
  {
    name: 'xattrs: set, get, list, remove with setfattr and getfattr',
    async run(dir) {
      const f = join(dir, 'f');
      await writeFile(f, 'x');
      await mustRun('setfattr', ['-n', 'user.color', '-v', 'blue', f]);
      await mustRun('setfattr', ['-n', 'user.size', '-v', 'large', f]);
      assert.equal(await mustRun('getfattr', ['--only-values', '-n', 'user.color', f]), 'blue');
      const dump = await mustRun('getfattr', ['--absolute-names', '-d', f]);
      const attrs = dump.split('\n').filter((l) => l.startsWith('user.')).sort();
      assert.deepEqual(attrs, ['user.color="blue"', 'user.size="large"']);
      await mustRun('setfattr', ['-x', 'user.color', f]);
      const gone = await mustFail('getfattr', ['-n', 'user.color', f]);
      assert.match(gone.stderr, /No such attribute/);
      assert.equal(await xattr('list', f), 'user.size');
      await mkdir(join(dir, 'd'));
      await mustRun('setfattr', ['-n', 'user.on-dir', '-v', 'yes', join(dir, 'd')]);
      assert.equal(await mustRun('getfattr', ['--only-values', '-n', 'user.on-dir', join(dir, 'd')]), 'yes');
    },
  },
  {
    name: 'xattrs: ENODATA, XATTR_CREATE and XATTR_REPLACE, binary and empty values',
    async run(dir) {
      const f = join(dir, 'f');
      await writeFile(f, 'x');
      assert.equal(await xattr('list', f), '', 'a new file has no user xattrs');
      assert.equal(await xattr('get', f, 'user.none'), 'ENODATA', 'get of a missing xattr');
      assert.equal(await xattr('remove', f, 'user.none'), 'ENODATA', 'remove of a missing xattr');
      assert.equal(await xattr('replace', f, 'user.a', hex('v')), 'ENODATA', 'XATTR_REPLACE on a missing xattr');
      assert.equal(await xattr('create', f, 'user.a', hex('one')), 'OK');
      assert.equal(await xattr('create', f, 'user.a', hex('two')), 'EEXIST', 'XATTR_CREATE on an existing xattr');
      assert.equal(await xattr('get', f, 'user.a'), hex('one'), 'failed create kept the value');
      assert.equal(await xattr('replace', f, 'user.a', hex('three')), 'OK');
      assert.equal(await xattr('get', f, 'user.a'), hex('three'));
      const binary = '00ff0001fe7f80';
      assert.equal(await xattr('set', f, 'user.bin', binary), 'OK');
      assert.equal(await xattr('get', f, 'user.bin'), binary, 'binary value with NULs round-trips');
      assert.equal(await xattr('set', f, 'user.empty', ''), 'OK');
      assert.equal(await xattr('get', f, 'user.empty'), '', 'empty value');
      const big = 'ab'.repeat(4000);
      assert.equal(await xattr('set', f, 'user.big', big), 'OK');
      assert.equal(await xattr('get', f, 'user.big'), big, '4000-byte value');
      assert.equal(await xattr('list', f), 'user.a,user.big,user.bin,user.empty');
      assert.equal(await xattr('remove', f, 'user.a'), 'OK');
      assert.equal(await xattr('get', f, 'user.a'), 'ENODATA', 'removed xattr is gone');
      assert.equal(await readFile(f, 'utf8'), 'x', 'xattrs leave the content alone');
    },
  },
  {
    name: 'statfs and df give sane numbers',
    async run(dir) {
      await writeFile(join(dir, 'f'), Buffer.alloc(1024 * 1024, 1));
      const s = await statfs(dir);
      assert.ok(s.bsize > 0, `bsize ${s.bsize}`);
      assert.ok(s.blocks > 0, `blocks ${s.blocks}`);
      assert.ok(s.bfree <= s.blocks, `bfree ${s.bfree} <= blocks ${s.blocks}`);
      assert.ok(s.bavail <= s.bfree, `bavail ${s.bavail} <= bfree ${s.bfree}`);
      assert.ok(s.ffree <= s.files, `ffree ${s.ffree} <= files ${s.files}`);
      const out = await mustRun('df', ['-P', '-k', dir]);
      const fields = out.trim().split('\n')[1]?.split(/\s+/) ?? [];
      assert.equal(fields.length >= 6, true, `df output: ${out}`);
      const [total, used, avail] = fields.slice(1, 4).map(Number);
      assert.ok(total > 0 && used >= 0 && avail >= 0, `df numbers: ${fields.join(' ')}`);
      assert.ok(used + avail <= total * 1.1 + 1, `used + available within total: ${fields.join(' ')}`);
    },
  },
  {
    name: 'permissions are enforced for a non-root user',
    async run(dir) {
      await chmod(dir, 0o755);
      const pub = join(dir, 'pub');
      await mkdir(pub, 0o755);
      await writeFile(join(pub, 'readable'), 'public', { mode: 0o644 });
      await writeFile(join(pub, 'private'), 'secret', { mode: 0o600 });
      await chmod(join(pub, 'private'), 0o600);
      // Positive controls: these must work, or the denials below prove nothing.
      assert.equal(await asNobody('readdir', pub), 'OK', 'nobody lists a 0755 directory');
      assert.equal(await asNobody('readFile', join(pub, 'readable')), 'OK', 'nobody reads a 0644 file');
      assert.equal(await asNobody('readFile', join(pub, 'private')), 'EACCES', 'nobody reads a 0600 file');
      assert.equal(await asNobody('appendFile', join(pub, 'readable')), 'EACCES', 'nobody writes a 0644 root file');
      assert.equal(await asNobody('writeFile', join(pub, 'new')), 'EACCES', 'nobody creates in a 0755 root directory');
      assert.equal(await asNobody('unlink', join(pub, 'readable')), 'EACCES', 'nobody unlinks in a 0755 root directory');
      const secret = join(dir, 'secret');
      await mkdir(secret);
      await chmod(secret, 0o700);
      await writeFile(join(secret, 'f'), 'x', { mode: 0o644 });
      assert.equal(await asNobody('readdir', secret), 'EACCES', 'nobody lists a 0700 directory');
      assert.equal(await asNobody('stat', join(secret, 'f')), 'EACCES', 'nobody looks up inside a 0700 directory');
      assert.equal(await asNobody('readFile', join(secret, 'f')), 'EACCES', 'nobody opens inside a 0700 directory');
      assert.equal(await asNobody('writeFile', join(secret, 'g')), 'EACCES', 'nobody creates inside a 0700 directory');
      const searchOnly = join(dir, 'search-only');
      await mkdir(searchOnly);
      await chmod(searchOnly, 0o711);
      await writeFile(join(searchOnly, 'known'), 'k', { mode: 0o644 });
      assert.equal(await asNobody('readdir', searchOnly), 'EACCES', 'nobody lists a 0711 directory');
      assert.equal(await asNobody('readFile', join(searchOnly, 'known')), 'OK', 'nobody opens a known name in a 0711 directory');
      const open = join(dir, 'open');
      await mkdir(open);
      await chmod(open, 0o777);
      assert.equal(await asNobody('writeFile', join(open, 'mine')), 'OK', 'nobody creates in a 0777 directory');
      const mine = await stat(join(open, 'mine'));
      assert.deepEqual([mine.uid, mine.gid], [NOBODY, NOBODY], 'a new file belongs to its creator');
      const sticky = join(dir, 'sticky');
      await mkdir(sticky);
      await chmod(sticky, 0o1777);
      await writeFile(join(sticky, 'roots'), 'r');
      assert.equal(await asNobody('unlink', join(sticky, 'roots')), 'EPERM', "nobody unlinks root's file in a sticky directory");
      assert.equal(await asNobody('writeFile', join(sticky, 'own')), 'OK');
      assert.equal(await asNobody('unlink', join(sticky, 'own')), 'OK', 'nobody unlinks its own file in a sticky directory');
    },
  },
];
