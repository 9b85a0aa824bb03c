/**
 * FileData recycles the memory of evicted blocks for later reads. With a cache of a few blocks,
 * random rewrites (including composes that keep part of the old block, as truncate does) and
 * bursts of concurrent reads must always see exactly the bytes a model says.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { FileData } from '../../../src/chunk/file-data.js';
import { WriteBuffer } from '../../../src/chunk/write-buffer.js';
import { RecordCache } from '../../../src/cas/record-cache.js';
import { RawBlockStore } from '../../../src/translators/raw-block-store.js';
import { testRuns } from '../../helpers/property-runs.js';

const CHUNK = 4096;
const CHUNKS = 10;
const INO = 7;

type Op =
  | { kind: 'write'; chunk: number; offset: number; length: number; byte: number }
  | { kind: 'cut'; chunk: number; keep: number }
  | { kind: 'read'; chunks: number[] };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    chunk: fc.nat(CHUNKS - 1),
    offset: fc.nat(CHUNK - 1),
    length: fc.integer({ min: 1, max: CHUNK }),
    byte: fc.nat(255),
  }),
  fc.record({ kind: fc.constant('cut' as const), chunk: fc.nat(CHUNKS - 1), keep: fc.nat(CHUNK) }),
  fc.record({ kind: fc.constant('read' as const), chunks: fc.array(fc.nat(CHUNKS - 1), { minLength: 1, maxLength: 12 }) }),
);

/** Blocks only (inline 0), or chunks of up to half a chunk kept inline in their map record. */
function makeFileData(store: MemoryStore, inlineMaxBytes = 0): FileData {
  return new FileData({
    inlineMaxBytes,
    store,
    cache: new RecordCache(),
    blocks: new RawBlockStore(store, 'v:b:', { checksum: true }),
    chunkKey: (ino, i) => `v:c:${ino}:${i}`,
    indexKey: (ino, level, group) => `v:x:${ino}:${level}:${group}`,
    volumeId: 'v',
    chunkSize: CHUNK,
    blockCacheBytes: 2 * CHUNK,
    pooledBlocks: 2,
    retire: () => undefined,
  });
}

/** The chunk's bytes as a reader copies them: without awaiting between getting and copying. */
async function readChunk(data: FileData, chunk: number): Promise<Buffer | undefined> {
  const ref = await data.chunkRef(INO, chunk);
  if (!ref) return undefined;
  const block = data.cachedChunk(ref, INO, chunk) ?? (await data.readChunk(ref, INO, chunk));
  return Buffer.from(block);
}

const macrotask = () => new Promise((resolve) => setImmediate(resolve));

describe('FileData with recycled block memory', () => {
  it('a block cut from a recycled one (truncate) keeps its bytes when that memory is reused', async () => {
    const store = new MemoryStore();
    const data = new FileData({
      store,
      cache: new RecordCache(),
      blocks: new RawBlockStore(store, 'v:b:'),
      chunkKey: (ino, i) => `v:c:${ino}:${i}`,
      indexKey: (ino, level, group) => `v:x:${ino}:${level}:${group}`,
      volumeId: 'v',
      chunkSize: CHUNK,
      blockCacheBytes: 3 * CHUNK,
      inlineMaxBytes: 0,
      retire: () => undefined,
    });
    for (let c = 0; c < 4; c++) await data.rewriteChunk(INO, c, () => Buffer.alloc(CHUNK, 0x10 + c));
    // Chunk 0 comes back from the store into recycled memory, then is cut as truncate does.
    expect((await readChunk(data, 0))?.[0]).toBe(0x10);
    await data.rewriteChunk(INO, 0, (current) => (current ?? Buffer.alloc(0)).subarray(0, 100));
    const cut = Buffer.alloc(100, 0x10);
    expect((await readChunk(data, 0))?.equals(cut)).toBe(true);
    // Evict the old block of chunk 0 while its cut successor stays cached, let its memory be
    // reused by another read, then read chunk 0 again.
    await readChunk(data, 1);
    await readChunk(data, 2);
    await macrotask();
    expect((await readChunk(data, 0))?.equals(cut)).toBe(true);
    expect((await readChunk(data, 3))?.equals(Buffer.alloc(CHUNK, 0x13))).toBe(true);
    expect((await readChunk(data, 0))?.equals(cut)).toBe(true);
  });

  it('chunks written through the write buffer, in recycled memory, read back after evictions and rewrites', async () => {
    const data = makeFileData(new MemoryStore());
    const buffer = new WriteBuffer(data, INO);
    const content = (round: number, c: number) => Buffer.alloc(CHUNK, (round * 31 + c) & 0xff);
    for (let round = 0; round < 4; round++) {
      for (let c = 0; c < CHUNKS; c++) await buffer.write(c * CHUNK, content(round, c));
      await buffer.flush();
      await macrotask();
      for (let c = CHUNKS - 1; c >= 0; c--) {
        expect((await readChunk(data, c))?.equals(content(round, c)), `round ${round} chunk ${c}`).toBe(true);
        await macrotask();
      }
    }
  });

  it.each([
    ['blocks only', 0],
    ['small chunks inline', CHUNK / 2],
  ])('reads back what the model holds through evictions, rewrites and concurrent reads (%s)', async (_, inlineMaxBytes) => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 60 }), async (ops) => {
        const store = new MemoryStore();
        const data = makeFileData(store, inlineMaxBytes);
        const model = new Map<number, Buffer>();
        for (const op of ops) {
          if (op.kind === 'write') {
            const end = Math.min(CHUNK, op.offset + op.length);
            await data.rewriteChunk(INO, op.chunk, (current) => {
              const next = Buffer.alloc(Math.max(end, current?.length ?? 0));
              current?.copy(next);
              next.fill(op.byte, op.offset, end);
              return next;
            });
            const before = model.get(op.chunk) ?? Buffer.alloc(0);
            const after = Buffer.alloc(Math.max(end, before.length));
            before.copy(after);
            after.fill(op.byte, op.offset, end);
            model.set(op.chunk, after);
          } else if (op.kind === 'cut') {
            if (!model.has(op.chunk)) continue;
            // Like truncate: the new block is a view of the old one.
            await data.rewriteChunk(INO, op.chunk, (current) => (current ?? Buffer.alloc(0)).subarray(0, op.keep));
            model.set(op.chunk, (model.get(op.chunk) ?? Buffer.alloc(0)).subarray(0, op.keep));
          } else {
            const got = await Promise.all(op.chunks.map((c) => readChunk(data, c)));
            op.chunks.forEach((c, i) => {
              const want = model.get(c);
              if (want === undefined) expect(got[i], `chunk ${c}`).toBeUndefined();
              else expect(got[i]?.equals(want), `chunk ${c}`).toBe(true);
            });
          }
          // Let recycled memory come back into use between operations.
          await macrotask();
        }
        for (const [c, want] of model) expect((await readChunk(data, c))?.equals(want), `final chunk ${c}`).toBe(true);
      }),
      { numRuns: testRuns(150) },
    );
  });
});

describe('FileData block cache memory', () => {
  it('holds a small block in memory of its own size, not a pooled chunk buffer (its bound is memory)', async () => {
    const chunk = 1 << 20;
    const store = new MemoryStore();
    const data = new FileData(dataOptionsOf(store, chunk));
    // Written through a write buffer (pooled memory), then read back after a fresh fetch.
    for (let ino = 1; ino <= 20; ino++) {
      const buffer = new WriteBuffer(data, ino);
      await buffer.write(0, Buffer.alloc(20_000, ino));
      await buffer.flush();
    }
    const reader = new FileData(dataOptionsOf(store, chunk));
    for (let ino = 1; ino <= 20; ino++) {
      for (const source of [data, reader]) {
        const ref = await source.chunkRef(ino, 0);
        const cached = ref && ((source === reader && (await source.readChunk(ref, ino, 0))) || source.cachedChunk(ref, ino, 0));
        expect(cached?.equals(Buffer.alloc(20_000, ino))).toBe(true);
        // A pooled buffer is a whole chunk: 20 blocks would hold 20 MiB while counted as 400 kB.
        expect(cached!.buffer.byteLength).toBeLessThan(2 * 20_000);
      }
    }
  });
});

function dataOptionsOf(store: MemoryStore, chunk: number) {
  return {
    inlineMaxBytes: 0,
    store,
    cache: new RecordCache(),
    blocks: new RawBlockStore(store, 'v:b:', { checksum: true }),
    chunkKey: (ino: number, i: number) => `v:c:${ino}:${i}`,
    indexKey: (ino: number, level: number, group: number) => `v:x:${ino}:${level}:${group}`,
    volumeId: 'v',
    chunkSize: chunk,
    blockCacheBytes: 64 * chunk,
    pooledBlocks: 2,
    retire: () => undefined,
  };
}
