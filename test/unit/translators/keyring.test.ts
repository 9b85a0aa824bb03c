import { describe, expect, it } from 'vitest';
import { ConfigError, IntegrityError } from '../../../src/backends/errors.js';
import { open, seal } from '../../../src/translators/crypt/aead.js';
import {
  createKeyring,
  DEFAULT_KDF,
  openKeyring,
  rewrapKeyring,
  WrongPassphrase,
  type CryptSettings,
  type KdfSettings,
  type Keyring,
} from '../../../src/translators/crypt/keyring.js';
import { CHEAP_KDF, PASSPHRASE } from './fixtures.js';

const AAD = Buffer.from('test');

/** Whether two keyrings hold the same keys: what one seals, the other opens. */
function sameKeys(a: Keyring, b: Keyring): boolean {
  const msg = Buffer.from('probe');
  try {
    return (
      open(b.blockKey, seal(a.blockKey, msg, AAD), AAD, 'probe').equals(msg) &&
      open(b.metadataKey, seal(a.metadataKey, msg, AAD), AAD, 'probe').equals(msg)
    );
  } catch (err) {
    if (err instanceof IntegrityError) return false;
    throw err;
  }
}

describe('keyring', () => {
  it('opens with the passphrase it was created with, giving the same keys', async () => {
    const { keyring, settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const reopened = await openKeyring(PASSPHRASE, settings);
    expect(sameKeys(keyring, reopened)).toBe(true);
    expect(sameKeys(keyring, (await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF })).keyring)).toBe(false);
  });

  it('keeps block and metadata keys apart', async () => {
    const { keyring } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const sealed = seal(keyring.blockKey, Buffer.from('x'), AAD);
    expect(() => open(keyring.metadataKey, sealed, AAD, 'record')).toThrow(IntegrityError);
  });

  it('settings are plain data that survive JSON, holding no key in clear', async () => {
    const { keyring, settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const copy = JSON.parse(JSON.stringify(settings)) as CryptSettings;
    expect(copy).toEqual(settings);
    expect(Object.keys(settings).sort()).toEqual(['cipher', 'kdf', 'keyCheck', 'salt', 'wrappedKey']);
    expect(Buffer.from(settings.salt, 'base64')).toHaveLength(16);
    expect(Buffer.from(settings.wrappedKey, 'base64')).toHaveLength(12 + 32 + 16);
    const exported = [keyring.blockKey, keyring.metadataKey].map((k) => k.export().toString('base64'));
    for (const key of exported) expect(JSON.stringify(settings)).not.toContain(key);
    expect(sameKeys(keyring, await openKeyring(PASSPHRASE, copy))).toBe(true);
  });

  it('refuses a wrong passphrase with a clear error', async () => {
    const { settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const attempt = openKeyring('correct horse battery stapler', settings);
    await expect(attempt).rejects.toThrow(WrongPassphrase);
    await expect(openKeyring('', settings)).rejects.toThrow('the passphrase does not unlock this volume');
  });

  it('re-wraps for a new passphrase: the new one opens the same keys, the old one no longer does', async () => {
    const { keyring, settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const rewrapped = await rewrapKeyring(PASSPHRASE, 'new passphrase', settings);
    expect(rewrapped.keyCheck).toBe(settings.keyCheck);
    expect(rewrapped.salt).not.toBe(settings.salt);
    expect(rewrapped.wrappedKey).not.toBe(settings.wrappedKey);
    expect(sameKeys(keyring, await openKeyring('new passphrase', rewrapped))).toBe(true);
    await expect(openKeyring(PASSPHRASE, rewrapped)).rejects.toThrow(WrongPassphrase);
    await expect(rewrapKeyring('not it', 'other', settings)).rejects.toThrow(WrongPassphrase);
  });

  it('re-wrap can move a volume to another KDF', async () => {
    const scrypt: KdfSettings = { id: 'scrypt', cost: 1024, blockSize: 8, parallelism: 1 };
    const { keyring, settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const moved = await rewrapKeyring(PASSPHRASE, PASSPHRASE, settings, { kdf: scrypt });
    expect(moved.kdf).toEqual(scrypt);
    expect(sameKeys(keyring, await openKeyring(PASSPHRASE, moved))).toBe(true);
  });

  it('treats a string and its UTF-8 bytes, and NFC/NFD forms, as the same passphrase', async () => {
    const { keyring, settings } = await createKeyring('caf\u00e9', { kdf: CHEAP_KDF });
    expect(sameKeys(keyring, await openKeyring(Buffer.from('caf\u00e9', 'utf8'), settings))).toBe(true);
    expect(sameKeys(keyring, await openKeyring('cafe\u0301', settings))).toBe(true);
  });

  it('refuses an empty new passphrase', async () => {
    await expect(createKeyring('', { kdf: CHEAP_KDF })).rejects.toThrow(ConfigError);
    const { settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    await expect(rewrapKeyring(PASSPHRASE, Buffer.alloc(0), settings)).rejects.toThrow(/the passphrase is empty/);
  });

  it('refuses malformed or hostile settings with a message naming the problem', async () => {
    const { settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const bad = (over: object) => openKeyring(PASSPHRASE, { ...settings, ...over } as CryptSettings);
    await expect(bad({ kdf: { id: 'pbkdf2' } })).rejects.toThrow(/crypt settings are malformed: unknown KDF "pbkdf2"/);
    await expect(bad({ kdf: { ...CHEAP_KDF, memoryKiB: 2 ** 30 } })).rejects.toThrow(/memoryKiB must be/);
    await expect(bad({ cipher: 'rot13' })).rejects.toThrow(IntegrityError);
    await expect(bad({ salt: 7 })).rejects.toThrow(/salt is not a base64 string/);
    await expect(createKeyring(PASSPHRASE, { kdf: { id: 'scrypt', cost: 1000, blockSize: 8, parallelism: 1 } })).rejects.toThrow(
      /power of two/,
    );
  });

  it('detects a key check that does not belong to the wrapped key', async () => {
    const { settings } = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    const other = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    await expect(openKeyring(PASSPHRASE, { ...settings, keyCheck: other.settings.keyCheck })).rejects.toThrow(
      /fails the key check/,
    );
  });

  it('works with the default KDF (Argon2id, 64 MiB, 3 passes, 4 lanes)', async () => {
    expect(DEFAULT_KDF).toEqual({ id: 'argon2id', memoryKiB: 65536, passes: 3, parallelism: 4 });
    const { keyring, settings } = await createKeyring(PASSPHRASE);
    expect(settings.kdf).toEqual(DEFAULT_KDF);
    expect(sameKeys(keyring, await openKeyring(PASSPHRASE, settings))).toBe(true);
  });
});
