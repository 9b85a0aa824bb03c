import { constants } from 'node:os';
import type { Lock, LowLevelOps, Request } from 'fuse-native/lowlevel';
import type { Logger } from 'pino';
import { TO_EOF, type HeldLock, type LockKind, type LockType } from '../inode/locks/lock-ranges.js';
import type { LockTable } from '../inode/locks/lock-table.js';
import type { Serve } from './serve-request.js';

const errno = constants.errno as Record<string, number>;

const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;

/** How often a blocked lock asks the store again, ms: from the first to the last value, doubling. */
const FIRST_RETRY_MS = 20;
const LAST_RETRY_MS = 500;

const typeOf = (t: number): LockType | undefined => (t === F_RDLCK ? 'read' : t === F_WRLCK ? 'write' : undefined);
const endOf = (lock: Lock) => (lock.len === 0 ? TO_EOF : lock.start + lock.len);

/** struct flock for a lock another owner holds. */
function toKernel(held: HeldLock): Lock {
  return { type: held.type === 'write' ? F_WRLCK : F_RDLCK, whence: 0, start: held.start, len: held.end === TO_EOF ? 0 : held.end - held.start, pid: held.pid };
}

/**
 * Adds flock(2) and fcntl record locks (POSIX and OFD) to the handlers, kept in the volume's
 * lock table so that every mount of the volume sees them. A blocking request (F_SETLKW, flock
 * without LOCK_NB) retries until granted, answering EINTR when the caller is signalled; no
 * deadlock detection (no EDEADLK). Closes drop locks as the kernel expects: POSIX locks of the
 * closing process at each flush, flock and OFD locks at the open file's release.
 */
export function withLocks(ops: LowLevelOps, locks: LockTable, log: Logger, serve: Serve): LowLevelOps {
  /** Tries `attempt` until it finds no conflict, or once when not `sleep`. */
  async function acquire(req: Request, ino: number, sleep: boolean, attempt: () => Promise<HeldLock | undefined>): Promise<void> {
    let interrupted = false;
    let onInterrupt = () => {};
    if (sleep) {
      req.onInterrupt(() => {
        interrupted = true;
        onInterrupt();
      });
    }
    for (let wait = FIRST_RETRY_MS; ; wait = Math.min(wait * 2, LAST_RETRY_MS)) {
      if (!req.pending) return;
      if (!(await attempt())) return void req.replyOk();
      if (!sleep) return void req.replyErr(errno.EAGAIN);
      if (interrupted) return void req.replyErr(errno.EINTR);
      await Promise.race([locks.changed(ino, wait), new Promise<void>((resolve) => (onInterrupt = resolve))]);
      if (interrupted) return void req.replyErr(errno.EINTR);
    }
  }

  const request = (fh: number | null, owner: bigint, kind: LockKind, pid: number) => ({ owner: String(owner), fh: fh ?? 0, kind, pid });

  return {
    ...ops,
    getlk(req, ino, fh, lock, lockOwner) {
      const i = Number(ino);
      serve(req, 'getlk', i, async () => {
        const type = typeOf(lock.type);
        if (type === undefined) return req.replyLock({ ...lock, type: F_UNLCK });
        const conflict = await locks.test(i, { ...request(fh, lockOwner, 'posix', lock.pid), type, start: lock.start, end: endOf(lock) });
        req.replyLock(conflict ? toKernel(conflict) : { ...lock, type: F_UNLCK });
      });
    },
    setlk(req, ino, fh, lock, lockOwner, sleep) {
      const i = Number(ino);
      serve(req, 'setlk', i, async () => {
        if (lock.type !== F_RDLCK && lock.type !== F_WRLCK && lock.type !== F_UNLCK) return req.replyErr(errno.EINVAL);
        const wanted = { ...request(fh, lockOwner, 'posix', lock.pid || req.context.pid), type: typeOf(lock.type), start: lock.start, end: endOf(lock) };
        await acquire(req, i, sleep && wanted.type !== undefined, () => locks.set(i, wanted));
      });
    },
    flock(req, ino, fh, op, lockOwner) {
      const i = Number(ino);
      serve(req, 'flock', i, async () => {
        const base = op & ~LOCK_NB;
        const type: LockType | undefined = base === LOCK_SH ? 'read' : base === LOCK_EX ? 'write' : undefined;
        const wanted = { ...request(fh, lockOwner, 'flock', req.context.pid), type, start: 0, end: TO_EOF };
        await acquire(req, i, type !== undefined && (op & LOCK_NB) === 0, () => locks.set(i, wanted));
      });
    },
    flush(req, ino, fh, lockOwner) {
      const i = Number(ino);
      if (!locks.holdsAny(i) && ops.flush) return ops.flush(req, ino, fh, lockOwner);
      serve(req, 'flush-locks', i, async () => {
        await locks.releaseOwner(i, String(lockOwner), 'posix');
        if (ops.flush) ops.flush(req, ino, fh, lockOwner);
        else req.replyOk();
      });
    },
    release(req, ino, fh, flags, lockOwner, flockRelease) {
      const i = Number(ino);
      if (!locks.holdsAny(i) && ops.release) return ops.release(req, ino, fh, flags, lockOwner, flockRelease);
      serve(req, 'release-locks', i, async () => {
        // The file is closed whatever happens to its locks: they go with the lease otherwise.
        await locks.releaseHandle(i, fh ?? 0).catch((err: unknown) => log.warn({ ino: i, err }, 'cannot release the locks of a closed file'));
        if (ops.release) ops.release(req, ino, fh, flags, lockOwner, flockRelease);
        else req.replyOk();
      });
    },
  };
}
