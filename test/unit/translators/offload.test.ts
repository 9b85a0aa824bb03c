import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IntegrityError } from '../../../src/backends/errors.js';
import type { KvStore } from '../../../src/backends/kv-store.js';
import { BlockPool } from '../../../src/chunk/block-pool.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import type { BlockRef, BlockStore } from '../../../src/translators/block-store.js';
import { AEAD_OVERHEAD } from '../../../src/translators/crypt/aead.js';
import { sealInto } from '../../../src/translators/crypt/block-cipher.js';
import { createKeyring } from '../../../src/translators/crypt/keyring.js';
import { checksumAll } from '../../../src/translators/erasure/checksum.js';
import { createCodec, RONOMON_CODEC_ID } from '../../../src/translators/erasure/codec.js';
import { OFFLOAD_MIN_BYTES, OffloadPool } from '../../../src/translators/offload/offload-pool.js';
import { buildBlockStack, type TranslatorSettings } from '../../../src/translators/stack.js';
import { BLOCK_PREFIX, bytes, CHEAP_KDF, context, ERASURE_4_2, fingerprint, PASSPHRASE, records } from './fixtures.js';

const MiB = 1024 * 1024;
const pools: OffloadPool[] = [];

function pool(idleMs = 50): OffloadPool {
  const made = new OffloadPool({ workers: 2, idleMs });
  pools.push(made);
  return made;
}

async function keys() {
  const { keyring, settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
  return { keyring, crypt: settings };
}

afterEach(async () => {
  // Every pool must end its threads by itself once idle.
  for (let i = 0; i < 100 && pools.some((p) => p.threads > 0); i++) await sleep(20);
  expect(pools.map((p) => p.threads)).toEqual(pools.map(() => 0));
  pools.length = 0;
});

describe('offload pool', () => {
  it('encodes the same fragments and checksums as the codec on the main thread', async () => {
    const p = pool();
    const codec = createCodec(RONOMON_CODEC_ID, 4, 2);
    const size = 262_152;
    const data = bytes(4 * size - 100, 9);
    const { stripe, sums } = await p.encode(4, 2, size, data);
    const padded = Buffer.alloc(4 * size);
    data.copy(padded);
    const parity = Buffer.alloc(2 * size);
    await codec.run(padded, parity, [0, 1, 2, 3], [4, 5]);
    expect(stripe.equals(Buffer.concat([padded, parity]))).toBe(true);
    const fragments = Array.from({ length: 6 }, (_, i) => stripe.subarray(i * size, (i + 1) * size));
    expect(sums.equals(checksumAll(fragments))).toBe(true);
  });

  it('takes a handed-over buffer without copying it, and reuses scratch buffers', async () => {
    const p = pool();
    const size = 262_144;
    const data = p.handOver(p.scratch(4 * size));
    bytes(4 * size, 1).copy(data);
    await p.encode(4, 2, size, data);
    // Transferred to the worker: this side's view is detached.
    expect(data.length).toBe(0);
    // The memory sent to the worker came back and is handed out again: a fresh buffer would
    // be exactly as long as asked.
    const a = p.scratch(MiB - 1000);
    expect(a.length).toBe(MiB - 1000);
    expect(a.buffer.byteLength).toBeGreaterThanOrEqual(MiB);
  });

  it('encodes in place a block crypt sealed into the room erasure reserved', async () => {
    const { keyring } = await keys();
    const p = pool();
    const size = 262_152;
    p.reserve(() => 6 * size);
    const length = MiB + AEAD_OVERHEAD;
    const sealed = p.handOver(await sealInto(keyring.blockKey.export(), Buffer.from('aad'), bytes(MiB, 6), p.scratch(p.room(length))));
    expect(sealed.length).toBe(length);
    expect(sealed.buffer.byteLength).toBe(6 * size);
    const copy = Buffer.from(sealed);
    const { stripe, sums } = await p.encode(4, 2, size, sealed);
    // The stripe is the sealed block's own memory: no second buffer was made.
    expect(stripe.buffer.byteLength).toBe(6 * size);
    const padded = Buffer.alloc(4 * size);
    copy.copy(padded);
    const parity = Buffer.alloc(2 * size);
    await createCodec(RONOMON_CODEC_ID, 4, 2).run(padded, parity, [0, 1, 2, 3], [4, 5]);
    expect(stripe.equals(Buffer.concat([padded, parity]))).toBe(true);
    expect(sums.equals(checksumAll(Array.from({ length: 6 }, (_, i) => stripe.subarray(i * size, (i + 1) * size))))).toBe(true);
  });

  it('runs at most `workers` threads, which end once idle', async () => {
    const p = pool(30);
    const data = bytes(OFFLOAD_MIN_BYTES * 4, 3);
    await Promise.all(Array.from({ length: 8 }, () => p.encode(4, 2, OFFLOAD_MIN_BYTES, data)));
    expect(p.threads).toBeGreaterThan(0);
    expect(p.threads).toBeLessThanOrEqual(2);
  });
});

describe('block stacks with and without the pool', () => {
  for (const kind of ['crypt', 'erasure', 'crypt+erasure'] as const) {
    it(`${kind}: writes the same records either way, each reads the other's, for large and small blocks`, async () => {
      const { keyring, crypt } = await keys();
      const settings: TranslatorSettings = {
        ...(kind.includes('crypt') ? { crypt } : {}),
        ...(kind.includes('erasure') ? { erasure: ERASURE_4_2 } : {}),
      };
      const ring = settings.crypt ? keyring : undefined;
      const store = new MemoryStore({ maxValueBytes: 2 * MiB });
      const pooled = buildBlockStack(settings, ring, store, BLOCK_PREFIX, pool());
      const inline = buildBlockStack(settings, ring, store, BLOCK_PREFIX, false);
      for (const length of [MiB, OFFLOAD_MIN_BYTES, OFFLOAD_MIN_BYTES - 1, 20_000, 100]) {
        const data = bytes(length, length);
        const a = await pooled.put(`a${length}`, data, context());
        const b = await inline.put(`b${length}`, data, context());
        expect(data.length).toBe(length);
        expect((await inline.get(a, context())).equals(data)).toBe(true);
        expect((await pooled.get(b, context())).equals(data)).toBe(true);
        expect((await pooled.get(a, context())).equals(data)).toBe(true);
        expect(a).toMatchObject({ id: `a${length}`, length });
      }
      // Same records (ciphertexts differ by nonce, so compare keys and sizes).
      const shape = async (p: string) =>
        [...(await records(store, BLOCK_PREFIX + p)).entries()].map(([k, v]) => `${k.slice(BLOCK_PREFIX.length + 1)}=${v.length}`).sort();
      expect(await shape('a')).toEqual(await shape('b'));
    });
  }

  for (const kind of ['erasure', 'crypt+erasure'] as const) {
    it(`${kind}: a read given memory returns the block in it, taken once, healthy or rebuilt from parity`, async () => {
      const { keyring, crypt } = await keys();
      const store = new MemoryStore({ maxValueBytes: 2 * MiB });
      const settings: TranslatorSettings = { erasure: ERASURE_4_2, ...(kind === 'crypt+erasure' ? { crypt } : {}) };
      const blocks = buildBlockStack(settings, settings.crypt ? keyring : undefined, store, BLOCK_PREFIX, pool());
      const data = bytes(MiB, 8);
      const ref = await blocks.put('r', data, context());
      const memory = new BlockPool(blocks.readRoom(MiB), 4);
      const take = vi.spyOn(memory, 'take');
      const read = await blocks.get(ref, context(), memory);
      expect(read.equals(data)).toBe(true);
      // Fragments joined and (with crypt) opened where they landed: no second buffer, no copy.
      expect(take).toHaveBeenCalledTimes(1);
      expect(memory.owns(read)).toBe(true);
      expect(read.buffer.byteLength).toBe(memory.capacity);
      const fragment1 = Object.keys(await fingerprint(store)).sort()[1];
      await store.delete(fragment1);
      expect((await blocks.get(ref, context(), memory)).equals(data)).toBe(true);
    });
  }

  it('crypt+erasure with the pool: a tampered ciphertext is an IntegrityError, a lost fragment is rebuilt', async () => {
    const { keyring, crypt } = await keys();
    const store = new MemoryStore({ maxValueBytes: 2 * MiB });
    const blocks = buildBlockStack({ crypt, erasure: ERASURE_4_2 }, keyring, store, BLOCK_PREFIX, pool());
    const data = bytes(MiB, 4);
    const ref = await blocks.put('t', data, context());
    // Opened in place in lent memory: a block that fails authentication gives no bytes either.
    const memory = new BlockPool(blocks.readRoom(MiB), 4);
    await expect(blocks.get(ref, context({ ino: 43 }), memory)).rejects.toThrow(/failed authentication/);
    expect((await blocks.get(ref, context(), memory)).equals(data)).toBe(true);
    const before = await fingerprint(store);
    const fragment0 = [...Object.keys(before)].sort()[0];
    await store.delete(fragment0);
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    await expect(blocks.get(ref, context({ ino: 43 }))).rejects.toThrow(IntegrityError);
    await expect(blocks.get(ref, context({ ino: 43 }))).rejects.toThrow(/failed authentication/);
    await expect(blocks.get(ref, context({ ino: 43 }), memory)).rejects.toThrow(/failed authentication/);
    expect((await blocks.get(ref, context(), memory)).equals(data)).toBe(true);
  });
});

/**
 * A MemoryStore wrapper that watches the buffers given to put. Each put holds the caller's
 * buffer for 1-13 ms, as a store writing it out would, then compares it with a copy taken at
 * the call. With `releases` it declares `putReleasesValue` and stores the copy (the caller may
 * reuse its buffer once put resolves); without, it keeps the caller's buffer for good, and
 * `changed()` also compares every buffer it kept.
 */
function watchingStore(releases: boolean): { store: KvStore; changed: () => string[] } {
  const target = new MemoryStore({ maxValueBytes: 2 * MiB });
  const seen: string[] = [];
  const kept: { key: string; value: Buffer; copy: Buffer }[] = [];
  let puts = 0;
  const put: KvStore['put'] = async (key, value, condition) => {
    const copy = Buffer.from(value);
    await sleep(1 + (puts++ % 5) * 3);
    if (!value.equals(copy)) seen.push(key);
    if (!releases) kept.push({ key, value, copy });
    return target.put(key, copy, condition);
  };
  const store = new Proxy(target, {
    get(t, name) {
      if (name === 'capabilities') return { ...t.capabilities, putReleasesValue: releases };
      if (name === 'put') return put;
      const value: unknown = Reflect.get(t, name, t);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(t) : value;
    },
  });
  const changed = () => [...seen, ...kept.filter((k) => !k.value.equals(k.copy)).map((k) => k.key)];
  return { store, changed };
}

/** Writes `count` 1 MiB blocks, three at a time, and reads each back. */
async function writeInLanes(blocks: BlockStore, count: number): Promise<void> {
  const refs: { ref: BlockRef; seed: number }[] = [];
  let next = 0;
  const lane = async () => {
    for (let seed = next++; seed < count; seed = next++) refs.push({ ref: await blocks.put(`l${seed}`, bytes(MiB, seed), context()), seed });
  };
  await Promise.all([lane(), lane(), lane()]);
  for (const { ref, seed } of refs) expect((await blocks.get(ref, context())).equals(bytes(MiB, seed)), `block ${seed}`).toBe(true);
}

describe('reuse of stripe memory', () => {
  for (const releases of [true, false]) {
    it(`reuses a stripe's memory ${releases ? 'only once every put of it resolved, on a store that releases values' : 'never, on a store that may keep it'}`, async () => {
      const { keyring, crypt } = await keys();
      const { store, changed } = watchingStore(releases);
      const p = pool();
      const release = vi.spyOn(p, 'release');
      const blocks = buildBlockStack({ crypt, erasure: ERASURE_4_2 }, keyring, store, BLOCK_PREFIX, p);
      await writeInLanes(blocks, 16);
      expect(changed()).toEqual([]);
      // Where allowed, every stripe's memory went back to the pool for later blocks.
      expect(release).toHaveBeenCalledTimes(releases ? 16 : 0);
    });
  }
});
