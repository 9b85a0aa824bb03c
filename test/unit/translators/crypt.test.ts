import { describe, expect, it } from 'vitest';
import { IntegrityError, ValueTooLarge } from '../../../src/backends/errors.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { BlockMissing, type BlockContext, type BlockRef } from '../../../src/translators/block-store.js';
import { AEAD_OVERHEAD } from '../../../src/translators/crypt/aead.js';
import { CryptBlockStore } from '../../../src/translators/crypt/crypt-block-store.js';
import { createKeyring } from '../../../src/translators/crypt/keyring.js';
import { RawBlockStore } from '../../../src/translators/raw-block-store.js';
import { BLOCK_PREFIX, CHEAP_KDF, context, PASSPHRASE, records } from './fixtures.js';

async function setup(maxValueBytes = 64 * 1024) {
  const store = new MemoryStore({ maxValueBytes });
  const { keyring } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
  const blocks = new CryptBlockStore(new RawBlockStore(store, BLOCK_PREFIX), keyring.blockKey);
  return { store, blocks, keyring };
}

const MARKER = 'PLAINTEXT-MARKER-7d1e';

describe('crypt block store', () => {
  it('round-trips blocks of any length up to maxBlockBytes, which leaves room for nonce and tag', async () => {
    const { blocks } = await setup(1000);
    expect(blocks.maxBlockBytes).toBe(1000 - AEAD_OVERHEAD);
    for (const length of [0, 1, 15, 16, 17, 500, blocks.maxBlockBytes]) {
      const data = Buffer.alloc(length, length & 0xff);
      const ref = await blocks.put(`b${length}`, data, context());
      expect(ref).toEqual({ id: `b${length}`, length });
      expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    }
    await expect(blocks.put('big', Buffer.alloc(blocks.maxBlockBytes + 1), context())).rejects.toThrow(ValueTooLarge);
  });

  it('never stores plaintext, and encrypts equal blocks differently', async () => {
    const { store, blocks } = await setup();
    const data = Buffer.from(`${MARKER} `.repeat(100));
    await blocks.put('a', data, context());
    await blocks.put('b', data, context());
    const stored = await records(store);
    expect(stored.size).toBe(2);
    for (const value of stored.values()) {
      expect(value.includes(MARKER)).toBe(false);
      expect(value.includes(data.subarray(0, 16))).toBe(false);
    }
    const [a, b] = [...stored.values()];
    expect(a.equals(b)).toBe(false);
  });

  it('refuses a block with any single byte flipped, anywhere in the record', async () => {
    const { store, blocks } = await setup();
    const ref = await blocks.put('blk', Buffer.from('the quick brown fox jumps over'), context());
    const key = `${BLOCK_PREFIX}blk`;
    const original = (await store.get(key))!.value;
    for (let at = 0; at < original.length; at++) {
      const tampered = Buffer.from(original);
      tampered[at] ^= 0x01;
      await store.put(key, tampered);
      await expect(blocks.get(ref, context()), `byte ${at}`).rejects.toThrow(IntegrityError);
    }
    await store.put(key, original);
    expect((await blocks.get(ref, context())).toString()).toBe('the quick brown fox jumps over');
  });

  it('refuses a block moved to another volume, inode, chunk or id, or read with another length', async () => {
    const { store, blocks } = await setup();
    const data = Buffer.from('block of file 42, chunk 7');
    const ref = await blocks.put('blk', data, context());
    const elsewhere: BlockContext[] = [
      context({ volumeId: '9f3c01d3' }),
      context({ ino: 43 }),
      context({ chunkIndex: 8 }),
    ];
    for (const where of elsewhere) await expect(blocks.get(ref, where)).rejects.toThrow(IntegrityError);

    // Replayed under another block id: the ciphertext is intact but bound to "blk".
    await store.put(`${BLOCK_PREFIX}other`, (await store.get(`${BLOCK_PREFIX}blk`))!.value);
    await expect(blocks.get({ ...ref, id: 'other' }, context())).rejects.toThrow(/block other failed authentication/);

    // Truncated: record and ref both shortened by one byte still fail, as does a lying length.
    const sealed = (await store.get(`${BLOCK_PREFIX}blk`))!.value;
    await store.put(`${BLOCK_PREFIX}short`, Buffer.concat([sealed.subarray(0, sealed.length - 17), sealed.subarray(-16)]));
    await expect(blocks.get({ id: 'short', length: data.length - 1 }, context())).rejects.toThrow(IntegrityError);
    await expect(blocks.get({ ...ref, length: data.length - 1 }, context())).rejects.toThrow(IntegrityError);
  });

  it('refuses blocks written under another volume key', async () => {
    const { store, blocks } = await setup();
    const { keyring } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const intruder = new CryptBlockStore(new RawBlockStore(store, BLOCK_PREFIX), keyring.blockKey);
    const ref = await intruder.put('blk', Buffer.from('forged'), context());
    await expect(blocks.get(ref, context())).rejects.toThrow(IntegrityError);
  });

  it('passes a missing block through as BlockMissing, and check reports tampering', async () => {
    const { store, blocks } = await setup();
    const ref: BlockRef = await blocks.put('blk', Buffer.from('data'), context());
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 0, repaired: 0 });
    const key = `${BLOCK_PREFIX}blk`;
    const value = (await store.get(key))!.value;
    value[14] ^= 0x80;
    await store.put(key, value);
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: false, damaged: 1, repaired: 0 });
    await blocks.delete(ref);
    await expect(blocks.get(ref, context())).rejects.toThrow(BlockMissing);
  });
});
