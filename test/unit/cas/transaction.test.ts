import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/memory-store.js';
import { ContentionError } from '../../../src/cas/retry.js';
import { RecordCache } from '../../../src/cas/record-cache.js';
import { SharedStore } from '../../helpers/intent-fixture.js';
import { transact } from '../../../src/cas/transaction.js';

const counter = async (store: MemoryStore, key: string) => Number((await store.get(key))?.value.toString() ?? 0);

describe('transact', () => {
  it('keeps what a multi-key commit wrote in the record cache at its new version, so the next read asks no store', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const cache = new RecordCache({ ttlMs: 60_000 });
    await transact(store, cache, async (tx) => {
      tx.write('a', Buffer.from('1'));
      tx.write('b', Buffer.from('2'));
    });
    const gets: string[] = [];
    const get = store.get.bind(store);
    store.get = (key) => {
      gets.push(key);
      return get(key);
    };
    await transact(store, cache, async (tx) => {
      const a = Number((await tx.read('a'))?.toString());
      tx.write('a', Buffer.from(String(a + 1)));
      tx.write('b', Buffer.from(String(a + 2)));
    });
    expect(gets).toEqual([]);
    expect((await get('a'))?.value.toString()).toBe('2');
    expect(cache.get('a')?.version).toBe((await get('a'))?.version);
    expect((await get('b'))?.value.toString()).toBe('3');
  });

  it('redoes the body after another writer changed what it read, and loses neither update', async () => {
    const store = new MemoryStore();
    let runs = 0;
    await transact(store, undefined, async (tx) => {
      runs++;
      const n = Number((await tx.read('n'))?.toString() ?? 0);
      // Another client commits between this body's read and its commit, once.
      if (runs === 1) await store.put('n', Buffer.from('10'));
      tx.write('n', Buffer.from(String(n + 1)));
    });
    expect(runs).toBe(2);
    expect(await counter(store, 'n')).toBe(11);
  });

  it('counts a read that gave up on contention as a conflict and runs the body again', async () => {
    const store = new MemoryStore();
    let runs = 0;
    const result = await transact(store, undefined, async (tx) => {
      runs++;
      if (runs < 3) throw new ContentionError('read gave up: its lock keeps changing');
      tx.write('k', Buffer.from('v'));
      return 'done';
    });
    expect(result).toBe('done');
    expect(runs).toBe(3);
  });

  it('gives up with a ContentionError once its budget is spent, after many attempts rather than a fixed few', async () => {
    const store = new MemoryStore();
    let runs = 0;
    const started = Date.now();
    const err = await transact(
      store,
      undefined,
      async (tx) => {
        runs++;
        await tx.read('hot');
        await store.put('hot', Buffer.from(String(runs)));
        tx.write('hot', Buffer.from('mine'));
      },
      { budgetMs: 300, maxDelayMs: 5 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContentionError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(runs).toBeGreaterThan(10);
    expect((await store.get('hot'))?.value.toString()).toBe(String(runs));
  });

  it('passes other errors of the body through at once', async () => {
    const store = new MemoryStore();
    let runs = 0;
    await expect(
      transact(store, undefined, async () => {
        runs++;
        throw new RangeError('bad argument');
      }),
    ).rejects.toThrow(RangeError);
    expect(runs).toBe(1);
  });
});
