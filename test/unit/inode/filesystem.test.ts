import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { RENAME_EXCHANGE, RENAME_NOREPLACE } from '../../../src/inode/namespace.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const O_RDWR = 2;

async function expectErrno(p: Promise<unknown>, code: string) {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof FsError && e.code === code);
}

describe('FileSystem on the memory store', () => {
  let store: MemoryStore;
  let fs: FileSystem;

  beforeEach(async () => {
    store = new MemoryStore();
    fs = new FileSystem(await Volume.open({ store, log, prefix: 't:', graceMs: 10 }));
  });
  afterEach(async () => {
    await fs.close();
  });

  async function writeFile(path: string, data: Buffer) {
    const [parent, name] = await fs.resolveParent(path);
    const ino = await fs.namespace.create(parent, name, S_IFREG | 0o644, root);
    const fh = await fs.files.open(ino, O_RDWR);
    await fs.files.write(fh, 0, data);
    await fs.files.release(fh);
    return ino;
  }
  async function readFile(path: string, length = 1 << 24) {
    const fh = await fs.files.open(await fs.resolve(path), 0);
    const buf = Buffer.alloc(length);
    const n = await fs.files.read(fh, 0, length, buf);
    await fs.files.release(fh);
    return buf.subarray(0, n);
  }

  it('rename: RENAME_NOREPLACE refuses a taken name, RENAME_EXCHANGE swaps names and parents', async () => {
    await writeFile('/a', Buffer.from('a'));
    await writeFile('/b', Buffer.from('b'));
    await expectErrno(fs.namespace.rename(ROOT_INO, 'a', ROOT_INO, 'b', RENAME_NOREPLACE), 'EEXIST');
    expect((await readFile('/b')).toString()).toBe('b');
    await expectErrno(fs.namespace.rename(ROOT_INO, 'a', ROOT_INO, 'b', RENAME_NOREPLACE | RENAME_EXCHANGE), 'EINVAL');
    const sub = await fs.mkdir('/sub', 0o755, root);
    const inner = await fs.mkdir('/sub/inner', 0o755, root);
    const fileA = await fs.resolve('/a');
    await fs.namespace.rename(ROOT_INO, 'a', sub, 'inner', RENAME_EXCHANGE);
    expect(await fs.resolve('/a')).toBe(inner);
    expect(await fs.resolve('/sub/inner')).toBe(fileA);
    expect((await fs.attributes.stat(inner)).parent).toBe(ROOT_INO);
    expect((await fs.attributes.stat(ROOT_INO)).nlink).toBe(4); // 2 + sub + the moved directory
    expect((await fs.attributes.stat(sub)).nlink).toBe(2);
    await expectErrno(fs.namespace.rename(ROOT_INO, 'a', ROOT_INO, 'missing', RENAME_EXCHANGE), 'ENOENT');
    await expectErrno(fs.namespace.rename(ROOT_INO, 'sub', sub, 'inner', RENAME_EXCHANGE), 'EINVAL');
  });

  it('writes and reads back a file spanning several chunks', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024 + 123);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await writeFile('/big', data);
    expect((await fs.attributes.stat(await fs.resolve('/big'))).size).toBe(data.length);
    expect((await readFile('/big')).equals(data)).toBe(true);
  });

  it('reads zeros in holes and keeps size on sparse writes', async () => {
    const ino = await writeFile('/sparse', Buffer.from('head'));
    const fh = await fs.files.open(ino, O_RDWR);
    await fs.files.write(fh, 5 * 1024 * 1024, Buffer.from('tail'));
    await fs.files.release(fh);
    const back = await readFile('/sparse', 6 * 1024 * 1024);
    expect(back.length).toBe(5 * 1024 * 1024 + 4);
    expect(back.subarray(0, 4).toString()).toBe('head');
    expect(back.subarray(4, 5 * 1024 * 1024).every((b) => b === 0)).toBe(true);
    expect(back.subarray(5 * 1024 * 1024).toString()).toBe('tail');
  });

  it('truncates down and up without old bytes reappearing', async () => {
    const ino = await writeFile('/t', Buffer.alloc(2 * 1024 * 1024, 0x61));
    await fs.attributes.truncate(ino, 10);
    await fs.attributes.truncate(ino, 2 * 1024 * 1024);
    const back = await readFile('/t', 3 * 1024 * 1024);
    expect(back.length).toBe(2 * 1024 * 1024);
    expect(back.subarray(0, 10).every((b) => b === 0x61)).toBe(true);
    expect(back.subarray(10).every((b) => b === 0)).toBe(true);
  });

  it('renames over an existing file and frees the old one', async () => {
    await writeFile('/a', Buffer.from('A'));
    await writeFile('/b', Buffer.from('B'));
    await fs.namespace.rename(ROOT_INO, 'a', ROOT_INO, 'b');
    expect((await readFile('/b')).toString()).toBe('A');
    await expectErrno(fs.resolve('/a'), 'ENOENT');
  });

  it('refuses to move a directory into itself and gives the POSIX errnos', async () => {
    await fs.mkdir('/d', 0o755, root);
    await fs.mkdir('/d/e', 0o755, root);
    const d = await fs.resolve('/d');
    const e = await fs.resolve('/d/e');
    await expectErrno(fs.namespace.rename(ROOT_INO, 'd', e, 'x'), 'EINVAL');
    await expectErrno(fs.namespace.rmdir(ROOT_INO, 'd'), 'ENOTEMPTY');
    await writeFile('/f', Buffer.from('x'));
    await expectErrno(fs.namespace.rename(ROOT_INO, 'f', d, 'e'), 'EISDIR');
    await expectErrno(fs.namespace.rename(d, 'e', ROOT_INO, 'f'), 'ENOTDIR');
    await expectErrno(fs.namespace.create(ROOT_INO, 'x'.repeat(256), S_IFREG | 0o644, root), 'ENAMETOOLONG');
    expect((await fs.attributes.stat(d)).nlink).toBe(3);
    await fs.namespace.rename(d, 'e', ROOT_INO, 'e');
    expect((await fs.attributes.stat(d)).nlink).toBe(2);
    expect((await fs.attributes.stat(ROOT_INO)).nlink).toBe(4);
  });

  it('counts hard links and keeps data until the last name goes', async () => {
    const ino = await writeFile('/x', Buffer.from('shared'));
    await fs.namespace.link(ino, ROOT_INO, 'y');
    expect((await fs.attributes.stat(ino)).nlink).toBe(2);
    await fs.namespace.unlink(ROOT_INO, 'x');
    expect((await readFile('/y')).toString()).toBe('shared');
    await fs.namespace.unlink(ROOT_INO, 'y');
    await expectErrno(fs.attributes.stat(ino), 'ENOENT');
  });

  it('keeps an unlinked file readable while open', async () => {
    const ino = await writeFile('/open', Buffer.from('still here'));
    const fh = await fs.files.open(ino, O_RDWR);
    await fs.namespace.unlink(ROOT_INO, 'open');
    const buf = Buffer.alloc(20);
    expect(buf.subarray(0, await fs.files.read(fh, 0, 20, buf)).toString()).toBe('still here');
    await fs.files.release(fh);
    await expectErrno(fs.attributes.stat(ino), 'ENOENT');
  });

  it('splits a directory of 5,000 entries over several records, none over the limit', async () => {
    await fs.mkdir('/many', 0o755, root);
    const dir = await fs.resolve('/many');
    for (let i = 0; i < 5000; i++) await fs.namespace.create(dir, `file-with-a-longish-name-${i}`, S_IFREG | 0o644, root);
    const names = (await fs.readdir(dir)).map(([n]) => n);
    expect(new Set(names).size).toBe(5000);
    const keys: string[] = [];
    for await (const k of store.scan(`t:d:${dir}:`)) keys.push(k);
    expect(keys.length).toBeGreaterThan(2);
    for (const v of await store.getMany(keys)) expect(v!.value.length).toBeLessThan(64 * 1024);
    expect((await fs.namespace.lookup(dir, 'file-with-a-longish-name-4321'))?.[1]).toBe(S_IFREG);
  });

  it('handles xattrs with create/replace semantics', async () => {
    const ino = await writeFile('/xa', Buffer.from(''));
    await fs.attributes.setxattr(ino, 'user.k', Buffer.from('v'), 0);
    await expectErrno(fs.attributes.setxattr(ino, 'user.k', Buffer.from('v'), 1), 'EEXIST');
    await expectErrno(fs.attributes.setxattr(ino, 'user.n', Buffer.from('v'), 2), 'ENODATA');
    expect((await fs.attributes.getxattr(ino, 'user.k')).toString()).toBe('v');
    expect(await fs.attributes.listxattr(ino)).toEqual(['user.k']);
    await fs.attributes.removexattr(ino, 'user.k');
    await expectErrno(fs.attributes.getxattr(ino, 'user.k'), 'ENODATA');
  });

  it('persists across a remount of the same store', async () => {
    await fs.mkdir('/keep', S_IFDIR | 0o700, root);
    await writeFile('/keep/f', Buffer.from('persisted'));
    await fs.close();
    fs = new FileSystem(await Volume.open({ store, log, prefix: 't:' }, false));
    expect((await readFile('/keep/f')).toString()).toBe('persisted');
  });
});
