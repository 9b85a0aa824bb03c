import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

describe('a directory of 100,000 entries', () => {
  it('spreads over many small records, lists every name and finds any of them', async () => {
    const store = new MemoryStore();
    const fs = new FileSystem(await Volume.open({ store, log: pino({ level: 'silent' }), prefix: 'big:' }));
    const dir = await fs.mkdir('/d', 0o755, { uid: 0, gid: 0 });
    const count = 100_000;
    for (let i = 0; i < count; i++) await fs.namespace.create(dir, `entry-${i}.txt`, S_IFREG | 0o644, { uid: 0, gid: 0 });

    const names = new Set((await fs.readdir(dir)).map(([name]) => name));
    expect(names.size).toBe(count);
    for (const i of [0, 1, 4242, 77_777, count - 1]) {
      expect(names.has(`entry-${i}.txt`)).toBe(true);
      expect(await fs.namespace.lookup(dir, `entry-${i}.txt`)).toBeDefined();
    }

    const keys: string[] = [];
    for await (const key of store.scan(`big:d:${dir}:`)) keys.push(key);
    const sizes = (await store.getMany(keys)).map((v) => v!.value.length);
    expect(keys.length).toBeGreaterThan(100);
    // No record anywhere near a 1 MB item limit: every one stays a small fraction of it.
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    await fs.close();
  }, 300_000);
});
