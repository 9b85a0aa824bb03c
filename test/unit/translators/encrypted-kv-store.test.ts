import { describe, expect, it } from 'vitest';
import { IntegrityError, ValueTooLarge } from '../../../src/backends/errors.js';
import { IF_ABSENT, ifVersion } from '../../../src/backends/kv-store.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { EncryptedKvStore } from '../../../src/translators/crypt/encrypted-kv-store.js';
import { createKeyring } from '../../../src/translators/crypt/keyring.js';
import { CHEAP_KDF, PASSPHRASE, records } from './fixtures.js';

const MARKER = 'SECRET-NAME-MARKER-e41a';
const SUPERBLOCK = 'v1:sb';

async function setup() {
  const inner = new MemoryStore({ maxValueBytes: 4096 });
  const { keyring } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
  const store = new EncryptedKvStore(inner, keyring.metadataKey, { exclude: (key) => key === SUPERBLOCK });
  return { inner, store };
}

describe('encrypted kv store', () => {
  it('round-trips values, keeping versions and conditions working', async () => {
    const { store } = await setup();
    const first = await store.put('v1:i:2', Buffer.from(`inode ${MARKER}`), IF_ABSENT);
    expect(first.ok).toBe(true);
    expect((await store.put('v1:i:2', Buffer.from('again'), IF_ABSENT)).ok).toBe(false);
    const found = await store.get('v1:i:2');
    expect(found?.value.toString()).toBe(`inode ${MARKER}`);
    expect(found?.version).toBe(first.ok && first.version);
    expect((await store.put('v1:i:2', Buffer.from('v2'), ifVersion(found!.version))).ok).toBe(true);
    expect((await store.put('v1:i:2', Buffer.from('v3'), ifVersion(found!.version))).ok).toBe(false);
    expect((await store.getMany(['v1:i:2', 'v1:i:3'])).map((f) => f?.value.toString())).toEqual(['v2', undefined]);
    expect(await store.delete('v1:i:2')).toBe(true);
    expect(await store.get('v1:i:2')).toBeUndefined();
  });

  it('never stores values in clear, except for excluded keys', async () => {
    const { inner, store } = await setup();
    await store.put('v1:d:1:r', Buffer.from(`entry ${MARKER}`));
    await store.put(SUPERBLOCK, Buffer.from(`superblock ${MARKER}`));
    expect(await store.commit!([{ key: 'v1:d:1:a', value: Buffer.from(MARKER), condition: IF_ABSENT }])).toBe(true);
    const stored = await records(inner);
    expect([...stored.keys()].sort()).toEqual(['v1:d:1:a', 'v1:d:1:r', SUPERBLOCK]);
    expect(stored.get(SUPERBLOCK)?.toString()).toBe(`superblock ${MARKER}`);
    expect(stored.get('v1:d:1:r')!.includes(MARKER)).toBe(false);
    expect(stored.get('v1:d:1:a')!.includes(MARKER)).toBe(false);
    expect((await store.get('v1:d:1:a'))?.value.toString()).toBe(MARKER);
    expect((await store.get(SUPERBLOCK))?.value.toString()).toBe(`superblock ${MARKER}`);
  });

  it('refuses a record swapped in from another key, or tampered with', async () => {
    const { inner, store } = await setup();
    await store.put('v1:i:2', Buffer.from('mode 0600'));
    await store.put('v1:i:3', Buffer.from('mode 0777'));
    await inner.put('v1:i:2', (await inner.get('v1:i:3'))!.value);
    await expect(store.get('v1:i:2')).rejects.toThrow(/record v1:i:2 failed authentication/);
    await expect(store.getMany(['v1:i:3', 'v1:i:2'])).rejects.toThrow(IntegrityError);
    const value = (await inner.get('v1:i:3'))!.value;
    value[value.length - 1] ^= 1;
    await inner.put('v1:i:3', value);
    await expect(store.get('v1:i:3')).rejects.toThrow(IntegrityError);
  });

  it('passes commit (with deletes and checks) and scan through', async () => {
    const { store } = await setup();
    const put = await store.put('v1:a', Buffer.from('a'));
    const ok = await store.commit!(
      [
        { key: 'v1:a', value: null, condition: ifVersion(put.ok ? put.version : '') },
        { key: 'v1:b', value: Buffer.from('b'), condition: IF_ABSENT },
      ],
      [{ key: 'v1:c', version: null }],
    );
    expect(ok).toBe(true);
    expect(await store.get('v1:a')).toBeUndefined();
    expect((await store.get('v1:b'))?.value.toString()).toBe('b');
    const keys: string[] = [];
    for await (const key of store.scan!('v1:')) keys.push(key);
    expect(keys).toEqual(['v1:b']);
  });

  it('lowers maxValueBytes by the encryption overhead and enforces it', async () => {
    const { store } = await setup();
    expect(store.capabilities.maxValueBytes).toBe(4096 - 28);
    await store.put('v1:x', Buffer.alloc(4096 - 28));
    await expect(store.put('v1:x', Buffer.alloc(4096 - 27))).rejects.toThrow(ValueTooLarge);
  });

  it('offers commit only when the inner store does', async () => {
    const inner = new MemoryStore();
    const withoutCommit = Object.assign(Object.create(inner) as MemoryStore, { commit: undefined });
    const { keyring } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    expect(new EncryptedKvStore(withoutCommit, keyring.metadataKey).commit).toBeUndefined();
  });
});
