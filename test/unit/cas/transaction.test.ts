import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/memory-store.js';
import { ContentionError } from '../../../src/cas/retry.js';
import { transact } from '../../../src/cas/transaction.js';

const counter = async (store: MemoryStore, key: string) => Number((await store.get(key))?.value.toString() ?? 0);

describe('transact', () => {
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
