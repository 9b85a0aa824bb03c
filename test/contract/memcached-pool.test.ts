/**
 * A pool of memcached servers: keys really spread over every server, placement puts derived
 * keys on the server it names, and scan lists keys from all servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvStore } from '../../src/backends/kv-store.js';
import { memcachedBackend, MemcachedStore } from '../../src/backends/memcached/index.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';

describe('memcached pool of three', () => {
  let pool: MemcachedPool | undefined;
  let store: KvStore | undefined;

  beforeAll(async () => {
    pool = await startMemcachedServers(3, { memoryMb: 16 });
    store = await memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: pool.serversValue }));
  });
  afterAll(async () => {
    await store?.close();
    await pool?.stop();
  });

  const itemCounts = async (): Promise<number[]> => Promise.all(pool?.servers.map((s) => s.itemCount()) ?? []);

  it('spreads keys over every server, each holding the keys placement assigns it', async () => {
    if (!pool || !(store instanceof MemcachedStore)) throw new Error('no pool');
    const s = store;
    const before = await itemCounts();
    const keys = Array.from({ length: 300 }, (_v, i) => `spread:${i}`);
    await Promise.all(keys.map((key) => s.put(key, Buffer.from(key))));
    const added = (await itemCounts()).map((count, i) => count - before[i]);
    const expected = pool.servers.map((server) => keys.filter((key) => s.serverOf(key) === server.address).length);
    expect(added).toEqual(expected);
    for (const count of added) expect(count).toBeGreaterThan(60);
  });

  it('keyInDomain puts a record on exactly the server it names', async () => {
    if (!pool || !store) throw new Error('no pool');
    const { placement } = store.capabilities;
    expect(placement.domains).toBe(3);
    for (let domain = 0; domain < 3; domain++) {
      const before = await itemCounts();
      await store.put(placement.keyInDomain('fragment:42', domain), Buffer.from('f'));
      const added = (await itemCounts()).map((count, i) => count - before[i]);
      expect(added).toEqual([0, 1, 2].map((i) => (i === domain ? 1 : 0)));
    }
  });

  it('scan lists matching keys from every server', async () => {
    const s = store;
    if (!s?.scan) throw new Error('no scan');
    // metadump URL-encodes keys: every printable character must come back as it was.
    const punctuation = 'scan:!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~%41%';
    const keys = [punctuation, s.capabilities.placement.keyInDomain('scan:frag', 2)];
    for (let i = 0; i < 30; i++) keys.push(`scan:${i}`);
    await Promise.all(keys.map((key) => s.put(key, Buffer.from('x'))));
    await s.put('scanner', Buffer.from('not under the prefix'));
    const listed: string[] = [];
    for await (const key of s.scan('scan:')) listed.push(key);
    expect(listed.sort()).toEqual([...keys].sort());
  });
});
