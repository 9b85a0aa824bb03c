import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, ValueTooLarge } from '../../../src/backends/errors.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { EncryptedKvStore } from '../../../src/translators/crypt/encrypted-kv-store.js';
import { createKeyring } from '../../../src/translators/crypt/keyring.js';
import { buildBlockStack, buildMetadataStore, describeStack } from '../../../src/translators/stack.js';
import {
  BLOCK_PREFIX,
  bytes,
  CHEAP_KDF,
  context,
  contextArb,
  ERASURE_4_2,
  makeStack,
  PASSPHRASE,
  records,
  STACK_KINDS,
} from './fixtures.js';

const MAX_VALUE = 32 * 1024 + 5;

describe('translator stacks', () => {
  it.each([
    ['raw', MAX_VALUE],
    ['crypt', MAX_VALUE - 28],
    ['erasure', 4 * 32 * 1024],
    ['crypt+erasure', 4 * 32 * 1024 - 28],
  ] as const)('%s: maxBlockBytes %i accounts for every layer, and is enforced', async (kind, max) => {
    const { blocks } = await makeStack(kind, { maxValueBytes: MAX_VALUE });
    expect(blocks.maxBlockBytes).toBe(max);
    const data = bytes(max, 3);
    const ref = await blocks.put('full', data, context());
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    await expect(blocks.put('over', bytes(max + 1), context())).rejects.toThrow(ValueTooLarge);
  });

  it.each(STACK_KINDS)('%s: any block of 0..maxBlockBytes bytes in any context reads back identical', async (kind) => {
    const { blocks } = await makeStack(kind, { maxValueBytes: MAX_VALUE, domains: 3 });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.nat({ max: blocks.maxBlockBytes }), fc.nat({ max: 64 }), fc.constant(blocks.maxBlockBytes)),
        fc.integer(),
        contextArb,
        async (length, seed, where) => {
          const data = bytes(length, seed);
          const ref = await blocks.put(`p${n++}`, data, where);
          expect(ref.length).toBe(length);
          expect((await blocks.get(ref, where)).equals(data)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('crypt+erasure: parity is over ciphertext; reads survive m lost fragments; no plaintext is stored', async () => {
    const { store, blocks } = await makeStack('crypt+erasure', { maxValueBytes: MAX_VALUE });
    const data = Buffer.from('FILE-CONTENT-MARKER '.repeat(5000));
    const ref = await blocks.put('blk', data, context());
    const stored = await records(store);
    expect(stored.size).toBe(6);
    for (const value of stored.values()) expect(value.includes('FILE-CONTENT-MARKER')).toBe(false);
    const keys = [...stored.keys()].sort();
    await store.delete(keys[0]);
    await store.delete(keys[3]);
    expect((await blocks.get(ref, context())).equals(data)).toBe(true);
    expect(await blocks.check(ref, context(), true)).toEqual({ readable: true, damaged: 2, repaired: 2 });
    expect((await records(store)).size).toBe(6);
    await expect(blocks.get(ref, context({ ino: 1 }))).rejects.toThrow(/failed authentication/);
  });

  it('describes stacks in one line', async () => {
    const { settings } = await makeStack('crypt+erasure');
    expect(describeStack(settings)).toBe('crypt(aes-256-gcm, argon2id) -> erasure(4+2, ronomon-rs6) -> raw');
    expect(describeStack({ erasure: ERASURE_4_2 })).toBe('erasure(4+2, ronomon-rs6) -> raw');
    expect(describeStack({})).toBe('raw');
  });

  it('asks for the passphrase of an encrypted volume, and refuses one for a plain volume', async () => {
    const store = new MemoryStore();
    const { keyring, settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    expect(() => buildBlockStack({ crypt: settings }, undefined, store, BLOCK_PREFIX)).toThrow(ConfigError);
    expect(() => buildBlockStack({ crypt: settings }, undefined, store, BLOCK_PREFIX)).toThrow(
      'this volume is encrypted: give its passphrase to open it',
    );
    expect(() => buildBlockStack({}, keyring, store, BLOCK_PREFIX)).toThrow(/not encrypted: open it without one/);
    expect(() => buildBlockStack({ erasure: { k: 4, m: 2, codec: 'isa-l' } }, undefined, store, BLOCK_PREFIX)).toThrow(
      /unknown erasure codec "isa-l"/,
    );
  });

  it('encrypts metadata only for encrypted volumes, leaving the superblock in clear', async () => {
    const store = new MemoryStore();
    const { keyring, settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    expect(buildMetadataStore({}, undefined, store, () => false)).toBe(store);
    const meta = buildMetadataStore({ crypt: settings }, keyring, store, (key) => key === 'v1:sb');
    expect(meta).toBeInstanceOf(EncryptedKvStore);
    await meta.put('v1:sb', Buffer.from('superblock'));
    await meta.put('v1:i:1', Buffer.from('inode one'));
    expect((await store.get('v1:sb'))?.value.toString()).toBe('superblock');
    expect((await store.get('v1:i:1'))?.value.includes('inode one')).toBe(false);
  });
});
