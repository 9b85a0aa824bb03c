import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/backends/errors.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { RawBlockStore } from '../../../src/translators/raw-block-store.js';
import { buildBlockStack } from '../../../src/translators/stack.js';
import { BLOCK_PREFIX, bytes, context, makeStack } from './fixtures.js';

async function flipOneByte(store: MemoryStore): Promise<void> {
  for await (const key of store.scan(BLOCK_PREFIX)) {
    const found = await store.get(key);
    if (!found) continue;
    const damaged = Buffer.from(found.value);
    damaged[damaged.length >> 1] ^= 0x04;
    await store.put(key, damaged);
    return;
  }
  throw new Error('no block record to damage');
}

describe('raw block store checksums', () => {
  it('a plain volume (no translator) detects a flipped byte: IntegrityError, not wrong bytes', async () => {
    const { store, blocks } = await makeStack('raw');
    const data = bytes(10_000, 5);
    const ref = await blocks.put('b1', data, context());
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    await flipOneByte(store);
    await expect(blocks.get(ref, context())).rejects.toThrow(IntegrityError);
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: false, damaged: 1, repaired: 0 });
  });

  it('under crypt or erasure raw keeps no checksum of its own (they verify), so refs stay small', async () => {
    for (const kind of ['crypt', 'erasure', 'crypt+erasure'] as const) {
      const { blocks } = await makeStack(kind);
      const ref = await blocks.put('b', bytes(100_000), context());
      const inner = (ref.detail as { inner?: unknown } | undefined)?.inner;
      expect(inner, kind).toBeUndefined();
      if (kind === 'crypt') expect(ref.detail).toBeUndefined();
    }
  });

  it('refs written before checksums existed (no detail) still read', async () => {
    const store = new MemoryStore();
    const old = new RawBlockStore(store, BLOCK_PREFIX);
    const data = bytes(5000, 9);
    const ref = await old.put('old', data, context());
    expect(ref.detail).toBeUndefined();
    const now = buildBlockStack({}, undefined, store, BLOCK_PREFIX);
    expect((await now.get(ref, context())).equals(data)).toBe(true);
  });

  it('a ref whose detail is not a raw checksum is an IntegrityError', async () => {
    const store = new MemoryStore();
    const blocks = new RawBlockStore(store, BLOCK_PREFIX, { checksum: true });
    const ref = await blocks.put('x', bytes(100), context());
    await expect(blocks.get({ ...ref, detail: { xxh64: Buffer.alloc(3) } }, context())).rejects.toThrow(/not a valid raw ref/);
    await expect(blocks.get({ ...ref, detail: 'nonsense' }, context())).rejects.toThrow(IntegrityError);
  });
});
