import type { AnyBackend } from './backend.js';
import { memcachedBackend } from './memcached/index.js';
import { httpBackend } from './kv-http/index.js';
import { lmdbBackend } from './lmdb/index.js';
import { memoryBackend } from './memory/index.js';
import { redisBackend } from './redis/index.js';

/**
 * Every backend, by its VOLDFS_DB name. Adding a backend is a folder under src/backends and one
 * line here.
 */
export const BACKENDS: readonly AnyBackend[] = [
  lmdbBackend,
  memoryBackend,
  memcachedBackend,
  redisBackend,
  httpBackend,
];

export function findBackend(name: string): AnyBackend | undefined {
  return BACKENDS.find((b) => b.name === name);
}
