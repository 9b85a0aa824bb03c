import { Cluster, Redis } from 'ioredis';
import { StoreTimeout, StoreUnavailable } from '../errors.js';
import type { Placement } from '../kv-store.js';
import type { RedisClusterOptions, RedisOptions, RedisSingleOptions } from './options.js';
import { redactUrl } from './options.js';
import { SINGLE_DOMAIN } from '../kv-store.js';
import { ClusterPlacement, type SlotRange } from './placement.js';
import { toStoreError, type ErrorContext } from './redis-errors.js';
import { withTimeout } from '../timeout.js';

/** A connected client and what was learnt about the servers while connecting. */
export interface RedisConnection {
  readonly client: Redis | Cluster;
  readonly placement: Placement;
  readonly context: ErrorContext;
  /** The last connection-level error ioredis reported, for messages; undefined if none. */
  lastError(): Error | undefined;
}

/** Redis 7 is needed for scripts with a `#!lua` shebang (see scripts.ts). */
const MIN_MAJOR_VERSION = 7;

/** Describes the configured server(s) for messages, without passwords. */
export function errorContext(options: RedisOptions): ErrorContext {
  return options.mode === 'single'
    ? { server: redactUrl(options.url), variable: 'VOLDFS_REDIS_URL', timeoutMs: options.timeoutMs }
    : {
        server: `cluster ${options.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`,
        variable: 'VOLDFS_REDIS_CLUSTER',
        timeoutMs: options.timeoutMs,
      };
}

/**
 * Connects, checks that the server(s) can hold a filesystem (Redis >= 7, no eviction of
 * arbitrary keys) and, for a cluster, reads the slot map for placement.
 * @throws StoreUnavailable when the servers cannot be reached in time or are unsuitable
 */
export async function connectRedis(options: RedisOptions): Promise<RedisConnection> {
  const context = errorContext(options);
  let lastError: Error | undefined;
  const client = options.mode === 'single' ? singleClient(options) : clusterClient(options);
  // Without listeners ioredis prints every reconnect failure to the console; keep the last
  // one for messages instead.
  client.on('error', (err: Error) => {
    lastError = err;
  });
  client.on('node error', (err: Error) => {
    lastError = err;
  });
  try {
    // Connecting may retry in the background forever; the open must not.
    const limit = options.timeoutMs * 2 + 1000;
    await withTimeout(client.connect(), limit, () =>
      new StoreUnavailable(`no answer within ${limit} ms`),
    );
    const masters = client instanceof Cluster ? client.nodes('master') : [client];
    if (masters.length === 0) throw new StoreUnavailable('the cluster reports no masters');
    for (const node of masters) {
      const info = await withTimeout(node.info(), limit, () => new StoreUnavailable(`INFO got no answer within ${limit} ms`));
      checkServer(info, `${node.options.host ?? '?'}:${node.options.port ?? '?'}`);
    }
    const placement =
      client instanceof Cluster
        ? new ClusterPlacement(
            parseClusterSlots(
              await withTimeout(client.cluster('SLOTS'), limit, () => new StoreUnavailable('CLUSTER SLOTS got no answer')),
            ),
          )
        : SINGLE_DOMAIN;
    return { client, placement, context, lastError: () => lastError };
  } catch (err) {
    client.disconnect();
    const mapped = toStoreError(err, 'connection check', context, lastError);
    if (mapped instanceof StoreUnavailable || mapped instanceof StoreTimeout) {
      throw new StoreUnavailable(`cannot open the Redis store: ${mapped.message}`, { cause: err });
    }
    // Reachable but unsuitable (too old, evicting): the reason is the whole message.
    throw new StoreUnavailable(
      `cannot open the Redis store at ${context.server}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

function singleClient(options: RedisSingleOptions): Redis {
  return new Redis(options.url, {
    lazyConnect: true,
    connectTimeout: options.timeoutMs,
    commandTimeout: options.timeoutMs,
    // A command waiting for a lost connection fails after one reconnect attempt; the store's
    // own retry loop (VOLDFS_REDIS_RETRY_MS) decides whether to try again.
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1000),
    // Commands issued in one tick go out as one pipeline: getMany of 5000 small records took
    // 45-90 ms with it and 170-240 ms without.
    enableAutoPipelining: true,
    enableReadyCheck: true,
  });
}

function clusterClient(options: RedisClusterOptions): Cluster {
  return new Cluster(
    options.nodes.map((n) => ({ host: n.host, port: n.port })),
    {
      lazyConnect: true,
      scaleReads: 'master',
      // No auto-pipelining here: each command is routed by its slot on its own. Measured on a
      // 3-master cluster, grouping per node gained nothing for getMany of small records and
      // cut concurrent 512 KiB gets by about a third.
      enableAutoPipelining: false,
      maxRedirections: 16,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 200,
      slotsRefreshTimeout: options.timeoutMs,
      slotsRefreshInterval: 5000,
      clusterRetryStrategy: (times) => Math.min(times * 100, 1000),
      redisOptions: {
        connectTimeout: options.timeoutMs,
        commandTimeout: options.timeoutMs,
        maxRetriesPerRequest: 1,
      },
    },
  );
}

/**
 * Refuses servers that would lose records: one older than Redis 7, or one that evicts
 * arbitrary keys when full (allkeys-* policies). volatile-* policies evict only keys with a
 * time to live, and voldfs sets none.
 */
function checkServer(info: string, address: string): void {
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  const version = field('redis_version');
  const major = Number(version?.split('.')[0]);
  if (!Number.isFinite(major) || major < MIN_MAJOR_VERSION) {
    throw new Error(`Redis ${address} is version ${version ?? 'unknown'}; voldfs needs Redis ${MIN_MAJOR_VERSION}.0 or newer`);
  }
  const policy = field('maxmemory_policy');
  if (policy?.startsWith('allkeys-')) {
    throw new Error(
      `Redis ${address} runs with maxmemory-policy ${policy}, which deletes records when memory is full; ` +
        'set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)',
    );
  }
}

/** Parses the reply of CLUSTER SLOTS: [[first, last, [host, port, id], replicas...], ...]. */
export function parseClusterSlots(reply: unknown): SlotRange[] {
  if (!Array.isArray(reply)) throw new Error('unexpected reply to CLUSTER SLOTS');
  return reply.map((entry: unknown) => {
    if (!Array.isArray(entry) || entry.length < 3 || !Array.isArray(entry[2])) {
      throw new Error('unexpected entry in the reply to CLUSTER SLOTS');
    }
    const [first, last, master] = entry as [unknown, unknown, unknown[]];
    const id = master[2];
    return {
      first: Number(first),
      last: Number(last),
      masterId: typeof id === 'string' ? id : `${String(master[0])}:${String(master[1])}`,
    };
  });
}
