/**
 * Single-server Redis behaviour beyond the shared contract: clear errors at open, a full
 * server gives StoreFull, a server that would evict records is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreFull, StoreUnavailable } from '../../src/backends/errors.js';
import { IF_ABSENT } from '../../src/backends/kv-store.js';
import { Redis } from 'ioredis';
import { RedisStore, parseRedisOptions } from '../../src/backends/redis/index.js';
import { CONDITIONAL_PUT, COMMIT } from '../../src/backends/redis/scripts.js';
import { findFreeBase } from '../helpers/free-ports.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';

describe('redis single server', () => {
  let servers: RedisServers;
  const open = () => RedisStore.connect(parseRedisOptions({ ...servers.env, VOLDFS_REDIS_TIMEOUT_MS: '2000' }));

  beforeAll(async () => {
    servers = await startRedis('single');
  });

  afterAll(async () => {
    await servers?.stop();
  });

  it('an unreachable server at open gives StoreUnavailable naming the address and the variable', async () => {
    const port = await findFreeBase([0]);
    const started = Date.now();
    const err = await RedisStore.connect(
      parseRedisOptions({ VOLDFS_REDIS_URL: `redis://127.0.0.1:${port}`, VOLDFS_REDIS_TIMEOUT_MS: '1000' }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED.*VOLDFS_REDIS_URL`));
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('an unreachable cluster at open gives StoreUnavailable naming VOLDFS_REDIS_CLUSTER', async () => {
    const port = await findFreeBase([0]);
    const err = await RedisStore.connect(
      parseRedisOptions({ VOLDFS_REDIS_CLUSTER: `127.0.0.1:${port}`, VOLDFS_REDIS_TIMEOUT_MS: '1000' }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error).message).toMatch(/VOLDFS_REDIS_CLUSTER/);
  });

  it('a server that evicts arbitrary keys when full is refused at open', async () => {
    const port = servers.ports[0];
    await servers.cli(port, 'config', 'set', 'maxmemory-policy', 'allkeys-lru');
    try {
      const err = await open().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreUnavailable);
      expect((err as Error).message).toMatch(/maxmemory-policy allkeys-lru.*noeviction/);
    } finally {
      await servers.cli(port, 'config', 'set', 'maxmemory-policy', 'noeviction');
    }
  });

  it('a server out of memory gives StoreFull with a message saying what to do', async () => {
    const port = servers.ports[0];
    const store = await open();
    try {
      const used = Number(/^used_memory:(\d+)/m.exec(await servers.cli(port, 'info', 'memory'))?.[1]);
      await servers.cli(port, 'config', 'set', 'maxmemory', String(used + 4 * 1024 * 1024));
      const value = Buffer.alloc(512 * 1024, 7);
      let err: unknown;
      for (let i = 0; i < 40 && err === undefined; i++) {
        await store.put(`oom:${i}`, value, IF_ABSENT).catch((e: unknown) => {
          err = e;
        });
      }
      expect(err).toBeInstanceOf(StoreFull);
      expect((err as Error).message).toMatch(/out of memory.*maxmemory/);
      // Reads still work on a full server.
      expect((await store.get('oom:0'))?.value.length).toBe(value.length);
    } finally {
      await servers.cli(port, 'config', 'set', 'maxmemory', '0');
      await store.close();
    }
  });

  it('stores a record as a hash of value and version', async () => {
    const store = await open();
    try {
      const r = await store.put('layout:k', Buffer.from('hello'));
      if (!r.ok) throw new Error('put failed');
      const fields = await servers.cli(servers.ports[0], 'hgetall', 'layout:k');
      expect(fields.split('\n').filter(Boolean)).toEqual(['v', 'hello', 'r', r.version]);
    } finally {
      await store.close();
    }
  });

  it('a conditional write sent twice (a re-send after a lost connection) reports success both times', async () => {
    const client = new Redis(servers.env.VOLDFS_REDIS_URL);
    try {
      const put = (version: string) =>
        client.eval(CONDITIONAL_PUT.source, 1, 'resend:k', 'a', '', version, 'value');
      expect(await put('version-1')).toBe(1);
      // The same call again finds its own version in place: success, not a conflict.
      expect(await put('version-1')).toBe(1);
      // Another writer's ifAbsent still fails.
      expect(await put('version-2')).toBe(0);
      const commit = (version: string) =>
        client.eval(COMMIT.source, 2, 'resend:c1', 'resend:c2', '2', 'a', '', version, 'x', 'a', '', `${version}b`, 'y');
      expect(await commit('c-1')).toBe(1);
      expect(await commit('c-1')).toBe(1);
      expect(await commit('c-2')).toBe(0);
    } finally {
      client.disconnect();
    }
  });
});
