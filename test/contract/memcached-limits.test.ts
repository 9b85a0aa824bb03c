/**
 * memcached beyond the shared contract: a full server (-M) refuses writes with StoreFull and
 * loses nothing, the item size limit is read from the server, keys and servers memcached
 * cannot take are refused with clear errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreFull, StoreUnavailable, ValueTooLarge } from '../../src/backends/errors.js';
import { IF_ABSENT, ifVersion, type KvStore } from '../../src/backends/kv-store.js';
import { InvalidKey, memcachedBackend, MemcachedStore } from '../../src/backends/memcached/index.js';
import { MemcachedServer, startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';

async function openStore(servers: string, env: Record<string, string> = {}): Promise<KvStore> {
  return memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: servers, ...env }));
}

/** A 100 kB value that differs per index, so a mixed-up record is noticed. */
function block(index: number): Buffer {
  return Buffer.alloc(100_000, index % 251);
}

describe('memcached started with -M and little memory', () => {
  let pool: MemcachedPool | undefined;
  let store: KvStore | undefined;

  beforeAll(async () => {
    pool = await startMemcachedServers(1, { memoryMb: 4 });
    store = await openStore(pool.serversValue);
  });
  afterAll(async () => {
    await store?.close();
    await pool?.stop();
  });

  it('refuses writes with StoreFull once full, loses nothing, and takes writes again after deletes', async () => {
    if (!store) throw new Error('no store');
    const stored: string[] = [];
    let full: unknown;
    for (let i = 0; i < 500 && full === undefined; i++) {
      try {
        const result = await store.put(`full:${i}`, block(i), IF_ABSENT);
        expect(result.ok).toBe(true);
        stored.push(`full:${i}`);
      } catch (error) {
        full = error;
      }
    }
    expect(full).toBeInstanceOf(StoreFull);
    expect((full as Error).message).toMatch(/out of memory.*nothing stored was evicted/);
    expect(stored.length).toBeGreaterThan(5);

    const all = await store.getMany(stored);
    all.forEach((found, i) => expect(found?.value.equals(block(i)), stored[i]).toBe(true));

    // Regression: a failed overwrite must keep the old record (a memcached SET that cannot
    // allocate unlinks the item it was replacing).
    const victim = all[0];
    if (!victim) throw new Error('first record vanished');
    await expect(store.put(stored[0], block(999), ifVersion(victim.version))).rejects.toBeInstanceOf(StoreFull);
    await expect(store.put(stored[0], block(998))).rejects.toBeInstanceOf(StoreFull);
    const after = await store.get(stored[0]);
    expect(after?.version).toBe(victim.version);
    expect(after?.value.equals(block(0))).toBe(true);

    expect(await store.delete(stored[1])).toBe(true);
    expect((await store.put('full:again', block(7), IF_ABSENT)).ok).toBe(true);
  });
});

describe('memcached item size limit', () => {
  let server: MemcachedServer | undefined;

  beforeAll(async () => {
    server = await MemcachedServer.start({ itemSize: '512k', memoryMb: 16 });
  });
  afterAll(async () => {
    await server?.dispose();
  });

  it('declares maxValueBytes from the server’s -I, and the longest key with a placement suffix fits it', async () => {
    if (!server) throw new Error('no server');
    const store = await openStore(server.address);
    try {
      const max = 512 * 1024 - 250 - 59;
      expect(store.capabilities.maxValueBytes).toBe(max);
      const key = store.capabilities.placement.keyInDomain('s'.repeat(240), 0);
      const value = Buffer.alloc(max, 0x5a);
      expect((await store.put(key, value)).ok).toBe(true);
      expect((await store.get(key))?.value.equals(value)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('throws ValueTooLarge one byte above, before sending anything', async () => {
    if (!server) throw new Error('no server');
    const store = await openStore(server.address);
    try {
      const max = store.capabilities.maxValueBytes;
      await store.put('big', Buffer.alloc(10));
      const setsBefore = Number((await server.stats()).get('cmd_set'));
      const error = await store.put('big', Buffer.alloc(max + 1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValueTooLarge);
      expect((error as Error).message).toContain(`exceeds the store's limit of ${max} bytes`);
      expect(Number((await server.stats()).get('cmd_set'))).toBe(setsBefore);
      expect((await store.get('big'))?.value.length).toBe(10);
    } finally {
      await store.close();
    }
  });

  it('rejects keys memcached cannot hold, naming the problem', async () => {
    if (!server) throw new Error('no server');
    const store = await openStore(server.address);
    try {
      await expect(store.get('has space')).rejects.toThrow(/printable ASCII without spaces/);
      await expect(store.put('k'.repeat(251), Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKey);
      await expect(store.delete('tab\there')).rejects.toBeInstanceOf(InvalidKey);
      // The connection is unharmed.
      expect((await store.put('fine', Buffer.from('x'))).ok).toBe(true);
    } finally {
      await store.close();
    }
  });
});

describe('memcached servers a filesystem cannot use', () => {
  let evicting: MemcachedServer | undefined;

  beforeAll(async () => {
    evicting = await MemcachedServer.start({ evict: true, memoryMb: 16 });
  });
  afterAll(async () => {
    await evicting?.dispose();
  });

  it('refuses a server started without -M unless VOLDFS_MC_ALLOW_EVICTION=yes', async () => {
    if (!evicting) throw new Error('no server');
    const refused = await openStore(evicting.address).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreUnavailable);
    expect((refused as Error).message).toContain(`memcached at ${evicting.address} evicts items`);
    expect((refused as Error).message).toContain('restart it with -M');
    const store = await openStore(evicting.address, { VOLDFS_MC_ALLOW_EVICTION: 'yes' });
    expect(store).toBeInstanceOf(MemcachedStore);
    await store.close();
  });
});
