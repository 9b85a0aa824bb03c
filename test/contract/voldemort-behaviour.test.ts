/**
 * The Voldemort dialect beyond the shared contract, against the in-memory Voldemort REST test
 * server: what goes over the wire, siblings, coordinator failover, errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreError, StoreTimeout, StoreUnavailable } from '../../src/backends/errors.js';
import { VoldemortStore, parseHttpOptions } from '../../src/backends/kv-http/index.js';
import { IF_ABSENT, ifVersion, type KvStore } from '../../src/backends/kv-store.js';
import { findFreeBase } from '../helpers/free-ports.js';
import { VoldemortRestServer } from '../helpers/voldemort-rest-server.js';

const open = (urls: string, extra: Record<string, string> = {}) =>
  VoldemortStore.connect(parseHttpOptions({ VOLDFS_HTTP_DIALECT: 'voldemort', VOLDFS_HTTP_URLS: urls, ...extra }));

describe('voldemort dialect', () => {
  let server: VoldemortRestServer;
  let store: KvStore;

  beforeAll(async () => {
    server = await VoldemortRestServer.start({ stores: ['voldfs', 'other'] });
    store = await open(server.url);
  });

  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('stores a marker byte before the value, and a delete leaves a tombstone whose clock keeps growing', async () => {
    const r = await store.put('wire:a', Buffer.from('hello'), IF_ABSENT);
    if (!r.ok) throw new Error('put failed');
    const [stored] = server.versionsOf('wire:a');
    expect(stored.value.equals(Buffer.from('\u0001hello'))).toBe(true);
    // Our fixed entry and one increment at the master node 0.
    expect(JSON.parse(stored.clock).versions).toEqual([
      { nodeId: 0, version: 1 },
      { nodeId: 32767, version: 1 },
    ]);
    expect(await store.delete('wire:a')).toBe(true);
    const [tombstone] = server.versionsOf('wire:a');
    expect(tombstone.value.equals(Buffer.from([0]))).toBe(true);
    expect(JSON.parse(tombstone.clock).versions[0]).toEqual({ nodeId: 0, version: 2 });
    const again = await store.put('wire:a', Buffer.from('again'), IF_ABSENT);
    expect(again.ok).toBe(true);
    expect(JSON.parse(server.versionsOf('wire:a')[0].clock).versions[0]).toEqual({ nodeId: 0, version: 3 });
  });

  it('reads siblings as the newest value, and a CAS write with the merged clock replaces them all', async () => {
    server.inject('sib:a', '{"versions":[{"nodeId":0,"version":2},{"nodeId":32767,"version":1}],"timestamp":100}', Buffer.from('\u0001old'));
    server.inject('sib:a', '{"versions":[{"nodeId":1,"version":1},{"nodeId":32767,"version":1}],"timestamp":200}', Buffer.from('\u0001new'));
    const got = await store.get('sib:a');
    expect(got?.value.toString()).toBe('new');
    expect(JSON.parse(got?.version ?? '{}').versions).toEqual([
      { nodeId: 0, version: 2 },
      { nodeId: 1, version: 1 },
      { nodeId: 32767, version: 1 },
    ]);
    const r = await store.put('sib:a', Buffer.from('resolved'), ifVersion(got?.version ?? ''));
    expect(r.ok).toBe(true);
    expect(server.versionsOf('sib:a').length).toBe(1);
    expect((await store.get('sib:a'))?.value.toString()).toBe('resolved');
  });

  it('a value another program wrote (no marker byte) is reported, not returned', async () => {
    server.inject('foreign:a', '{"versions":[{"nodeId":0,"version":1}],"timestamp":1}', Buffer.from('raw'));
    const err = await store.get('foreign:a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(/voldfs did not write/);
  });

  it('keeps stores apart (VOLDFS_HTTP_STORE)', async () => {
    const other = await open(server.url, { VOLDFS_HTTP_STORE: 'other' });
    try {
      await other.put('apart', Buffer.from('in other'));
      expect(await store.get('apart')).toBeUndefined();
      expect((await other.get('apart'))?.value.toString()).toBe('in other');
    } finally {
      await other.close();
    }
  });

  it('an unknown store is refused at open, naming VOLDFS_HTTP_STORE', async () => {
    const err = await open(server.url, { VOLDFS_HTTP_STORE: 'nosuch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error).message).toMatch(/no store named nosuch.*VOLDFS_HTTP_STORE/);
  });
});

describe('voldemort dialect, coordinator failures', () => {
  const started: VoldemortRestServer[] = [];
  const stores: KvStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const s of started.splice(0)) await s.stop();
  });

  it('fails over to the next coordinator when the one it used goes away', async () => {
    const a = await VoldemortRestServer.start();
    const b = await VoldemortRestServer.start({ sameClusterAs: a });
    started.push(a, b);
    const store = await open(`${a.url},${b.url}`, { VOLDFS_HTTP_RETRY_MS: '0' });
    stores.push(store);
    const r = await store.put('fo:k', Buffer.from('one'), IF_ABSENT);
    if (!r.ok) throw new Error('put failed');
    expect(a.counts.post).toBe(1);
    await a.stop();
    expect((await store.get('fo:k'))?.value.toString()).toBe('one');
    expect((await store.put('fo:k', Buffer.from('two'), ifVersion(r.version))).ok).toBe(true);
    expect(b.counts.post).toBe(1);
  });

  it('a hung coordinator gives StoreTimeout within the timeout', async () => {
    const a = await VoldemortRestServer.start();
    started.push(a);
    const store = await open(a.url, { VOLDFS_HTTP_TIMEOUT_MS: '500' });
    stores.push(store);
    a.pause(true);
    const t = Date.now();
    const err = await store.get('hung').catch((e: unknown) => e);
    a.pause(false);
    expect(err).toBeInstanceOf(StoreTimeout);
    expect((err as Error).message).toMatch(/within 500 ms.*VOLDFS_HTTP_TIMEOUT_MS/);
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it('an unreachable coordinator at open gives StoreUnavailable naming the URL and the variable', async () => {
    const port = await findFreeBase([0]);
    const err = await open(`http://127.0.0.1:${port}`, { VOLDFS_HTTP_RETRY_MS: '0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*ECONNREFUSED.*VOLDFS_HTTP_URLS`));
  });
});
