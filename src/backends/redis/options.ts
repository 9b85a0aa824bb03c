import type { Env } from '../backend.js';
import { blankToUndefined, hostPortList, integerOption, type HostPort } from '../env-options.js';
import { ConfigError } from '../errors.js';

/** One cluster node as listed in VOLDFS_REDIS_CLUSTER. */
export type RedisNodeAddress = HostPort;

/** Options of the redis backend, parsed once from the environment. */
export type RedisOptions = RedisSingleOptions | RedisClusterOptions;

interface CommonOptions {
  /** Time limit of one command and of connecting, in milliseconds. */
  readonly timeoutMs: number;
  /**
   * How long an operation keeps retrying while the store is unreachable or a cluster fails
   * over (a replica is being promoted), in milliseconds; 0 fails at once.
   */
  readonly retryMs: number;
  /** Largest value a put accepts, in bytes. */
  readonly maxValueBytes: number;
}

export interface RedisSingleOptions extends CommonOptions {
  readonly mode: 'single';
  /** `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). */
  readonly url: string;
}

export interface RedisClusterOptions extends CommonOptions {
  readonly mode: 'cluster';
  /** Seed nodes; the client learns the others (and the slot map) from them. */
  readonly nodes: readonly RedisNodeAddress[];
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_TIMEOUT_MS = 5000;
/** Failover in a cluster takes about twice cluster-node-timeout (15 s by default in Redis). */
export const DEFAULT_CLUSTER_RETRY_MS = 30_000;
export const DEFAULT_SINGLE_RETRY_MS = 0;
/**
 * 4 MiB: Redis takes values up to 512 MB, but one value is sent and stored in one piece, so a
 * much larger one would stall the server for every other client while it is copied.
 */
export const DEFAULT_MAX_VALUE_BYTES = 4 * 1024 * 1024;
const MAX_VALUE_LIMIT = 512 * 1024 * 1024;
const MAX_MS = 600_000;


/**
 * Reads VOLDFS_REDIS_URL (single server, default `redis://127.0.0.1:6379`) or
 * VOLDFS_REDIS_CLUSTER (cluster seed nodes; setting both is an error), VOLDFS_REDIS_TIMEOUT_MS
 * (default 5000), VOLDFS_REDIS_RETRY_MS (default 0 for a single server, 30000 for a cluster)
 * and VOLDFS_REDIS_MAX_VALUE_BYTES (default 4 MiB).
 * @throws ConfigError naming the variable and the accepted form
 */
export function parseRedisOptions(env: Env): RedisOptions {
  const url = blankToUndefined(env.VOLDFS_REDIS_URL);
  const cluster = blankToUndefined(env.VOLDFS_REDIS_CLUSTER);
  if (url !== undefined && cluster !== undefined) {
    throw new ConfigError(
      'VOLDFS_REDIS_URL and VOLDFS_REDIS_CLUSTER are both set: set VOLDFS_REDIS_URL for one server ' +
        'or VOLDFS_REDIS_CLUSTER for a Redis Cluster, not both',
    );
  }
  const timeoutMs = integerOption(env, 'VOLDFS_REDIS_TIMEOUT_MS', {
    fallback: DEFAULT_TIMEOUT_MS,
    min: 1,
    max: MAX_MS,
    unit: 'milliseconds',
  });
  const maxValueBytes = integerOption(env, 'VOLDFS_REDIS_MAX_VALUE_BYTES', {
    fallback: DEFAULT_MAX_VALUE_BYTES,
    min: 1,
    max: MAX_VALUE_LIMIT,
    unit: 'bytes',
  });
  const retryMs = integerOption(env, 'VOLDFS_REDIS_RETRY_MS', {
    fallback: cluster !== undefined ? DEFAULT_CLUSTER_RETRY_MS : DEFAULT_SINGLE_RETRY_MS,
    min: 0,
    max: MAX_MS,
    unit: 'milliseconds',
  });
  if (cluster !== undefined) {
    return Object.freeze({
      mode: 'cluster',
      nodes: Object.freeze(parseClusterNodes(cluster)),
      timeoutMs,
      retryMs,
      maxValueBytes,
    });
  }
  return Object.freeze({
    mode: 'single',
    url: parseRedisUrl(url ?? DEFAULT_REDIS_URL),
    timeoutMs,
    retryMs,
    maxValueBytes,
  });
}

/** Checks a `redis://` URL and returns it unchanged. @throws ConfigError */
export function parseRedisUrl(text: string): string {
  const bad = (why: string) =>
    new ConfigError(
      `VOLDFS_REDIS_URL=${JSON.stringify(redactUrl(text))} is invalid: ${why}; expected ` +
        'redis://[user:password@]host:port[/db], e.g. redis://127.0.0.1:6379',
    );
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw bad('not a URL');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw bad(`scheme ${parsed.protocol} is not redis: or rediss:`);
  }
  if (parsed.hostname === '') throw bad('no host');
  if (parsed.port !== '') {
    const port = Number(parsed.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${parsed.port} is not in 1..65535`);
  }
  if (parsed.pathname !== '' && parsed.pathname !== '/' && !/^\/[0-9]{1,2}$/.test(parsed.pathname)) {
    throw bad(`path ${parsed.pathname} is not a database number such as /0`);
  }
  if (parsed.search !== '' || parsed.hash !== '') throw bad('query strings and fragments are not supported');
  return text;
}

/** `redis://user:secret@host` -> `redis://user:***@host`, for messages. */
export function redactUrl(text: string): string {
  return text.replace(/^(\w+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** Parses `host:port,host:port`. @throws ConfigError */
export function parseClusterNodes(text: string): RedisNodeAddress[] {
  return hostPortList('VOLDFS_REDIS_CLUSTER', text, '127.0.0.1:7000,127.0.0.1:7001');
}
