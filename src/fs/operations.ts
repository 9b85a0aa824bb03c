import type { Logger } from 'pino';
import type { FileSystem } from '../inode/filesystem.js';
import { FsError } from '../inode/fs-error.js';
import type { Caller } from '../inode/namespace.js';
import { S_IFMT, S_IFREG } from '../inode/records.js';
import type { Timespec } from '../inode/timespec.js';
import { toErrno } from './errno.js';
import { toFuseStat, type FuseStat } from './stat.js';

type Done = (code: number) => void;
type DoneWith<T> = (code: number, value?: T) => void;

/**
 * FUSE handlers: each decodes its request, makes one call into the filesystem, and maps the
 * outcome. `reply` is called exactly once, also when the call throws: an escaped rejection
 * would take the daemon down and leave "Transport endpoint is not connected" behind.
 */
export function makeOperations(fs: FileSystem, log: Logger, caller: () => Caller) {
  function run<T>(op: string, path: string | null, work: () => Promise<T>, reply: (code: number, value?: T) => void): void {
    let settled: Promise<T>;
    try {
      settled = work();
    } catch (err) {
      reply(toErrno(err, log, op, path));
      return;
    }
    settled.then(
      (value) => reply(0, value),
      (err: unknown) => reply(toErrno(err, log, op, path)),
    );
  }

  /** Inode of an open file handle, or of the path when FUSE sends no handle. */
  const target = (path: string | null, fd: number | undefined) =>
    fd ? Promise.resolve(fs.files.inoOf(fd)) : path !== null ? fs.resolve(path) : Promise.reject(new FsError('EBADF'));

  const stat = async (ino: number): Promise<FuseStat> => toFuseStat(ino, await fs.attributes.stat(ino));

  return {
    getattr(path: string, cb: DoneWith<FuseStat>) {
      run('getattr', path, async () => stat(await fs.resolve(path)), cb);
    },
    fgetattr(path: string | null, fd: number, cb: DoneWith<FuseStat>) {
      run('fgetattr', path, async () => stat(await target(path, fd)), cb);
    },
    readdir(path: string, cb: (code: number, names?: string[], stats?: FuseStat[]) => void) {
      run(
        'readdir',
        path,
        async () => (await fs.readdir(await fs.resolve(path))).map(([name]) => name),
        (code, names) => cb(code, names ? ['.', '..', ...names] : undefined),
      );
    },
    statfs(path: string, cb: DoneWith<ReturnType<FileSystem['statfs']>>) {
      run('statfs', path, async () => fs.statfs(), cb);
    },
    mkdir(path: string, mode: number, cb: Done) {
      const who = caller();
      run('mkdir', path, () => fs.mkdir(path, mode, who), cb);
    },
    mknod(path: string, mode: number, rdev: number, cb: Done) {
      const who = caller();
      run('mknod', path, async () => {
        const [parent, name] = await fs.resolveParent(path);
        await fs.namespace.create(parent, name, mode, who, { rdev });
      }, cb);
    },
    create(path: string, mode: number, cb: DoneWith<number>, flags?: number) {
      const who = caller();
      run('create', path, async () => {
        const [parent, name] = await fs.resolveParent(path);
        const type = mode & S_IFMT ? mode : S_IFREG | mode;
        const ino = await fs.namespace.create(parent, name, type, who, { opened: true });
        return fs.files.open(ino, flags ?? 1);
      }, cb);
    },
    symlink(target: string, path: string, cb: Done) {
      const who = caller();
      run('symlink', path, async () => {
        const [parent, name] = await fs.resolveParent(path);
        await fs.namespace.symlink(parent, name, target, who);
      }, cb);
    },
    readlink(path: string, cb: DoneWith<string>) {
      run('readlink', path, async () => fs.attributes.readlink(await fs.resolve(path)), cb);
    },
    link(from: string, to: string, cb: Done) {
      run('link', to, async () => {
        const ino = await fs.resolve(from);
        const [parent, name] = await fs.resolveParent(to);
        await fs.namespace.link(ino, parent, name);
      }, cb);
    },
    unlink(path: string, cb: Done) {
      run('unlink', path, async () => fs.namespace.unlink(...(await fs.resolveParent(path))), cb);
    },
    rmdir(path: string, cb: Done) {
      run('rmdir', path, async () => fs.namespace.rmdir(...(await fs.resolveParent(path))), cb);
    },
    rename(from: string, to: string, cb: Done) {
      run('rename', from, async () => {
        const [fromParent, fromName] = await fs.resolveParent(from);
        const [toParent, toName] = await fs.resolveParent(to);
        await fs.namespace.rename(fromParent, fromName, toParent, toName);
      }, cb);
    },
    chmod(path: string, mode: number, cb: Done) {
      run('chmod', path, async () => fs.attributes.chmod(await fs.resolve(path), mode), cb);
    },
    chown(path: string, uid: number, gid: number, cb: Done) {
      run('chown', path, async () => fs.attributes.chown(await fs.resolve(path), uid, gid), cb);
    },
    utimens(path: string, atime: Timespec, mtime: Timespec, cb: Done) {
      run('utimens', path, async () => fs.attributes.utimens(await fs.resolve(path), atime, mtime), cb);
    },
    truncate(path: string, size: number, cb: Done) {
      run('truncate', path, async () => fs.attributes.truncate(await fs.resolve(path), size), cb);
    },
    ftruncate(path: string | null, fd: number, size: number, cb: Done) {
      run('ftruncate', path, async () => fs.attributes.truncate(await target(path, fd), size), cb);
    },
    open(path: string, flags: number, cb: DoneWith<number>) {
      run('open', path, async () => fs.files.open(await fs.resolve(path), flags), cb);
    },
    read(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void) {
      run('read', path, () => fs.files.read(fd, pos, len, buf), (code, n) => cb(code < 0 ? code : (n ?? 0)));
    },
    write(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (result: number) => void) {
      run('write', path, () => fs.files.write(fd, pos, buf.subarray(0, len)), (code, n) => cb(code < 0 ? code : (n ?? 0)));
    },
    flush(path: string | null, fd: number, cb: Done) {
      run('flush', path, () => fs.files.flush(fd), cb);
    },
    fsync(path: string | null, _datasync: number, fd: number, cb: Done) {
      run('fsync', path, () => fs.fsync(fd), cb);
    },
    release(path: string | null, fd: number, cb: Done) {
      run('release', path, () => fs.files.release(fd), cb);
    },
    setxattr(path: string, name: string, value: Buffer, _position: number, flags: number, cb: Done) {
      run('setxattr', path, async () => fs.attributes.setxattr(await fs.resolve(path), name, value, flags), cb);
    },
    getxattr(path: string, name: string, _position: number, cb: DoneWith<Buffer>) {
      run('getxattr', path, async () => fs.attributes.getxattr(await fs.resolve(path), name), cb);
    },
    listxattr(path: string, cb: DoneWith<string[]>) {
      run('listxattr', path, async () => fs.attributes.listxattr(await fs.resolve(path)), cb);
    },
    removexattr(path: string, name: string, cb: Done) {
      run('removexattr', path, async () => fs.attributes.removexattr(await fs.resolve(path), name), cb);
    },
  };
}

export type Operations = ReturnType<typeof makeOperations>;
