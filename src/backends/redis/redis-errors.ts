import { IntegrityError, StoreError, StoreFull, StoreTimeout, StoreUnavailable, isUnreachable } from '../errors.js';

/** What a failed Redis call means for the caller. */
export type FailureKind = 'unavailable' | 'timeout' | 'full' | 'foreign' | 'other';

/**
 * Sorts an error from ioredis (or a socket) into a {@link FailureKind}. `unavailable` and
 * `timeout` are worth retrying during a failover; the others are final.
 */
export function classifyRedisError(err: unknown): FailureKind {
  if (err instanceof StoreTimeout) return 'timeout';
  if (err instanceof StoreUnavailable) return 'unavailable';
  if (!(err instanceof Error)) return 'other';
  const message = err.message;
  const code = (err as NodeJS.ErrnoException).code;
  if (message.startsWith('OOM ')) return 'full';
  if (message.startsWith('WRONGTYPE')) return 'foreign';
  if (message === 'Command timed out' || code === 'ETIMEDOUT') return 'timeout';
  if (
    err.name === 'MaxRetriesPerRequestError' ||
    err.name === 'ClusterAllFailedError' ||
    err.name === 'AbortError' ||
    /^(CLUSTERDOWN|TRYAGAIN|LOADING|READONLY|MASTERDOWN|MOVED|ASK) /.test(message) ||
    message === 'Connection is closed.' ||
    message.startsWith('Too many Cluster redirections') ||
    message.startsWith('None of startup nodes') ||
    message.startsWith("Stream isn't writeable") ||
    message.includes('enableOfflineQueue') ||
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '')
  ) {
    return 'unavailable';
  }
  return 'other';
}

/** Where the error happened, for messages: the server and the variable that names it. */
export interface ErrorContext {
  /** e.g. `redis://127.0.0.1:6379` or `cluster 127.0.0.1:7000,...` */
  readonly server: string;
  /** VOLDFS_REDIS_URL or VOLDFS_REDIS_CLUSTER. */
  readonly variable: string;
  readonly timeoutMs: number;
}

/**
 * Turns an ioredis error into the store error a caller can act on, with a message that says
 * what to do. `what` names the operation (and key), e.g. `put of key a:b`; `connectionError`
 * is the last socket error the client reported, added to messages about unavailability.
 */
export function toStoreError(
  err: unknown,
  what: string,
  context: ErrorContext,
  connectionError?: Error,
): StoreError {
  if (err instanceof StoreError && !isUnreachable(err)) return err;
  let detail = err instanceof Error ? err.message : String(err);
  // "Connection is closed." alone does not say why; the socket error behind it does.
  if (connectionError && connectionError.message !== detail) detail += `; last connection error: ${connectionError.message}`;
  switch (classifyRedisError(err)) {
    case 'full':
      return new StoreFull(
        `Redis ${context.server} refused the ${what}: it is out of memory (maxmemory reached under the ` +
          `noeviction policy); raise maxmemory or free space. Redis said: ${detail}`,
        { cause: err },
      );
    case 'foreign':
      return new IntegrityError(
        `${what}: the key holds a Redis value of another type, not a voldfs record (${detail}); ` +
          'another program shares this Redis database, use a database of its own for voldfs',
        { cause: err },
      );
    case 'timeout':
      return new StoreTimeout(
        `Redis ${context.server} did not answer the ${what} within ${context.timeoutMs} ms (${detail}); ` +
          'check that it is running and not overloaded, or raise VOLDFS_REDIS_TIMEOUT_MS',
        { cause: err },
      );
    case 'unavailable':
      return new StoreUnavailable(
        `Redis ${context.server} is unavailable for the ${what} (${detail}); start it ` +
          `(scripts/redis-start) or correct ${context.variable}`,
        { cause: err },
      );
    default:
      return new StoreError(`Redis ${context.server} failed the ${what}: ${detail}`, { cause: err });
  }
}
