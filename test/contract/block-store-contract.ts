/**
 * The BlockStore contract (src/translators/block-store.ts) as one test suite, run unchanged on
 * every translator stack over every store. A test file calls {@link describeBlockStoreContract}
 * once per stack and store.
 *
 * Every test builds its stack over a view of the store that remembers every key written
 * through it, so the records of one test can be listed exactly (memcached's scan is
 * best-effort) and damaged directly in the store (a flipped byte, a truncated or deleted
 * record), which is how the suite checks that a stack never returns wrong bytes. Refs go
 * through the record codec before every read, as the chunk maps store them.
 */
import { randomBytes } from 'node:crypto';
import { patternBytes } from '../helpers/pattern.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IntegrityError, ValueTooLarge } from '../../src/backends/errors.js';
import type { KvStore, WriteCondition } from '../../src/backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../../src/chunk/record-codec.js';
import { BlockMissing, type BlockContext, type BlockRef, type BlockStore } from '../../src/translators/block-store.js';

/** What the suite expects of a stack. */
export interface ExpectedBlockStore {
  readonly maxBlockBytes: number;
  /** Erasure: a damaged record is rebuilt on read and rewritten by `check(…, true)`. */
  readonly reconstructs: boolean;
  /** Crypt: a block read in another context (file, chunk, volume) fails authentication. */
  readonly bindsContext: boolean;
  /** Records one block of `length` bytes is stored as (erasure: k+m, or m+1 copies when small). */
  recordsPerBlock(length: number): number;
}

export interface BlockStoreSetup {
  /** The store one test runs on (fresh, or a connection to shared servers). Called before every test. */
  openStore(): Promise<KvStore>;
  /** The stack under test over `store`, its block keys starting with `keyPrefix`. */
  stack(store: KvStore, keyPrefix: string): Promise<BlockStore>;
  readonly expected: ExpectedBlockStore;
  /** Time limit of the tests that move maxBlockBytes-sized blocks, ms. Default 120 s. */
  readonly slowTestMs?: number;
}

const CONTEXT: BlockContext = Object.freeze({ volumeId: '5eed0f1e', ino: 4242, chunkIndex: 3 });

/** Bytes that depend on `seed`, so a block read back in place of another shows. */
export function patternedBlock(length: number, seed: number): Buffer {
  return patternBytes(length, (seed * 2654435761) >>> 0);
}

/** `store` seen through a view that adds every key written through it to `written`. */
function recording(store: KvStore, written: Set<string>): KvStore {
  return {
    name: store.name,
    capabilities: store.capabilities,
    get: (key) => store.get(key),
    getMany: (keys) => store.getMany(keys),
    put: (key: string, value: Buffer, condition?: WriteCondition) => {
      written.add(key);
      return store.put(key, value, condition);
    },
    delete: (key, condition) => store.delete(key, condition),
    close: () => store.close(),
  };
}

/** A ref as a chunk map holds it: through MessagePack and back. */
function stored(ref: BlockRef): BlockRef {
  return decodeRecord<BlockRef>('test', encodeRecord(ref));
}

export function describeBlockStoreContract(label: string, setup: BlockStoreSetup): void {
  const { expected } = setup;
  const slow = setup.slowTestMs ?? 120_000;

  describe(`BlockStore contract: ${label}`, () => {
    let store: KvStore;
    let blocks: BlockStore;
    let written: Set<string>;
    let nextId = 0;
    const id = (): string => `t${nextId++}-${randomBytes(4).toString('hex')}`;

    beforeEach(async () => {
      store = await setup.openStore();
      written = new Set();
      blocks = await setup.stack(recording(store, written), `bc:${randomBytes(6).toString('hex')}:b:`);
    });
    afterEach(async () => {
      await store?.close();
    });

    /** Every record of this test's blocks that the store holds, key -> value. */
    async function records(): Promise<Map<string, Buffer>> {
      const keys = [...written].sort();
      const values = await store.getMany(keys);
      const out = new Map<string, Buffer>();
      keys.forEach((key, i) => {
        const found = values[i];
        if (found) out.set(key, found.value);
      });
      return out;
    }

    async function putOne(length: number, seed: number): Promise<{ ref: BlockRef; data: Buffer }> {
      const data = patternedBlock(length, seed);
      const ref = await blocks.put(id(), data, CONTEXT);
      return { ref: stored(ref), data };
    }

    /** Reads `ref`: the original bytes, or an error. Never anything else. */
    async function readOutcome(ref: BlockRef, data: Buffer, context = CONTEXT): Promise<'identical' | Error> {
      try {
        const got = await blocks.get(ref, context);
        if (!got.equals(data)) throw new Error(`block ${ref.id} read back ${got.length} WRONG bytes`);
        return 'identical';
      } catch (err) {
        if (err instanceof Error && err.message.includes('WRONG bytes')) throw err;
        return err as Error;
      }
    }

    it('declares maxBlockBytes', () => {
      expect(blocks.maxBlockBytes).toBe(expected.maxBlockBytes);
    });

    it('round-trips blocks of 0, 1, 4097 and 100000 bytes, each its own', async () => {
      const lengths = [0, 1, 4097, 100_000];
      const written = await Promise.all(lengths.map((n, i) => putOne(n, i + 1)));
      for (const [i, { ref, data }] of written.entries()) {
        expect(ref.length).toBe(lengths[i]);
        expect((await blocks.get(ref, CONTEXT)).equals(data)).toBe(true);
      }
      const expectedRecords = lengths.reduce((sum, n) => sum + expected.recordsPerBlock(n), 0);
      expect((await records()).size).toBe(expectedRecords);
    });

    it(
      'round-trips a block of exactly maxBlockBytes, and refuses one byte more leaving nothing behind',
      async () => {
        const { ref, data } = await putOne(expected.maxBlockBytes, 9);
        expect((await blocks.get(ref, CONTEXT)).equals(data)).toBe(true);
        const before = (await records()).size;
        await expect(blocks.put(id(), Buffer.alloc(expected.maxBlockBytes + 1, 1), CONTEXT)).rejects.toBeInstanceOf(ValueTooLarge);
        expect((await records()).size).toBe(before);
      },
      slow,
    );

    it('stores no record holding the block in clear when it binds context (crypt), and never overwrites an id', async () => {
      const data = Buffer.from('BLOCK-STORE-CONTRACT-MARKER '.repeat(2000));
      const ref = await blocks.put('fixed-id', data, CONTEXT);
      const dump = Buffer.concat([...(await records()).values()]);
      expect(dump.includes(Buffer.from('BLOCK-STORE-CONTRACT-MARKER'))).toBe(!expected.bindsContext);
      await expect(blocks.put('fixed-id', patternedBlock(data.length, 2), CONTEXT)).rejects.toBeInstanceOf(IntegrityError);
      expect((await blocks.get(stored(ref), CONTEXT)).equals(data)).toBe(true);
    });

    it('a block whose records are all gone reads as BlockMissing', async () => {
      const { ref } = await putOne(70_000, 3);
      for (const key of (await records()).keys()) await store.delete(key);
      await expect(blocks.get(ref, CONTEXT)).rejects.toBeInstanceOf(BlockMissing);
      const health = await blocks.check(ref, CONTEXT, true);
      expect(health).toMatchObject({ readable: false, repaired: 0 });
      expect(health.damaged).toBeGreaterThan(0);
    });

    for (const length of [5_000, 300_000]) {
      it(`a flipped byte in one record of a ${length}-byte block is ${expected.reconstructs ? 'rebuilt' : 'an IntegrityError'}, never wrong bytes`, async () => {
        const { ref, data } = await putOne(length, 4);
        const [key, value] = [...(await records())][0];
        const damaged = Buffer.from(value);
        damaged[damaged.length >> 1] ^= 0x01;
        await store.put(key, damaged);
        const outcome = await readOutcome(ref, data);
        if (expected.reconstructs) expect(outcome).toBe('identical');
        else expect(outcome).toBeInstanceOf(IntegrityError);
      });
    }

    it(`a truncated record is ${expected.reconstructs ? 'rebuilt' : 'an IntegrityError'}`, async () => {
      const { ref, data } = await putOne(200_000, 5);
      const [key, value] = [...(await records())][0];
      await store.put(key, value.subarray(0, value.length - 1));
      const outcome = await readOutcome(ref, data);
      if (expected.reconstructs) expect(outcome).toBe('identical');
      else expect(outcome).toBeInstanceOf(IntegrityError);
    });

    it('every record damaged: IntegrityError, never wrong bytes', async () => {
      const { ref, data } = await putOne(150_000, 6);
      for (const [key, value] of await records()) {
        const damaged = Buffer.from(value);
        damaged[7] ^= 0x80;
        await store.put(key, damaged);
      }
      expect(await readOutcome(ref, data)).toBeInstanceOf(IntegrityError);
    });

    it(`a block read in another context ${expected.bindsContext ? 'fails authentication' : 'reads the same bytes (no binding)'}`, async () => {
      const { ref, data } = await putOne(40_000, 7);
      for (const other of [{ ino: CONTEXT.ino + 1 }, { chunkIndex: CONTEXT.chunkIndex + 1 }, { volumeId: 'another' }]) {
        const outcome = await readOutcome(ref, data, { ...CONTEXT, ...other });
        if (expected.bindsContext) expect(outcome).toBeInstanceOf(IntegrityError);
        else expect(outcome).toBe('identical');
      }
    });

    it('delete removes every record, is idempotent, and the block then reads as BlockMissing', async () => {
      const kept = await putOne(30_000, 8);
      const { ref } = await putOne(250_000, 9);
      const before = (await records()).size;
      await blocks.delete(ref);
      expect((await records()).size).toBe(before - expected.recordsPerBlock(250_000));
      await blocks.delete(ref);
      await expect(blocks.get(ref, CONTEXT)).rejects.toBeInstanceOf(BlockMissing);
      expect((await blocks.get(kept.ref, CONTEXT)).equals(kept.data)).toBe(true);
    });

    it('check: a healthy block is readable and undamaged', async () => {
      const { ref } = await putOne(120_000, 10);
      expect(await blocks.check(ref, CONTEXT, false)).toEqual({ readable: true, damaged: 0, repaired: 0 });
      expect(await blocks.check(ref, CONTEXT, true)).toEqual({ readable: true, damaged: 0, repaired: 0 });
    });

    it(`check: one missing and one corrupt record are ${expected.reconstructs ? 'rewritten byte-identically on repair' : 'reported unreadable'}`, async () => {
      const { ref, data } = await putOne(260_000, 11);
      const original = await records();
      const keys = [...original.keys()];
      await store.delete(keys[0]);
      if (expected.reconstructs) {
        const damaged = Buffer.from(original.get(keys[1]) as Buffer);
        damaged[0] ^= 0xff;
        await store.put(keys[1], damaged);
      }
      const broken = expected.reconstructs ? 2 : 1;
      expect(await blocks.check(ref, CONTEXT, false)).toEqual({ readable: expected.reconstructs, damaged: broken, repaired: 0 });
      if (!expected.reconstructs) {
        expect(await blocks.check(ref, CONTEXT, true)).toEqual({ readable: false, damaged: 1, repaired: 0 });
        return;
      }
      expect(await blocks.check(ref, CONTEXT, true)).toEqual({ readable: true, damaged: 2, repaired: 2 });
      expect(await blocks.check(ref, CONTEXT, false)).toEqual({ readable: true, damaged: 0, repaired: 0 });
      const repaired = await records();
      expect([...repaired.keys()].sort()).toEqual([...keys].sort());
      for (const key of keys) expect(repaired.get(key)?.equals(original.get(key) as Buffer), key).toBe(true);
      expect((await blocks.get(ref, CONTEXT)).equals(data)).toBe(true);
    });

    it('32 blocks written and read concurrently each come back as written', async () => {
      const written = await Promise.all(Array.from({ length: 32 }, (_v, i) => putOne(1000 + i * 9000, 100 + i)));
      const read = await Promise.all(written.map(({ ref }) => blocks.get(ref, CONTEXT)));
      read.forEach((got, i) => expect(got.equals(written[i].data), `block ${i}`).toBe(true));
    });
  });
}
