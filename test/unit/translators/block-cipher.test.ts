import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AEAD_OVERHEAD, NONCE_BYTES, open, seal } from '../../../src/translators/crypt/aead.js';
import { openInto, sealInto } from '../../../src/translators/crypt/block-cipher.js';
import { createKeyring } from '../../../src/translators/crypt/keyring.js';
import { bytes, CHEAP_KDF, PASSPHRASE } from './fixtures.js';

const MiB = 1024 * 1024;

async function blockKey() {
  const { keyring } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
  return keyring.blockKey;
}

describe('block cipher on the threadpool', () => {
  it('seals in the aead format: what it seals opens inline, and the reverse', async () => {
    const key = await blockKey();
    const aad = Buffer.from('aad');
    const data = bytes(MiB + 3, 5);
    const out = Buffer.alloc(MiB + 3 + AEAD_OVERHEAD + 100, 0xee);
    const sealed = await sealInto(key.export(), aad, data, out);
    expect(sealed.length).toBe(MiB + 3 + AEAD_OVERHEAD);
    expect(sealed.buffer).toBe(out.buffer);
    expect(open(key, sealed, aad, 'test').equals(data)).toBe(true);
    const inline = seal(key, data, aad);
    const target = Buffer.alloc(MiB + 3);
    expect((await openInto(key.export(), aad, inline, target, 0))?.equals(data)).toBe(true);
    // Past the sealed block, the memory it was given is untouched.
    expect(out.subarray(sealed.length).equals(Buffer.alloc(100, 0xee))).toBe(true);
  });

  it('takes a fresh nonce for every block', async () => {
    const key = (await blockKey()).export();
    const data = bytes(100_000, 1);
    const a = await sealInto(key, Buffer.alloc(0), data, Buffer.alloc(100_000 + AEAD_OVERHEAD));
    const b = await sealInto(key, Buffer.alloc(0), data, Buffer.alloc(100_000 + AEAD_OVERHEAD));
    expect(a.subarray(0, NONCE_BYTES).equals(b.subarray(0, NONCE_BYTES))).toBe(false);
    expect(a.equals(b)).toBe(false);
  });

  it('opens in place: the plaintext lands where the ciphertext was', async () => {
    const key = await blockKey();
    const aad = Buffer.from('aad');
    const data = bytes(MiB, 7);
    const sealed = seal(key, data, aad);
    const plaintext = await openInto(key.export(), aad, sealed, sealed, NONCE_BYTES);
    expect(plaintext?.equals(data)).toBe(true);
    expect(plaintext?.buffer).toBe(sealed.buffer);
    expect(plaintext?.byteOffset).toBe(sealed.byteOffset + NONCE_BYTES);
  });

  it('refuses a flipped bit, another aad or another key, and zeroes what it wrote', async () => {
    const key = await blockKey();
    const aad = Buffer.from('aad');
    const data = bytes(200_000, 2);
    const target = Buffer.alloc(200_000, 0xaa);
    expect(await openInto(key.export(), Buffer.from('other'), seal(key, data, aad), target, 0)).toBeUndefined();
    expect(target.equals(Buffer.alloc(200_000))).toBe(true);
    expect(await openInto(randomBytes(32), aad, seal(key, data, aad), target, 0)).toBeUndefined();
    for (const at of [0, NONCE_BYTES + 100_000, NONCE_BYTES + 200_000 + 15]) {
      const sealed = seal(key, data, aad);
      sealed[at] ^= 1;
      expect(await openInto(key.export(), aad, sealed, sealed, NONCE_BYTES)).toBeUndefined();
      expect(sealed.subarray(NONCE_BYTES, NONCE_BYTES + 200_000).equals(Buffer.alloc(200_000))).toBe(true);
    }
    expect(await openInto(key.export(), aad, Buffer.alloc(AEAD_OVERHEAD - 1), target, 0)).toBeUndefined();
  });

  it('seals and opens an empty block with empty associated data (empty buffers crash the addon if passed on)', async () => {
    const key = await blockKey();
    const sealed = await sealInto(key.export(), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(AEAD_OVERHEAD));
    expect(open(key, sealed, Buffer.alloc(0), 'empty').length).toBe(0);
    expect((await openInto(key.export(), Buffer.alloc(0), sealed, Buffer.alloc(0), 0))?.length).toBe(0);
  });

  it('says what is wrong with a short output buffer or a bad key', async () => {
    const key = (await blockKey()).export();
    await expect(sealInto(key, Buffer.alloc(0), bytes(1000, 1), Buffer.alloc(1000))).rejects.toThrow(/needs 1028 bytes of room, not 1000/);
    await expect(sealInto(Buffer.alloc(16), Buffer.alloc(0), bytes(10, 1), Buffer.alloc(100))).rejects.toThrow(/32 bytes, not 16/);
  });
});
