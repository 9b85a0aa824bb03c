import { constants } from 'node:os';
import { pino } from 'pino';
import type { LowLevelOps, Request } from 'fuse-native/lowlevel';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { makeOperations } from '../../../src/fs/operations.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { ROOT_INO } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const { errno } = constants;
const log = pino({ level: 'silent' });

/** One answer a handler gave: the reply method and its arguments. */
interface Reply {
  readonly kind: string;
  readonly args: unknown[];
}

/** A kernel request without a kernel: keeps its answers, and throws on a second one as the binding does. */
function fakeRequest(): { req: Request; replies: Reply[]; answered: Promise<Reply> } {
  const replies: Reply[] = [];
  let settle: (reply: Reply) => void = () => undefined;
  const answered = new Promise<Reply>((resolve) => (settle = resolve));
  const answer =
    (kind: string) =>
    (...args: unknown[]) => {
      if (replies.length > 0) throw Object.assign(new Error('already replied'), { code: 'ERR_FUSE_ALREADY_REPLIED' });
      const reply = { kind, args };
      replies.push(reply);
      settle(reply);
      return true;
    };
  const kinds = ['Err', 'Ok', 'None', 'Entry', 'Create', 'Attr', 'Readlink', 'Open', 'Write', 'Buf', 'Statfs', 'Xattr', 'Lock', 'Lseek', 'XattrValue'];
  const req = {
    context: { uid: 0, gid: 0, pid: 1, umask: 0o022 },
    get pending() {
      return replies.length === 0;
    },
    onInterrupt: () => undefined,
    replyDir: answer('Dir'),
    ...Object.fromEntries(kinds.map((k) => [`reply${k}`, answer(k)])),
  } as unknown as Request;
  return { req, replies, answered };
}

const errOf = (reply: Reply) => (reply.kind === 'Err' ? Math.abs(Number(reply.args[0])) : 0);

describe('the FUSE operations table', () => {
  let fs: FileSystem;
  let ops: LowLevelOps;

  beforeEach(async () => {
    fs = new FileSystem(await Volume.open({ store: new MemoryStore(), log, prefix: 't:', graceMs: 10 }));
    ops = makeOperations(fs, log, { cacheSeconds: 1, invalidate: async () => undefined });
  });
  afterEach(async () => {
    await fs.close();
  });

  async function call(op: keyof LowLevelOps, ...args: unknown[]): Promise<Reply> {
    const { req, answered } = fakeRequest();
    (ops[op] as (...a: unknown[]) => unknown)(req, ...args);
    return answered;
  }

  it('answers a lookup with the entry and the cache timeouts, and a missing name with ENOENT', async () => {
    const made = await call('mkdir', ROOT_INO, 'd', 0o755);
    expect(made.kind).toBe('Entry');
    const found = await call('lookup', ROOT_INO, 'd');
    expect(found.kind).toBe('Entry');
    expect(found.args[0]).toMatchObject({ ino: (made.args[0] as { ino: number }).ino, attrTimeout: 1, entryTimeout: 1 });
    expect(errOf(await call('lookup', ROOT_INO, 'nothing'))).toBe(errno.ENOENT);
  });

  it('answers ESTALE for an inode that is gone, where the kernel looks the name up again', async () => {
    const made = await call('mkdir', ROOT_INO, 'd', 0o755);
    const ino = (made.args[0] as { ino: number }).ino;
    expect((await call('rmdir', ROOT_INO, 'd')).kind).toBe('Ok');
    expect(errOf(await call('getattr', ino, null))).toBe(errno.ESTALE);
  });

  it('answers EIO when the filesystem throws an unexpected error, and keeps serving', async () => {
    const stat = fs.attributes.stat.bind(fs.attributes);
    fs.attributes.stat = () => Promise.reject(new TypeError('a bug'));
    expect(errOf(await call('getattr', ROOT_INO, null))).toBe(errno.EIO);
    fs.attributes.stat = () => {
      throw new TypeError('a synchronous bug');
    };
    expect(errOf(await call('getattr', ROOT_INO, null))).toBe(errno.EIO);
    fs.attributes.stat = stat;
    expect((await call('getattr', ROOT_INO, null)).kind).toBe('Attr');
  });

  it('answers create, mkdir, mknod, symlink and setattr from the record written, not read again, as a getattr would', async () => {
    let stats = 0;
    const stat = fs.attributes.stat.bind(fs.attributes);
    fs.attributes.stat = (ino) => {
      stats += 1;
      return stat(ino);
    };
    const attrOf = (reply: Reply) => (reply.kind === 'Attr' ? reply.args[0] : (reply.args[0] as { attr: unknown }).attr);
    const answers = [
      await call('create', ROOT_INO, 'f', 0o100640, 2),
      await call('mkdir', ROOT_INO, 'd', 0o750),
      await call('mknod', ROOT_INO, 'p', 0o10644, 0),
      await call('symlink', 'target/of/link', ROOT_INO, 'l'),
    ];
    expect(answers.map((a) => a.kind)).toEqual(['Create', 'Entry', 'Entry', 'Entry']);
    expect(stats).toBe(0);
    for (const answer of answers) {
      const { ino } = attrOf(answer) as { ino: number };
      expect(attrOf(await call('getattr', ino, null)), `inode ${ino}`).toEqual(attrOf(answer));
    }
    const f = (answers[0].args[0] as { ino: number }).ino;
    const read = stats;
    const changed = await call('setattr', f, { uid: 7, gid: 8, mode: 0o600, atime: { sec: 5, nsec: 6 }, mtime: { sec: 9, nsec: 10 } }, 1 | 2 | 4 | 16 | 32, null);
    expect(changed.kind).toBe('Attr');
    expect(stats).toBe(read);
    expect(attrOf(changed)).toMatchObject({ uid: 7, gid: 8, mode: 0o100600, atime: { sec: 5, nsec: 6 }, mtime: { sec: 9, nsec: 10 } });
    expect(attrOf(await call('getattr', f, null))).toEqual(attrOf(changed));
  });

  // Arguments after the request for every handler; a handler added to the table without an
  // entry here fails the next test, so each is covered.
  const argumentsOf: Record<string, unknown[]> = {
    lookup: [ROOT_INO, 'x'],
    getattr: [ROOT_INO, null],
    setattr: [ROOT_INO, { mode: 0o700 }, 1, null],
    readlink: [ROOT_INO],
    mknod: [ROOT_INO, 'x', 0o100644, 0],
    mkdir: [ROOT_INO, 'x', 0o755],
    unlink: [ROOT_INO, 'x'],
    rmdir: [ROOT_INO, 'x'],
    symlink: ['t', ROOT_INO, 'x'],
    rename: [ROOT_INO, 'x', ROOT_INO, 'y', 0],
    link: [ROOT_INO, ROOT_INO, 'x'],
    open: [ROOT_INO, 0],
    create: [ROOT_INO, 'x', 0o100644, 2],
    read: [ROOT_INO, 4096, 0, 1],
    write: [ROOT_INO, Buffer.from('x'), 0, 1, 0],
    flush: [ROOT_INO, 1, 0n],
    release: [ROOT_INO, 1, 0, 0n, false],
    fsync: [ROOT_INO, false, 1],
    opendir: [ROOT_INO, 0],
    readdir: [ROOT_INO, 4096, 0, 1],
    readdirplus: [ROOT_INO, 4096, 0, 1],
    releasedir: [ROOT_INO, 1],
    statfs: [ROOT_INO],
    setxattr: [ROOT_INO, 'user.a', Buffer.from('v'), 0],
    getxattr: [ROOT_INO, 'user.a', 64],
    listxattr: [ROOT_INO, 64],
    removexattr: [ROOT_INO, 'user.a'],
  };
  const noReply = new Set(['forget', 'forgetMulti', 'init', 'destroy']);

  it('answers every request exactly once when every call into the filesystem throws', async () => {
    const broken = new Proxy({} as FileSystem, {
      get: () =>
        new Proxy(() => undefined, {
          get: () => () => {
            throw new TypeError('the filesystem is broken');
          },
          apply: () => {
            throw new TypeError('the filesystem is broken');
          },
        }),
    });
    const table = makeOperations(broken, log, { cacheSeconds: 1, invalidate: async () => undefined });
    for (const op of Object.keys(table)) {
      if (noReply.has(op)) continue;
      expect(argumentsOf[op], `arguments for the ${op} handler`).toBeDefined();
      const { req, replies, answered } = fakeRequest();
      (table[op as keyof LowLevelOps] as (...a: unknown[]) => unknown)(req, ...argumentsOf[op]);
      const reply = await Promise.race([answered, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
      expect(reply, `${op} answered`).toBeDefined();
      // Handlers that need no filesystem call (releasedir of an unknown handle) may succeed.
      if (reply!.kind === 'Err') expect([errno.EIO, errno.EBADF], op).toContain(errOf(reply!));
      await new Promise((r) => setTimeout(r, 10));
      expect(replies, `${op} answered once`).toHaveLength(1);
    }
  });
});
