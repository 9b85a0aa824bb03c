import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntegrityError, StoreUnavailable } from '../../../../src/backends/errors.js';
import { IF_ABSENT, ifVersion } from '../../../../src/backends/kv-store.js';
import { MemoryStore } from '../../../../src/backends/memory/index.js';
import { suffixPlacement } from '../../../../src/backends/memory/placement.js';
import { ReplicatedStore } from '../../../../src/backends/wrappers/replicated-store.js';
import { withAtomicCommit } from '../../../../src/cas/intent-store.js';
import { silentLog } from '../../../helpers/intent-fixture.js';

const DOMAINS = 6;
const REPLICAS = 3;
const SENTINEL = 'v:alive';
const SUPERBLOCK = 'v:sb';

/**
 * A six-domain memory store whose domains can be made unreachable (every operation touching
 * one of their keys fails) or wiped (a server restarted empty), under a replicated store.
 */
function setup(replicas = REPLICAS) {
  const down = new Set<number>();
  const placement = suffixPlacement(DOMAINS);
  const inner = new MemoryStore({
    domains: DOMAINS,
    beforeOperation: (call) => {
      for (const key of call.keys) {
        const d = placement.domainOf(key);
        if (down.has(d)) throw new StoreUnavailable(`domain ${d} is down`);
      }
    },
  });
  let clock = 0;
  const open = () => new ReplicatedStore(inner, { sentinelKey: SENTINEL, everywhere: [SUPERBLOCK], replicas, trustMs: 10, now: () => clock });
  const store = open();
  const sentinelKeys = Array.from({ length: DOMAINS }, (_, d) => placement.keyInDomain(SENTINEL, d));
  return {
    inner,
    store,
    /** Another client of the same store (a fresh mount, or fsck). */
    open,
    down,
    /** Lets the cached domain states expire. */
    tick: () => {
      clock += 100;
    },
    async plant() {
      for (const key of sentinelKeys) await store.put(key, Buffer.from('vol'), IF_ABSENT);
      clock += 100;
    },
    /** Every record of the domains gone, sentinel included. */
    async wipe(domains: readonly number[]) {
      const saved = [...down];
      down.clear();
      const keys: string[] = [];
      for await (const key of inner.scan('')) if (domains.includes(placement.domainOf(key))) keys.push(key);
      for (const key of keys) await inner.delete(key);
      for (const d of saved) down.add(d);
      clock += 100;
    },
    async copiesOf(key: string) {
      return Promise.all(store.replicaDomains(key).map(async (d) => (await inner.get(store.copyKey(key, d)))?.value.toString()));
    },
  };
}

function domainsOf(store: ReplicatedStore, key: string): number[] {
  return store.replicaDomains(key);
}

describe('ReplicatedStore', () => {
  it('keeps replicas copies of a key on distinct consecutive domains, the primary copy under the key itself', async () => {
    const { store, inner, copiesOf, plant } = setup();
    await plant();
    await store.put('v:i:1', Buffer.from('one'));
    const domains = domainsOf(store, 'v:i:1');
    expect(new Set(domains).size).toBe(REPLICAS);
    expect(domains[0]).toBe(inner.capabilities.placement.domainOf('v:i:1'));
    for (const [j, d] of domains.entries()) {
      expect((domains[0] + j) % DOMAINS).toBe(d);
      expect(inner.capabilities.placement.domainOf(store.copyKey('v:i:1', d))).toBe(d);
    }
    expect(store.copyKey('v:i:1', domains[0])).toBe('v:i:1');
    expect(await copiesOf('v:i:1')).toEqual(['one', 'one', 'one']);
    expect(domainsOf(store, SUPERBLOCK)).toHaveLength(DOMAINS);
  });

  it('reads, updates by version and deletes with any two of a key\'s domains unreachable', async () => {
    for (const pair of [[0, 1], [1, 2], [0, 2]] as const) {
      const { store, down, plant, tick } = setup();
      await plant();
      const key = 'v:d:7:r';
      await store.put(key, Buffer.from('a'));
      const domains = domainsOf(store, key);
      for (const j of pair) down.add(domains[j]);
      tick();
      const got = await store.get(key);
      expect(got?.value.toString()).toBe('a');
      const put = await store.put(key, Buffer.from('b'), ifVersion(got?.version ?? ''));
      expect(put.ok).toBe(true);
      expect((await store.getMany([key, 'v:i:404']))[0]?.value.toString()).toBe('b');
      expect(await store.put(key, Buffer.from('c'), IF_ABSENT)).toEqual({ ok: false });
      expect(await store.delete(key, ifVersion('0:stale'))).toBe(false);
      const now = await store.get(key);
      expect(await store.delete(key, ifVersion(now?.version ?? ''))).toBe(true);
      expect(await store.get(key)).toBeUndefined();
    }
  });

  it('never answers "absent" from a domain that restarted empty: the next copy answers', async () => {
    const { store, plant, wipe } = setup();
    await plant();
    await store.put('v:c:3:0', Buffer.from('map'));
    const [primary, second] = domainsOf(store, 'v:c:3:0');
    await wipe([primary]);
    expect((await store.get('v:c:3:0'))?.value.toString()).toBe('map');
    expect((await store.getMany(['v:c:3:0']))[0]?.value.toString()).toBe('map');
    expect((await store.domainStates())[primary]).toBe('lost');
    await wipe([second]);
    expect((await store.get('v:c:3:0'))?.value.toString()).toBe('map');
  });

  it('a version read from one copy is a conflict on another; a re-read gives one that works', async () => {
    const { store, down, plant, tick } = setup();
    await plant();
    const key = 'v:i:9';
    const first = await store.put(key, Buffer.from('x'));
    expect(first.ok).toBe(true);
    const read = await store.get(key);
    down.add(domainsOf(store, key)[0]);
    tick();
    expect(await store.put(key, Buffer.from('y'), ifVersion(read?.version ?? ''))).toEqual({ ok: false });
    const again = await store.get(key);
    expect(again?.version).not.toBe(read?.version);
    expect((await store.put(key, Buffer.from('y'), ifVersion(again?.version ?? ''))).ok).toBe(true);
  });

  it('fails with StoreUnavailable when every copy is unreachable and IntegrityError when every copy was lost', async () => {
    const { store, down, plant, wipe, tick } = setup();
    await plant();
    const key = 'v:alloc';
    await store.put(key, Buffer.from('n'));
    const domains = domainsOf(store, key);
    for (const d of domains) down.add(d);
    tick();
    await expect(store.get(key)).rejects.toBeInstanceOf(StoreUnavailable);
    await expect(store.put(key, Buffer.from('m'))).rejects.toBeInstanceOf(StoreUnavailable);
    down.clear();
    await wipe(domains);
    await expect(store.get(key)).rejects.toBeInstanceOf(IntegrityError);
    await expect(store.getMany([key])).rejects.toBeInstanceOf(IntegrityError);
  });

  it('before any sentinel exists (mkfs) nothing counts as lost', async () => {
    const { store } = setup();
    expect(await store.get(SUPERBLOCK)).toBeUndefined();
    expect(await store.domainStates()).toEqual(Array.from({ length: DOMAINS }, () => 'ok'));
  });

  it('scan lists each key once, whichever copies exist; sentinels pass through unreplicated', async () => {
    const { store, inner, plant, wipe } = setup();
    await plant();
    for (let i = 0; i < 20; i++) await store.put(`v:i:${i}`, Buffer.from(String(i)));
    await wipe([0, 1]);
    const listed: string[] = [];
    for await (const key of store.scan?.('v:i:') ?? []) listed.push(key);
    expect(listed.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `v:i:${i}`).sort());
    const sentinels: string[] = [];
    for await (const key of inner.scan('v:alive')) sentinels.push(key);
    expect(sentinels).toHaveLength(DOMAINS - 2);
  });

  it('resync copies records back to domains that restarted empty, after which two other domains may go', async () => {
    const { store, down, plant, wipe, tick, copiesOf } = setup();
    await plant();
    const keys = Array.from({ length: 40 }, (_, i) => `v:i:${i}`);
    for (const key of keys) await store.put(key, Buffer.from(`value ${key}`));
    await store.put(SUPERBLOCK, Buffer.from('sb'));
    await wipe([2, 3]);
    let rewritten = 0;
    for (const key of [...keys, SUPERBLOCK]) rewritten += await store.resync(key);
    expect(rewritten).toBeGreaterThan(0);
    for (const key of keys) expect(new Set(await copiesOf(key))).toEqual(new Set([`value ${key}`]));
    for (const key of keys) expect(await store.resync(key)).toBe(0);
    await plant();
    down.add(4).add(5);
    tick();
    for (const key of keys) expect((await store.get(key))?.value.toString()).toBe(`value ${key}`);
    expect((await store.get(SUPERBLOCK))?.value.toString()).toBe('sb');
  });

  it('under the intent layer, multi-key commits work with two domains down; those domains come back demoted to lost, as they missed writes', async () => {
    const { store, inner, down, plant, tick } = setup();
    await plant();
    const meta = withAtomicCommit(store, { log: silentLog });
    down.add(1).add(4);
    tick();
    expect(await meta.commit?.([{ key: 'v:i:1', value: Buffer.from('1'), condition: IF_ABSENT }, { key: 'v:i:2', value: Buffer.from('2'), condition: IF_ABSENT }])).toBe(true);
    // Back with their old (stale) records, not restarted: never read again before a repair.
    down.clear();
    tick();
    const states = await store.domainStates();
    expect([states[1], states[4]]).toEqual(['lost', 'lost']);
    const placement = inner.capabilities.placement;
    expect(await inner.get(placement.keyInDomain(SENTINEL, 1))).toBeUndefined();
    expect(await inner.get(placement.keyInDomain(SENTINEL, 0))).toBeDefined();
    down.add(0).add(3);
    tick();
    const [a, b] = await meta.getMany(['v:i:1', 'v:i:2']);
    expect([a?.value.toString(), b?.value.toString()]).toEqual(['1', '2']);
  });

  it('a domain that missed writes comes back stale after its writer is gone: the next client demotes it, and resync + markers cleared + sentinel planted make it whole', async () => {
    const { store: writer, open, down, inner, plant, tick, copiesOf } = setup();
    await plant();
    // A key whose primary copy is on domain 2, the one that will be hung.
    const key = Array.from({ length: 200 }, (_, i) => `v:i:${i}`).find((k) => writer.replicaDomains(k)[0] === 2) as string;
    await writer.put(key, Buffer.from('old'));
    down.add(2);
    tick();
    const read = await writer.get(key);
    expect((await writer.put(key, Buffer.from('new'), ifVersion(read?.version ?? ''))).ok).toBe(true);
    // The writer exits; domain 2 answers again with its old copy.
    down.clear();
    expect(await copiesOf(key)).toEqual(['old', 'new', 'new']);
    const reader = open();
    expect((await reader.get(key))?.value.toString()).toBe('new');
    expect((await reader.domainStates())[2]).toBe('lost');
    const placement = inner.capabilities.placement;
    expect(await inner.get(placement.keyInDomain(SENTINEL, 2))).toBeUndefined();
    // fsck --repair: copies, then markers, then the sentinel.
    const fsck = open();
    expect(await fsck.resync(key)).toBe(1);
    await fsck.clearMissedMarkers();
    await plant();
    expect(await copiesOf(key)).toEqual(['new', 'new', 'new']);
    const later = open();
    expect((await later.domainStates())[2]).toBe('ok');
    expect((await later.get(key))?.value.toString()).toBe('new');
    const listed: string[] = [];
    for await (const k of later.scan?.('v:') ?? []) listed.push(k);
    expect(listed.filter((k) => k.includes('~M'))).toEqual([]);
  });

  it('rejects a replica count outside [1, domains] and a single-domain store', () => {
    const { store } = setup();
    expect(() => store.setReplicas(0)).toThrow(RangeError);
    expect(() => store.setReplicas(DOMAINS + 1)).toThrow(RangeError);
    expect(() => new ReplicatedStore(new MemoryStore(), { sentinelKey: SENTINEL })).toThrow(/several domains/);
  });

  it('property: any m domains down, then restarted empty and resynced, then m others down: every read matches a model', async () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key: fc.integer({ min: 0, max: 11 }), value: fc.string({ maxLength: 8 }) }),
      fc.record({ kind: fc.constant('cas' as const), key: fc.integer({ min: 0, max: 11 }), value: fc.string({ maxLength: 8 }) }),
      fc.record({ kind: fc.constant('create' as const), key: fc.integer({ min: 0, max: 11 }), value: fc.string({ maxLength: 8 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 11 }) }),
    );
    const pair = fc.uniqueArray(fc.integer({ min: 0, max: DOMAINS - 1 }), { minLength: 2, maxLength: 2 });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 25 }), pair, fc.array(op, { maxLength: 25 }), pair, async (ops1, first, ops2, second) => {
        const { store: mount, open, down, plant, wipe, tick } = setup();
        let store = mount;
        await plant();
        const model = new Map<string, string>();
        const apply = async (ops: typeof ops1) => {
          for (const o of ops) {
            const key = `v:i:${o.key}`;
            if (o.kind === 'put') {
              expect((await store.put(key, Buffer.from(o.value))).ok).toBe(true);
              model.set(key, o.value);
            } else if (o.kind === 'create') {
              const done = await store.put(key, Buffer.from(o.value), IF_ABSENT);
              expect(done.ok).toBe(!model.has(key));
              if (done.ok) model.set(key, o.value);
            } else if (o.kind === 'cas') {
              const read = await store.get(key);
              expect(read?.value.toString()).toBe(model.get(key));
              if (!read) continue;
              expect((await store.put(key, Buffer.from(o.value), ifVersion(read.version))).ok).toBe(true);
              model.set(key, o.value);
            } else {
              expect(await store.delete(key)).toBe(model.has(key));
              model.delete(key);
            }
          }
        };
        const check = async () => {
          for (let k = 0; k < 12; k++) expect((await store.get(`v:i:${k}`))?.value.toString()).toBe(model.get(`v:i:${k}`));
        };
        for (const d of first) down.add(d);
        tick();
        await apply(ops1);
        await check();
        // Restarted empty, repaired by fsck (its own client), then read by a fresh mount.
        down.clear();
        await wipe(first);
        const fsck = open();
        for await (const key of fsck.scan?.('v:') ?? []) await fsck.resync(key);
        await fsck.clearMissedMarkers();
        await plant();
        store = open();
        for (const d of second) down.add(d);
        tick();
        await check();
        await apply(ops2);
        await check();
      }),
      { numRuns: 60 },
    );
  });
});
