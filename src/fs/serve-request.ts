import type { Request } from 'fuse-native/lowlevel';
import type { Logger } from 'pino';
import { toErrno } from './errno.js';

/**
 * Runs one request's work; whatever it throws is answered here, once, through
 * {@link toErrno}, so no rejection escapes to the binding.
 */
export function serveRequest(req: Request, log: Logger, op: string, ino: number | null, work: () => Promise<unknown>): void {
  const fail = (err: unknown) => {
    const code = toErrno(err, log, op, ino);
    try {
      if (req.pending) req.replyErr(code);
    } catch (replyErr) {
      log.error({ op, ino, err: replyErr }, 'cannot answer the request');
    }
  };
  try {
    work().then(undefined, fail);
  } catch (err) {
    fail(err);
  }
}
