/** Garbage records wait out their grace on one timer, however many there are, then go. */
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import type { KvStore } from '../../../src/backends/kv-store.js';
import { LmdbStore } from '../../../src/backends/lmdb/index.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { GarbageCollector } from '../../../src/inode/garbage.js';
import { VolumeKeys } from '../../../src/inode/keys.js';
import type { BlockStore } from '../../../src/translators/block-store.js';
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.js';

describe('GarbageCollector grace', () => {
  it('keeps 2,000 dead inodes waiting on one timer, and collects every one after the grace', async () => {
    const store = new MemoryStore();
    const keys = new VolumeKeys('v:');
    const blocks = { delete: async () => undefined } as unknown as BlockStore;
    const gc = new GarbageCollector({ store, keys, blocks, log: pino({ level: 'silent' }), graceMs: 200 });
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const written: string[] = [];
    for (let ino = 10; ino < 2010; ino++) {
      const { key, value } = gc.deadInodeRecord(ino, 0);
      await store.put(key, value);
      written.push(key);
    }
    expect(timers.mock.calls.length).toBeLessThanOrEqual(1);
    timers.mockRestore();
    for (let waited = 0; waited < 10_000; waited += 50) {
      if ((await store.getMany(written)).every((found) => found === undefined)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect((await store.getMany(written)).filter(Boolean)).toHaveLength(0);
    await gc.close();
  });
});

describe('garbage left behind by a mount that is gone', () => {
  const quiet = pino({ level: 'silent' });
  const blocks = { delete: async () => undefined } as unknown as BlockStore;

  /** LMDB too: its range scan skips keys deleted while it runs, so the sweep lists them first. */
  it.each([
    ['the memory store', async () => ({ store: new MemoryStore() as KvStore, done: async () => undefined })],
    [
      'LMDB',
      async () => {
        const dir = await makeTempDir('garbage-sweep');
        const store = await LmdbStore.open({ path: join(dir, 'store') });
        return { store: store as KvStore, done: async () => (await store.close(), await removeTempDir(dir)) };
      },
    ],
  ])('is collected by a later mount once overdue by a grace, and not before, on %s', async (_name, open) => {
    const { store, done } = await open();
    const keys = new VolumeKeys('v:');
    // The mount that deleted the files closed within their grace: its records stay.
    const gone = new GarbageCollector({ store, keys, blocks, log: quiet, graceMs: 300 });
    const written: string[] = [];
    for (let ino = 10; ino < 310; ino++) {
      const { key, value } = gone.deadInodeRecord(ino, 0);
      await store.put(key, value);
      written.push(key);
    }
    await gone.close();
    const left = async () => (await store.getMany(written)).filter(Boolean).length;
    expect(await left()).toBe(300);

    const later = new GarbageCollector({ store, keys, blocks, log: quiet, graceMs: 300 });
    later.sweepLeftBehind();
    // Not overdue yet (due at 300 ms, taken by others at 600 ms): still there at 250 ms.
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await left()).toBe(300);
    for (let waited = 0; waited < 10_000 && (await left()) > 0; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await left()).toBe(0);
    await later.close();
    await done();
  });
});
