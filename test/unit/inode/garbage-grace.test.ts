/** Garbage records wait out their grace on one timer, however many there are, then go. */
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { join } from 'node:path';
import type { KvStore } from '../../../src/backends/kv-store.js';
import { LmdbStore } from '../../../src/backends/lmdb/index.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { GarbageCollector } from '../../../src/inode/garbage.js';
import { VolumeKeys } from '../../../src/inode/keys.js';
import type { GarbageRecord } from '../../../src/inode/records.js';
import { encodeRecord } from '../../../src/chunk/record-codec.js';
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
    const grace = 300;
    // Records a mount that is gone left behind: due long ago, due now, and due in a minute.
    const write = async (count: number, notBefore: number, from: number) => {
      const written: string[] = [];
      for (let ino = from; ino < from + count; ino++) {
        const key = keys.garbage(`left-${notBefore}-${ino}`);
        await store.put(key, encodeRecord({ notBefore, inodes: [{ ino, size: 0 }] } satisfies GarbageRecord));
        written.push(key);
      }
      return written;
    };
    const overdue = await write(300, Date.now() - 10 * grace, 10);
    const dueNow = await write(20, Date.now(), 1000);
    const later = await write(20, Date.now() + 60_000, 2000);
    const left = async (written: string[]) => (await store.getMany(written)).filter(Boolean).length;

    const sweeper = new GarbageCollector({ store, keys, blocks, log: quiet, graceMs: grace });
    sweeper.sweepLeftBehind();
    for (let waited = 0; waited < 10_000 && (await left([...overdue, ...dueNow])) > 0; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await left(overdue)).toBe(0);
    // Due now: taken a grace later, by the sweep that runs again then.
    expect(await left(dueNow)).toBe(0);
    // Not due for a minute: a mount that is still there may yet collect it.
    expect(await left(later)).toBe(20);
    const sweptAgain = new GarbageCollector({ store, keys, blocks, log: quiet, graceMs: grace });
    await sweeper.close();
    sweptAgain.sweepLeftBehind();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await left(later)).toBe(20);
    await sweptAgain.close();
    await done();
  });
});
