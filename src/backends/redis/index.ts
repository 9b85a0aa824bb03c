import type { BackendDefinition } from '../backend.js';
import {
  DEFAULT_CLUSTER_RETRY_MS,
  DEFAULT_MAX_VALUE_BYTES,
  DEFAULT_REDIS_URL,
  DEFAULT_SINGLE_RETRY_MS,
  DEFAULT_TIMEOUT_MS,
  parseRedisOptions,
  type RedisOptions,
} from './options.js';
import { RedisStore } from './redis-store.js';

export { RedisStore, REDIS_MAX_COMMIT_OPS } from './redis-store.js';
export { parseRedisOptions, type RedisOptions } from './options.js';
export { ClusterPlacement } from './placement.js';
export { keySlot } from './key-slot.js';

/**
 * `VOLDFS_DB=redis`: one Redis server (atomic multi-key commits by Lua script) or a Redis
 * Cluster (keys spread over all masters, one failure domain per master, no multi-key
 * commit). Redis 7 or newer, with a maxmemory policy that never evicts records
 * (scripts/redis-start starts such servers).
 */
export const redisBackend: BackendDefinition<RedisOptions> = {
  name: 'redis',
  summary: 'Redis 7+, one server or a Redis Cluster (scripts/redis-start)',
  variables: [
    {
      name: 'VOLDFS_REDIS_URL',
      description: 'one server: redis://[user:password@]host:port[/db]',
      default: DEFAULT_REDIS_URL,
    },
    {
      name: 'VOLDFS_REDIS_CLUSTER',
      description: 'a Redis Cluster instead: comma-separated host:port seed nodes (exclusive with VOLDFS_REDIS_URL)',
    },
    {
      name: 'VOLDFS_REDIS_TIMEOUT_MS',
      description: 'milliseconds one command (or connecting) may take before it fails',
      default: String(DEFAULT_TIMEOUT_MS),
    },
    {
      name: 'VOLDFS_REDIS_RETRY_MS',
      description: `milliseconds an operation keeps retrying while the store is unreachable or failing over (default ${DEFAULT_SINGLE_RETRY_MS} for one server, ${DEFAULT_CLUSTER_RETRY_MS} for a cluster)`,
    },
    {
      name: 'VOLDFS_REDIS_MAX_VALUE_BYTES',
      description: 'largest value one record holds, in bytes',
      default: String(DEFAULT_MAX_VALUE_BYTES),
    },
  ],
  parseOptions: parseRedisOptions,
  create: (options) => RedisStore.connect(options),
};
