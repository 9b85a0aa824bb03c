import { constants } from 'node:os';
import type { Logger } from 'pino';
import { IntegrityError, StoreFull, ValueTooLarge, isUnreachable } from '../backends/errors.js';
import { ContentionError } from '../cas/retry.js';
import { FsError } from '../inode/fs-error.js';
import { BlockMissing } from '../translators/block-store.js';

const errno = constants.errno as Record<string, number>;

const FSCK_HINT = 'unmount, then run `voldfs fsck` (and `voldfs fsck --repair` for what it reports)';

/**
 * The one place where errors become errnos (negative, as FUSE wants them). Expected errors map
 * by kind; anything else is a bug or a store failure: logged with its stack, answered EIO, so
 * the daemon survives and the caller gets an I/O error rather than a hang.
 * @param ino the inode the request names (the parent directory for name operations)
 */
export function toErrno(err: unknown, log: Logger, op: string, ino: number | null): number {
  if (err instanceof FsError) {
    log.debug({ op, ino, code: err.code, detail: err.message }, 'operation failed');
    return -(errno[err.code] ?? errno.EIO);
  }
  if (err instanceof StoreFull) {
    log.warn({ op, ino, err: err.message }, 'store is full');
    return -errno.ENOSPC;
  }
  if (err instanceof ValueTooLarge) {
    log.error({ op, ino, err: err.message }, 'record exceeds the store item limit');
    return -errno.EFBIG;
  }
  if (err instanceof BlockMissing || err instanceof IntegrityError) {
    log.error({ op, ino, err: err.message, fix: FSCK_HINT }, 'the volume is damaged: data missing or corrupt in the store');
    return -errno.EIO;
  }
  if (isUnreachable(err)) {
    log.error({ op, ino, err: err.message }, 'store unreachable');
    return -errno.EIO;
  }
  if (err instanceof ContentionError) {
    // EIO, not EAGAIN: open, mkdir and rename callers do not retry, and the budget is long.
    log.error({ op, ino, err: err.message }, 'gave up on records other clients kept changing');
    return -errno.EIO;
  }
  log.error({ op, ino, err }, 'unexpected error');
  return -errno.EIO;
}
