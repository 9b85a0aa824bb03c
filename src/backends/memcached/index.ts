import type { BackendDefinition } from '../backend.js';
import { connectMemcached } from './connect-store.js';
import { DEFAULT_ITEM_SIZE_BYTES, DEFAULT_SERVERS, DEFAULT_TIMEOUT_MS, parseMemcachedOptions, type MemcachedOptions } from './options.js';

export { MemcachedStore } from './memcached-store.js';
export { CasOnlyStore } from './cas-only-store.js';
export { connectMemcached } from './connect-store.js';
export { parseMemcachedOptions, parseServers, type MemcachedOptions } from './options.js';
export { InvalidKey, MEMCACHED_MAX_KEY_BYTES } from './keys.js';
export { ITEM_OVERHEAD_BYTES } from './server-settings.js';
export { JumpHashPlacement } from './placement.js';

/**
 * `VOLDFS_DB=mc`: a pool of memcached-protocol servers, keys spread by jump consistent hashing:
 * memcached 1.6+ (binary protocol, or text with VOLDFS_MC_PROTOCOL=text), a kumofs gateway
 * (either port) or twemproxy (text). What the servers are is probed at mount. memcached must
 * run with -M so that a full server refuses writes (ENOSPC) instead of evicting records;
 * scripts/memcached-start starts such a pool.
 */
export const memcachedBackend: BackendDefinition<MemcachedOptions> = {
  name: 'mc',
  summary: 'memcached servers started with -M (scripts/memcached-start), a kumofs gateway or twemproxy',
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
      name: 'VOLDFS_MC_PROTOCOL',
      description: 'binary or text; unset: binary where the servers speak it, text where they speak only that (kumofs text port, twemproxy)',
      default: '',
    },
    {
      name: 'VOLDFS_MC_ITEM_SIZE',
      description: 'largest item the servers take (e.g. 1m, 512k), for servers that do not report it (kumofs, twemproxy)',
      default: String(DEFAULT_ITEM_SIZE_BYTES),
    },
    {
      name: 'VOLDFS_MC_ALLOW_EVICTION',
      description: 'yes to accept servers started without -M, which silently lose records when full',
      default: 'no',
    },
  ],
  parseOptions: parseMemcachedOptions,
  create: (options) => connectMemcached(options),
};
