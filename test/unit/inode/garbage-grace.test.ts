/** Garbage records wait out their grace on one timer, however many there are, then go. */
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { GarbageCollector } from '../../../src/inode/garbage.js';
import { VolumeKeys } from '../../../src/inode/keys.js';
import type { BlockStore } from '../../../src/translators/block-store.js';

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
