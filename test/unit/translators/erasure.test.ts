import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ConfigError, IntegrityError, StoreFull, StoreTimeout, StoreUnavailable } from '../../../src/backends/errors.js';
import { MemoryStore, type OperationCall } from '../../../src/backends/memory/index.js';
import { BlockMissing, type BlockRef } from '../../../src/translators/block-store.js';
import { createCodec, RONOMON_CODEC_ID } from '../../../src/translators/erasure/codec.js';
import { ErasureBlockStore } from '../../../src/translators/erasure/erasure-block-store.js';
import type { ErasureDetail } from '../../../src/translators/erasure/erasure-detail.js';
import { RawBlockStore } from '../../../src/translators/raw-block-store.js';
import { BLOCK_PREFIX, bytes, context, fingerprint, records } from './fixtures.js';

const K = 4;
const M = 2;
const N = K + M;
const SIZE = 100_003; // not a multiple of k or of the alignment: exercises padding

function setup(options: { domains?: number; replicateBelow?: number; hook?: (call: OperationCall) => void } = {}) {
  const store = new MemoryStore({ maxValueBytes: 64 * 1024, domains: options.domains, beforeOperation: options.hook });
  const raw = new RawBlockStore(store, BLOCK_PREFIX);
  const blocks = new ErasureBlockStore(raw, {
    codec: createCodec(RONOMON_CODEC_ID, K, M),
    replicateBelow: options.replicateBelow ?? 0,
  });
  return { store, blocks };
}

async function writeOne(blocks: ErasureBlockStore, length = SIZE, id = 'blk1') {
  const data = bytes(length, 7);
  const ref = await blocks.put(id, data, context());
  return { data, ref };
}

/** The record key of fragment i, in the order of the ref. */
async function fragmentKeys(store: MemoryStore): Promise<string[]> {
  const keys = [...(await records(store, BLOCK_PREFIX)).keys()];
  return keys.sort((a, b) => fragmentIndex(a) - fragmentIndex(b));
}
const fragmentIndex = (key: string) => Number(/\.(\d+)(@\d+)?$/.exec(key)![1]);

function combinations(n: number, r: number): number[][] {
  if (r === 0) return [[]];
  const out: number[][] = [];
  for (let first = 0; first <= n - r; first++) {
    for (const rest of combinations(n - first - 1, r - 1)) out.push([first, ...rest.map((i) => i + first + 1)]);
  }
  return out;
}

async function corrupt(store: MemoryStore, key: string) {
  const value = (await store.get(key))!.value;
  value[value.length >> 1] ^= 0x40;
  await store.put(key, value);
}

describe('erasure block store (4+2, ronomon-rs6)', () => {
  it('stores k+m fragments of ceil(len/k) bytes rounded to 8, and reads the block back', async () => {
    const { store, blocks } = setup();
    const { data, ref } = await writeOne(blocks);
    const keys = await fragmentKeys(store);
    expect(keys).toEqual(Array.from({ length: N }, (_, i) => `${BLOCK_PREFIX}blk1.${i}`));
    const detail = ref.detail as ErasureDetail;
    expect(detail.layout).toBe('rs');
    expect(detail.fragmentBytes).toBe(25_008);
    expect(detail.ids).toBeUndefined();
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
  });

  it('survives the loss of every combination of m fragments', async () => {
    const combos = [...combinations(N, 1), ...combinations(N, 2)];
    expect(combos).toHaveLength(6 + 15);
    for (const lost of combos) {
      const { store, blocks } = setup();
      const { data, ref } = await writeOne(blocks);
      const keys = await fragmentKeys(store);
      for (const i of lost) await store.delete(keys[i]);
      expect((await blocks.get(ref, context())).equals(data), `lost ${lost}`).toBe(true);
    }
  });

  it('survives corruption of every combination of m fragments, and a mix of lost and corrupt', async () => {
    for (const bad of combinations(N, 2)) {
      const { store, blocks } = setup();
      const { data, ref } = await writeOne(blocks);
      const keys = await fragmentKeys(store);
      await corrupt(store, keys[bad[0]]);
      await corrupt(store, keys[bad[1]]);
      expect((await blocks.get(ref, context())).equals(data), `corrupt ${bad}`).toBe(true);

      const mixed = setup();
      const second = await writeOne(mixed.blocks);
      const mixedKeys = await fragmentKeys(mixed.store);
      await mixed.store.delete(mixedKeys[bad[0]]);
      await mixed.store.put(mixedKeys[bad[1]], Buffer.from('short')); // wrong length
      expect((await mixed.blocks.get(second.ref, context())).equals(second.data)).toBe(true);
    }
  });

  it('refuses to read with m+1 fragments lost or corrupt, never returning bytes', async () => {
    expect(combinations(N, 3)).toHaveLength(20);
    for (const lost of combinations(N, 3)) {
      const { store, blocks } = setup();
      const { ref } = await writeOne(blocks);
      const keys = await fragmentKeys(store);
      for (const i of lost) await store.delete(keys[i]);
      await expect(blocks.get(ref, context()), `lost ${lost}`).rejects.toThrow(IntegrityError);
      await store.put(keys[lost[2]], Buffer.alloc(25_008));
      await expect(blocks.get(ref, context()), `lost/corrupt ${lost}`).rejects.toThrow(IntegrityError);
    }
    const { store, blocks } = setup();
    const { ref } = await writeOne(blocks);
    const keys = await fragmentKeys(store);
    for (const i of [0, 3, 5]) await store.delete(keys[i]);
    await expect(blocks.get(ref, context())).rejects.toThrow(/cannot be rebuilt: 3 intact fragments of 6 read, 4 needed/);
    for (const key of keys) await store.delete(key);
    await expect(blocks.get(ref, context())).rejects.toThrow(BlockMissing);
  });

  it('reads only the k data fragments when they are healthy, and parity only when one is not', async () => {
    const gets: string[] = [];
    const { store, blocks } = setup({ hook: (call) => void (call.op === 'get' && gets.push(...call.keys)) });
    const { data, ref } = await writeOne(blocks);
    const keys = await fragmentKeys(store);
    await store.delete(keys[5]); // a parity fragment: not needed for a healthy read
    gets.length = 0;
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    expect(gets.sort()).toEqual(keys.slice(0, K));
    await store.delete(keys[1]);
    gets.length = 0;
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    expect(gets.sort()).toEqual(keys);
  });

  it('repairs missing and corrupt fragments byte-identically under the same keys', async () => {
    for (const bad of combinations(N, 2)) {
      const { store, blocks } = setup();
      const { data, ref } = await writeOne(blocks);
      const before = await fingerprint(store);
      const keys = await fragmentKeys(store);
      await store.delete(keys[bad[0]]);
      await corrupt(store, keys[bad[1]]);

      expect(await blocks.check(ref, context(), false)).toEqual({ readable: true, damaged: 2, repaired: 0 });
      expect((await records(store)).has(keys[bad[0]])).toBe(false);
      expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 2, repaired: 2 });
      expect(await fingerprint(store)).toEqual(before);
      expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 0, repaired: 0 });
      expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    }
  });

  it('reports an unrepairable block without writing anything', async () => {
    const { store, blocks } = setup();
    const { ref } = await writeOne(blocks);
    const keys = await fragmentKeys(store);
    for (const i of [0, 1, 4]) await store.delete(keys[i]);
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: false, damaged: 3, repaired: 0 });
    expect((await records(store)).size).toBe(3);
  });

  it('places fragments on consecutive domains from a start drawn per block, distinct when domains >= k+m, and records the placed ids in the ref', async () => {
    for (const domains of [2, 3, 6, 8]) {
      const { store, blocks } = setup({ domains });
      const { data, ref } = await writeOne(blocks);
      const keys = await fragmentKeys(store);
      const placed = keys.map((key) => store.capabilities.placement.domainOf(key));
      expect(placed.map((d) => (d - placed[0] + domains) % domains)).toEqual(Array.from({ length: N }, (_, i) => i % domains));
      if (domains >= N) expect(new Set(placed).size).toBe(N);
      expect((ref.detail as ErasureDetail).ids).toHaveLength(N);
      await store.delete(keys[0]);
      expect((await blocks.get(ref, context())).equals(data)).toBe(true);
      expect(await blocks.check(ref, context(), true)).toMatchObject({ repaired: 1 });
      expect(await fragmentKeys(store)).toEqual(keys);
    }
  });

  it('rotates the first fragment over every domain across blocks, so parity does not always land on the same servers', async () => {
    const domains = N;
    const { store, blocks } = setup({ domains });
    const firstDomains = new Set<number>();
    const parityCount = new Array<number>(domains).fill(0);
    for (let b = 0; b < 60; b++) {
      const { ref } = await writeOne(blocks, SIZE, `rot${b}`);
      const ids = (ref.detail as ErasureDetail).ids as string[];
      const placed = ids.map((id) => store.capabilities.placement.domainOf(`${BLOCK_PREFIX}${id}`));
      expect(new Set(placed).size, `block rot${b}`).toBe(N);
      firstDomains.add(placed[0]);
      for (const d of placed.slice(K)) parityCount[d]++;
    }
    expect(firstDomains.size).toBe(domains);
    expect(parityCount.every((c) => c > 0), parityCount.join(',')).toBe(true);
  });

  it('reads through unreachable servers while enough fragments remain, else reports the outage', async () => {
    let down = new Set<number>();
    const hook = (call: OperationCall) => {
      if (call.op !== 'get') return;
      for (const key of call.keys) {
        if (down.has(Number(/@(\d+)$/.exec(key)?.[1]))) throw new StoreUnavailable(`server ${key} is down`);
      }
    };
    const { blocks } = setup({ domains: N, hook });
    const { data, ref } = await writeOne(blocks);
    down = new Set([0, 2]);
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 2, repaired: 0 });
    down = new Set([0, 2, 4]);
    await expect(blocks.get(ref, context())).rejects.toThrow(StoreUnavailable);
  });

  it('keeps a block whose fragments on up to m unreachable servers were not written: it reads, and repair writes them', async () => {
    let down = new Set([1, 4]);
    const hook = (call: OperationCall) => {
      if (call.op !== 'put' && call.op !== 'get') return;
      for (const key of call.keys) {
        if (down.has(Number(/@(\d+)$/.exec(key)?.[1]))) throw new StoreUnavailable(`server ${key} is down`);
      }
    };
    const warnings: unknown[] = [];
    const store = new MemoryStore({ maxValueBytes: 64 * 1024, domains: N, beforeOperation: hook });
    const blocks = new ErasureBlockStore(new RawBlockStore(store, BLOCK_PREFIX), {
      codec: createCodec(RONOMON_CODEC_ID, K, M),
      replicateBelow: 0,
      log: { warn: (...args: unknown[]) => void warnings.push(args) } as never,
    });
    const { data, ref } = await writeOne(blocks);
    await writeOne(blocks, 5000, 'blk2');
    expect((await records(store, BLOCK_PREFIX)).size).toBe(2 * (N - 2));
    // One line for the outage, not one per block.
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0])).toMatch(/fsck --repair/);
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);

    // Back, and empty where the fragments were never written.
    down = new Set();
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 2, repaired: 2 });
    expect(await blocks.check(ref, context(), false)).toEqual({ readable: true, damaged: 0, repaired: 0 });
    const written = await fragmentKeys(store);
    expect(written.filter((key) => key.startsWith(`${BLOCK_PREFIX}blk1.`))).toHaveLength(N);
    // The two rewritten fragments are the ones the ref's checksums describe.
    const stripeOnly = new ErasureBlockStore(new RawBlockStore(store, BLOCK_PREFIX), { codec: createCodec(RONOMON_CODEC_ID, K, M) });
    for (const lost of combinations(N, M)) {
      down = new Set(lost);
      expect((await stripeOnly.get(ref, context())).equals(data), `domains ${lost.join(',')} down`).toBe(true);
    }
  });

  it('keeps a small block as long as one copy was written', async () => {
    const down = new Set([0, 1]);
    const store = new MemoryStore({
      domains: 3,
      beforeOperation: (call) => {
        if (call.op === 'put' && call.keys.some((key) => down.has(Number(/@(\d+)$/.exec(key)?.[1])))) throw new StoreTimeout('no answer');
      },
    });
    const blocks = new ErasureBlockStore(new RawBlockStore(store, BLOCK_PREFIX), { codec: createCodec(RONOMON_CODEC_ID, K, M), replicateBelow: 1000 });
    const { data, ref } = await writeOne(blocks, 999);
    expect((ref.detail as ErasureDetail).layout).toBe('copies');
    expect((await records(store, BLOCK_PREFIX)).size).toBe(1);
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    down.clear();
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 2, repaired: 2 });
  });

  it('removes every fragment it wrote when more than m servers are unreachable, or one put fails otherwise', async () => {
    const down = new Set([0, 2, 5]);
    const unreachable = setup({
      domains: N,
      hook: (call) => {
        if (call.op === 'put' && call.keys.some((key) => down.has(Number(/@(\d+)$/.exec(key)?.[1])))) throw new StoreUnavailable('server went away');
      },
    });
    await expect(writeOne(unreachable.blocks)).rejects.toThrow(StoreUnavailable);
    expect((await records(unreachable.store)).size).toBe(0);

    // A refusal is not an outage: one full server fails the write, even with k+m-1 stored.
    let puts = 0;
    const full = setup({
      hook: (call) => {
        if (call.op === 'put' && ++puts === 3) throw new StoreFull('out of memory');
      },
    });
    await expect(writeOne(full.blocks)).rejects.toThrow(StoreFull);
    expect((await records(full.store)).size).toBe(0);
  });

  it('deletes every fragment of a block', async () => {
    const { store, blocks } = setup();
    const { ref } = await writeOne(blocks);
    await store.delete((await fragmentKeys(store))[2]);
    await blocks.delete(ref);
    expect((await records(store)).size).toBe(0);
  });

  it('keeps working on refs that went through msgpack (checksums back as bytes)', async () => {
    const { store, blocks } = setup({ domains: 3 });
    const { data, ref } = await writeOne(blocks);
    const decoded = unpack(pack(ref)) as BlockRef;
    await store.delete((await fragmentKeys(store))[2]);
    expect((await blocks.get(decoded, context())).equals(data)).toBe(true);
    expect(await blocks.check(decoded, context(), true)).toMatchObject({ readable: true, repaired: 1 });
  });

  it('rejects a ref that is not an erasure ref of this layout', async () => {
    const { blocks } = setup();
    await expect(blocks.get({ id: 'x', length: 10 }, context())).rejects.toThrow(/not a valid erasure ref: no detail/);
    const { ref } = await writeOne(blocks);
    const detail = ref.detail as ErasureDetail;
    const other = { ...ref, detail: { ...detail, sums: detail.sums.subarray(8) } };
    await expect(blocks.get(other, context())).rejects.toThrow(/5 fragments where 4\+2 are configured/);
  });
});

describe('erasure block store: small blocks as m+1 copies', () => {
  it('stores blocks below the threshold as whole copies, one read when healthy', async () => {
    const gets: string[] = [];
    const store = new MemoryStore({ domains: 3, beforeOperation: (c) => void (c.op === 'get' && gets.push(...c.keys)) });
    const blocks = new ErasureBlockStore(new RawBlockStore(store, BLOCK_PREFIX), {
      codec: createCodec(RONOMON_CODEC_ID, K, M),
      replicateBelow: 4096,
    });
    for (const length of [0, 1, 4095]) {
      const data = bytes(length, length + 1);
      const ref = await blocks.put(`small${length}`, data, context());
      expect((ref.detail as ErasureDetail).layout).toBe('copies');
      gets.length = 0;
      expect((await blocks.get(ref, context())).equals(data)).toBe(true);
      expect(gets).toHaveLength(1);
    }
    const big = await blocks.put('big', bytes(4096), context());
    expect((big.detail as ErasureDetail).layout).toBe('rs');
  });

  it('survives any m lost copies, repairs them, and fails at m+1', async () => {
    for (const lost of combinations(M + 1, M)) {
      const { store, blocks } = setup({ replicateBelow: 1000 });
      const { data, ref } = await writeOne(blocks, 999);
      const before = await fingerprint(store);
      const keys = await fragmentKeys(store);
      expect(keys).toHaveLength(M + 1);
      await store.delete(keys[lost[0]]);
      await corrupt(store, keys[lost[1]]);
      expect((await blocks.get(ref, context())).equals(data)).toBe(true);
      expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 2, repaired: 2 });
      expect(await fingerprint(store)).toEqual(before);
    }
    const { store, blocks } = setup({ replicateBelow: 1000 });
    const { ref } = await writeOne(blocks, 999);
    for (const key of await fragmentKeys(store)) await store.delete(key);
    await expect(blocks.get(ref, context())).rejects.toThrow(BlockMissing);
  });
});

describe('erasure codec', () => {
  it('refuses unknown codecs and out-of-range k or m with a clear message', () => {
    expect(() => createCodec('jerasure', 4, 2)).toThrow(ConfigError);
    expect(() => createCodec('jerasure', 4, 2)).toThrow(/unknown erasure codec "jerasure"/);
    expect(() => createCodec(RONOMON_CODEC_ID, 0, 2)).toThrow(/k \(data fragments\) must be 1..24, not 0/);
    expect(() => createCodec(RONOMON_CODEC_ID, 4, 7)).toThrow(/m \(parity fragments\) must be 1..6, not 7/);
  });

  it('gives the maximum block size as k aligned fragments of the inner limit', () => {
    const { blocks } = setup();
    expect(blocks.maxBlockBytes).toBe(4 * 64 * 1024);
    const odd = new ErasureBlockStore(new RawBlockStore(new MemoryStore({ maxValueBytes: 1001 }), 'p:'), {
      codec: createCodec(RONOMON_CODEC_ID, 3, 2),
    });
    expect(odd.maxBlockBytes).toBe(3 * 1000);
  });
});
