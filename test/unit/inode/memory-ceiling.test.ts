/**
 * A mount's memory has a ceiling (VOLDFS_MEMORY_MB): write-back buffers of all open files share
 * one bound and writers wait for stores beyond it, the record cache is bounded in bytes, and a
 * burst of replaced blocks is written out as garbage records of bounded size.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryData, MemoryStore } from '../../../src/backends/memory/index.js';
import { RecordCache } from '../../../src/cas/record-cache.js';
import { decodeRecord } from '../../../src/chunk/record-codec.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { MAX_BLOCKS_PER_RECORD } from '../../../src/inode/garbage.js';
import { shareMemory } from '../../../src/inode/memory-ceiling.js';
import { ROOT_INO, S_IFREG, type GarbageRecord } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const O_RDWR = 2;
const MiB = 1024 * 1024;

describe('memory ceiling', () => {
  it('shares a ceiling out: half block cache, a quarter write-back, an eighth pool, a sixteenth records', () => {
    expect(shareMemory(512 * MiB, MiB)).toEqual({
      blockCacheBytes: 256 * MiB,
      pooledBlocks: 64,
      writeBufferBytes: 128 * MiB,
      recordCacheBytes: 32 * MiB,
    });
  });

  it('write-back of many open files with partial chunks stays under the shared bound, and nothing is lost', async () => {
    const store = new MemoryStore();
    // 16 MiB: write-back may hold 4 MiB of chunks.
    const fs = new FileSystem(await Volume.open({ store, log, prefix: 'm:', memoryBytes: 16 * MiB }));
    const memory = fs.volume.data.writeMemory;
    const chunkSize = fs.volume.data.chunkSize;
    expect(memory.maxChunks).toBe((4 * MiB) / chunkSize);
    const files: { ino: number; fh: number }[] = [];
    for (let f = 0; f < memory.maxChunks + 2; f++) {
      const ino = await fs.namespace.create(ROOT_INO, `f${f}`, S_IFREG | 0o644, root);
      files.push({ ino, fh: await fs.files.open(ino, O_RDWR) });
    }
    let highest = 0;
    // Each write starts a partial chunk, which would wait for close without the shared bound.
    for (let chunk = 0; chunk < 5; chunk++) {
      for (const [f, { fh }] of files.entries()) {
        await fs.files.write(fh, chunk * chunkSize + 7, Buffer.from(`f${f}c${chunk}`));
        highest = Math.max(highest, memory.chunks);
      }
    }
    expect(highest).toBeLessThanOrEqual(memory.maxChunks);
    for (const { fh } of files) await fs.files.release(fh);
    expect(memory.chunks).toBe(0);
    for (const [f, { ino }] of files.entries()) {
      const fh = await fs.files.open(ino, 0);
      for (let chunk = 0; chunk < 5; chunk++) {
        const buf = Buffer.alloc(4);
        await fs.files.read(fh, chunk * chunkSize + 7, 4, buf);
        expect(buf.toString()).toBe(`f${f}c${chunk}`);
      }
      await fs.files.release(fh);
    }
    await fs.close();
  });

  it('the record cache keeps at most its bytes, whatever the number of records', () => {
    const cache = new RecordCache({ maxBytes: 100 * 1024, maxEntries: 1_000_000, ttlMs: 60_000 });
    for (let i = 0; i < 1000; i++) cache.set(`k${i}`, { value: Buffer.alloc(10 * 1024), version: 'v' });
    let kept = 0;
    for (let i = 0; i < 1000; i++) if (cache.get(`k${i}`)) kept++;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(10);
    expect(cache.get('k999')).toBeDefined();
  });

  it('a burst of replaced blocks is written out in garbage records of at most MAX_BLOCKS_PER_RECORD blocks', async () => {
    const data = new MemoryData();
    const volume = await Volume.open({ store: new MemoryStore({ data }), log, prefix: 'g:' });
    const refs = Array.from({ length: 2 * MAX_BLOCKS_PER_RECORD + 5 }, (_, i) => ({ id: `b${i}`, length: 1 }));
    volume.garbage.retire(refs);
    await volume.close();
    const records = [...data.keys()].filter((k) => k.startsWith('g:g:')).map((k) => decodeRecord<GarbageRecord>(k, data.get(k)?.value ?? Buffer.alloc(0)));
    expect(records.map((r) => r.blocks?.length).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([5, MAX_BLOCKS_PER_RECORD, MAX_BLOCKS_PER_RECORD]);
  });
});
