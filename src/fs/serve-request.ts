import { constants } from 'node:os';
import type { Request } from 'fuse-native/lowlevel';
import type { Logger } from 'pino';
import { toErrno } from './errno.js';

const errno = constants.errno as Record<string, number>;

/**
 * Runs one request's work; whatever it throws is answered here, once, through {@link toErrno}
 * (unexpected errors as EIO), so no rejection escapes to the binding: it would take the daemon
 * down, leaving "Transport endpoint is not connected" behind.
 * @param staleWhenGone answer ESTALE instead of ENOENT (the kernel then looks the name up again)
 */
export type Serve = (req: Request, op: string, ino: number | null, work: () => Promise<unknown>, staleWhenGone?: boolean) => void;

/** Told of every request answered: its kind, how long it took, its errno (0 for success). */
export type RequestObserver = (op: string, seconds: number, errno: number) => void;

/** The one {@link Serve} of a mount, logging to `log` and reporting to `observe`. */
export function makeServe(log: Logger, observe?: RequestObserver): Serve {
  return (req, op, ino, work, staleWhenGone = false) => {
    const started = observe ? process.hrtime.bigint() : 0n;
    const observed = (code: number) => observe?.(op, Number(process.hrtime.bigint() - started) / 1e9, code);
    const fail = (err: unknown) => {
      let code = toErrno(err, log, op, ino);
      if (staleWhenGone && code === -errno.ENOENT) code = -errno.ESTALE;
      observed(code);
      try {
        if (req.pending) req.replyErr(code);
      } catch (replyErr) {
        log.error({ op, ino, err: replyErr }, 'cannot answer the request');
      }
    };
    try {
      work().then(() => observed(0), fail);
    } catch (err) {
      fail(err);
    }
  };
}
