/**
 * The chunk index (src/chunk/chunk-index.ts) on a real store: what truncate, delete, fsck and
 * seeks enumerate instead of every chunk index up to a file's size. It uses get, getMany and
 * transactions (native commits, or intent records on stores without them), so each backend's
 * test file runs this next to the KvStore contract, on the same servers.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KvStore } from '../../src/backends/kv-store.js';
import { withAtomicCommit } from '../../src/cas/intent-store.js';
import { transact } from '../../src/cas/transaction.js';
import { ChunkIndex, GROUP_CHUNKS } from '../../src/chunk/chunk-index.js';

const TEST_MS = 60_000;

export function describeChunkIndexContract(label: string, open: () => Promise<KvStore>): void {
  describe(`chunk index: ${label}`, () => {
    let raw: KvStore;
    let store: KvStore;
    let index: ChunkIndex;
    let prefix: string;
    const ino = 7;
    const chunkKey = (i: number) => `${prefix}c:${ino}:${i}`;

    beforeEach(async () => {
      prefix = `ci:${randomBytes(6).toString('hex')}:`;
      raw = await open();
      store = withAtomicCommit(raw);
      index = new ChunkIndex({
        store,
        indexKey: (n, level, group) => `${prefix}x:${n}:${level}:${group}`,
        chunkKey: (_n, i) => chunkKey(i),
        transact: (body) => transact(store, undefined, body),
      });
    });
    afterEach(async () => {
      await store.close();
      if (store !== raw) await raw.close();
    });

    /** Creates a chunk map as FileData does: in the transaction that names it in the index. */
    const createChunk = (i: number) =>
      transact(store, undefined, async (tx) => {
        if (!(await tx.read(chunkKey(i)))) await index.stageCreate(tx, ino, i);
        tx.write(chunkKey(i), Buffer.from(`chunk ${i}`));
      });
    const deleteChunk = (i: number) =>
      transact(store, undefined, async (tx) => {
        if (await tx.read(chunkKey(i))) tx.remove(chunkKey(i));
      });
    const listed = async (from = 0) => {
      const out: number[] = [];
      for await (const batch of index.presentChunks(ino, from)) out.push(...batch);
      return out;
    };

    it('names chunk maps created far apart, in order, and forgets groups whose chunks are gone', async () => {
      const chunks = [5, GROUP_CHUNKS, GROUP_CHUNKS + 9, 1_000_000, 2 ** 33 + 3, 2 ** 41];
      for (const i of chunks) await createChunk(i);
      expect(await listed()).toEqual(chunks);
      expect(await listed(GROUP_CHUNKS + 1)).toEqual(chunks.slice(2));
      expect(await listed(2 ** 41)).toEqual([2 ** 41]);
      // Three levels of records for each far group, shared where the groups share a parent.
      expect((await index.recordKeys(ino)).length).toBeGreaterThanOrEqual(3);
      for (const i of chunks.slice(3)) await deleteChunk(i);
      await index.clearFrom(ino, 1_000_000);
      expect(await listed()).toEqual(chunks.slice(0, 3));
      for (const i of chunks.slice(1, 3)) await deleteChunk(i);
      await index.clearFrom(ino, GROUP_CHUNKS);
      // The first group is never indexed: nothing is left once the far chunks are gone.
      expect(await index.recordKeys(ino)).toEqual([]);
      expect(await listed()).toEqual([5]);
    }, TEST_MS);

    it('a chunk map created while its group is being cleared stays named', async () => {
      for (let round = 0; round < 8; round++) {
        const base = (round + 1) * 10 * GROUP_CHUNKS;
        await createChunk(base);
        // One client empties the group and clears it; another creates a chunk in it meanwhile.
        await Promise.all([deleteChunk(base).then(() => index.clearFrom(ino, base)), createChunk(base + 1)]);
        expect(await listed(base)).toEqual([base + 1]);
      }
    }, TEST_MS);
  });
}
