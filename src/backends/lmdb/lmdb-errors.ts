import { statfs } from 'node:fs/promises';
import { StoreError, StoreFull, StoreUnavailable } from '../errors.js';
import { settleWithin } from '../timeout.js';

/** LMDB's MDB_MAP_FULL; lmdb-js grows the map itself, so this means the address space ran out. */
const MDB_MAP_FULL = -30792;
const ENOSPC = 28;
/** How long to wait for lmdb-js to report why a commit failed before giving up on the detail. */
const CAUSE_WAIT_MS = 1_000;

/**
 * Turns a failed open into StoreUnavailable whose message names the path and the variable, and
 * says what to do.
 */
export function openFailure(path: string, err: unknown): StoreUnavailable {
  return new StoreUnavailable(
    `cannot open the LMDB store at ${path} (VOLDFS_LMDB_PATH): ${describe(err)}. ` +
      'Set VOLDFS_LMDB_PATH to a directory this user may create and write, on a local filesystem, ' +
      'or fix the permissions of the one given.',
    { cause: err },
  );
}

/**
 * Turns a failed write into a StoreError: StoreFull when LMDB or the filesystem is out of space,
 * StoreUnavailable otherwise. lmdb-js rejects with a generic "Commit failed" whose real cause
 * is a promise in `commitError`; that promise is always handled here so it cannot surface as an
 * unhandled rejection.
 */
export async function writeFailure(path: string, err: unknown, minFreeBytes: number): Promise<StoreError> {
  if (err instanceof StoreError) return err;
  const cause = await commitCause(err);
  const code = errorCode(cause);
  const full =
    code === MDB_MAP_FULL ||
    code === ENOSPC ||
    code === 'ENOSPC' ||
    /MDB_MAP_FULL|No space left/i.test(describe(cause)) ||
    (await freeBytes(path)) < minFreeBytes;
  if (full) {
    return new StoreFull(
      `the LMDB store at ${path} (VOLDFS_LMDB_PATH) is out of space (${describe(cause)}): ` +
        'free space on its filesystem, delete files from the volume, or move the store',
      { cause },
    );
  }
  return new StoreUnavailable(`writing to the LMDB store at ${path} failed: ${describe(cause)}`, { cause });
}

async function commitCause(err: unknown): Promise<unknown> {
  const pending = (err as { commitError?: unknown } | null)?.commitError;
  if (!(pending instanceof Promise)) return err;
  return settleWithin(pending.then(() => err, (cause: unknown) => cause), CAUSE_WAIT_MS, () => err);
}

/** Free bytes for unprivileged users on the filesystem holding `path`; Infinity if unknown. */
export async function freeBytes(path: string): Promise<number> {
  try {
    const stats = await statfs(path);
    return stats.bavail * stats.bsize;
  } catch {
    // Only a hint for classifying another error; that error is what gets reported.
    return Number.POSITIVE_INFINITY;
  }
}

function errorCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = errorCode(err);
    return code === undefined || err.message.includes(String(code)) ? err.message : `${err.message} (${String(code)})`;
  }
  return String(err);
}
