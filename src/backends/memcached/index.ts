import type { BackendDefinition } from '../backend.js';
import { MemcachedStore } from './memcached-store.js';
import { DEFAULT_SERVERS, DEFAULT_TIMEOUT_MS, parseMemcachedOptions, type MemcachedOptions } from './options.js';

export { MemcachedStore } from './memcached-store.js';
export { parseMemcachedOptions, parseServers, type MemcachedOptions } from './options.js';
export { InvalidKey, MEMCACHED_MAX_KEY_BYTES } from './keys.js';
export { ITEM_OVERHEAD_BYTES } from './server-settings.js';
export { JumpHashPlacement } from './placement.js';

/**
 * `VOLDFS_DB=mc`: a pool of memcached servers (1.6+, binary protocol), keys spread by jump
 * consistent hashing. The servers must run with -M so that a full server refuses writes
 * (ENOSPC) instead of evicting records; scripts/memcached-start starts such a pool.
 */
export const memcachedBackend: BackendDefinition<MemcachedOptions> = {
  name: 'mc',
  summary: 'memcached servers started with -M (scripts/memcached-start); data lives in their memory only',
  variables: [
    {
      name: 'VOLDFS_MC_SERVERS',
      description: 'comma-separated host:port list; every client must list the servers in the same order',
      default: DEFAULT_SERVERS,
    },
    {
      name: 'VOLDFS_MC_TIMEOUT_MS',
      description: 'milliseconds a request (connecting included) may take before it fails',
      default: String(DEFAULT_TIMEOUT_MS),
    },
    {
      name: 'VOLDFS_MC_ALLOW_EVICTION',
      description: 'yes to accept servers started without -M, which silently lose records when full',
      default: 'no',
    },
  ],
  parseOptions: parseMemcachedOptions,
  create: (options) => MemcachedStore.connect(options),
};
