import { createSecretKey, hkdf, randomBytes, scrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { hashRaw, type Algorithm } from '@node-rs/argon2';
import { ConfigError, IntegrityError } from '../../backends/errors.js';
import { KEY_BYTES, open, seal } from './aead.js';

/**
 * Passphrase -> KDF -> key-encryption key (KEK) -> unwraps a random 256-bit master key ->
 * HKDF-SHA256 subkeys for block data and for metadata. Changing the passphrase re-wraps the
 * master key only, so no data is re-encrypted. Keys never leave this module as plain bytes:
 * a {@link Keyring} holds node KeyObjects, which neither print nor serialize their material.
 */

/** Key-derivation function and its cost, stored in the superblock with the salt. */
export type KdfSettings =
  | {
      readonly id: 'argon2id';
      /** Memory in KiB (argon2 `m`). */
      readonly memoryKiB: number;
      /** Passes over memory (argon2 `t`). */
      readonly passes: number;
      /** Lanes (argon2 `p`). */
      readonly parallelism: number;
    }
  | {
      readonly id: 'scrypt';
      /** CPU/memory cost `N`, a power of two. */
      readonly cost: number;
      /** Block size `r`. */
      readonly blockSize: number;
      /** Parallelism `p`. */
      readonly parallelism: number;
    };

/**
 * Default KDF: Argon2id with RFC 9106's second recommended setting (64 MiB, 3 passes, 4 lanes),
 * ~0.1-0.3 s on this project's 2-core machine. scrypt (N=2^17, r=8, p=1: 128 MiB, ~0.4 s here)
 * is also accepted, for volumes created with it.
 */
export const DEFAULT_KDF: KdfSettings = Object.freeze({
  id: 'argon2id',
  memoryKiB: 65536,
  passes: 3,
  parallelism: 4,
});

/** What the superblock stores for crypt: plain data only (strings are base64). */
export interface CryptSettings {
  readonly cipher: 'aes-256-gcm';
  readonly kdf: KdfSettings;
  /** KDF salt, 16 random bytes, base64. Replaced on every re-wrap. */
  readonly salt: string;
  /** The master key sealed with the KEK (AES-256-GCM: nonce || key || tag), base64. */
  readonly wrappedKey: string;
  /** HKDF(master, "key-check") truncated to 16 bytes, base64: proves the unwrapped key is this volume's. */
  readonly keyCheck: string;
}

/** Subkeys a mounted volume uses. */
export interface Keyring {
  /** AES-256-GCM key for block data (crypt translator). */
  readonly blockKey: KeyObject;
  /** AES-256-GCM key for metadata records (EncryptedKvStore). */
  readonly metadataKey: KeyObject;
}

/** The passphrase given does not unlock the volume's master key. */
export class WrongPassphrase extends Error {
  constructor() {
    super('the passphrase does not unlock this volume');
    this.name = 'WrongPassphrase';
  }
}

export interface KeyringOptions {
  /** KDF for the new wrapping. Default {@link DEFAULT_KDF}; tests pass a cheap one. */
  readonly kdf?: KdfSettings;
}

const SALT_BYTES = 16;
const CHECK_BYTES = 16;
const WRAP_AAD = Buffer.from('voldfs keyring v1: wrapped master key');
const INFO_BLOCK = 'voldfs v1 block data';
const INFO_METADATA = 'voldfs v1 metadata';
const INFO_CHECK = 'voldfs v1 key check';
const INFO_DUMP = 'voldfs v1 dump';
// @node-rs/argon2 exports Algorithm as a const enum, which esbuild-based runners cannot inline.
const ARGON2ID = 2 as Algorithm;

const scryptAsync = promisify(scrypt) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;
const hkdfAsync = promisify(hkdf);

/**
 * Makes a new random master key wrapped under `passphrase`.
 * @throws ConfigError for an empty passphrase or KDF parameters out of range
 */
export async function createKeyring(
  passphrase: string | Buffer,
  options: KeyringOptions = {},
): Promise<{ keyring: Keyring; settings: CryptSettings }> {
  const master = randomBytes(KEY_BYTES);
  try {
    const kdf = options.kdf ?? DEFAULT_KDF;
    checkKdf(kdf, (msg) => new ConfigError(msg));
    const settings: CryptSettings = {
      cipher: 'aes-256-gcm',
      ...(await wrap(master, newPassphrase(passphrase), kdf)),
      keyCheck: (await subkeyBytes(master, INFO_CHECK, CHECK_BYTES)).toString('base64'),
    };
    return { keyring: await deriveKeyring(master), settings };
  } finally {
    master.fill(0);
  }
}

/**
 * Unlocks a volume's keyring.
 * @throws WrongPassphrase if the passphrase does not unwrap the master key;
 *   IntegrityError if the settings are malformed or inconsistent
 */
export async function openKeyring(passphrase: string | Buffer, settings: CryptSettings): Promise<Keyring> {
  const master = await unwrap(passphrase, settings);
  try {
    return await deriveKeyring(master);
  } finally {
    master.fill(0);
  }
}

/**
 * Re-wraps the master key under a new passphrase (`voldfs passwd`): only salt, KDF and
 * wrapped key change; the key check and every block stay as they are.
 * @throws WrongPassphrase if `oldPassphrase` does not unlock the volume; ConfigError for an
 *   empty new passphrase
 */
export async function rewrapKeyring(
  oldPassphrase: string | Buffer,
  newPassphrase_: string | Buffer,
  settings: CryptSettings,
  options: KeyringOptions = {},
): Promise<CryptSettings> {
  const fresh = newPassphrase(newPassphrase_);
  const kdf = options.kdf ?? settings.kdf;
  checkKdf(kdf, (msg) => new ConfigError(msg));
  const master = await unwrap(oldPassphrase, settings);
  try {
    return { ...settings, ...(await wrap(master, fresh, kdf)) };
  } finally {
    master.fill(0);
  }
}

/**
 * The key that seals one ciphertext dump (`voldfs dump --ciphertext`): HKDF of the master key
 * with the dump's random id as salt, so no two dumps share a key, and a dump opens only with
 * the passphrase of the volume it came from (its settings travel in the dump's header).
 * @throws WrongPassphrase if the passphrase does not unlock `settings`; IntegrityError if the
 *   settings are malformed
 */
export async function dumpKey(passphrase: string | Buffer, settings: CryptSettings, dumpId: Buffer): Promise<KeyObject> {
  const master = await unwrap(passphrase, settings);
  try {
    return createSecretKey(Buffer.from(await hkdfAsync('sha256', master, dumpId, INFO_DUMP, KEY_BYTES)));
  } finally {
    master.fill(0);
  }
}

async function wrap(master: Buffer, passphrase: Buffer, kdf: KdfSettings) {
  const salt = randomBytes(SALT_BYTES);
  const kek = await deriveKek(passphrase, salt, kdf);
  return { kdf, salt: salt.toString('base64'), wrappedKey: seal(kek, master, WRAP_AAD).toString('base64') };
}

async function unwrap(passphrase: string | Buffer, settings: CryptSettings): Promise<Buffer> {
  checkSettings(settings);
  const kek = await deriveKek(toBytes(passphrase), Buffer.from(settings.salt, 'base64'), settings.kdf);
  let master: Buffer;
  try {
    master = open(kek, Buffer.from(settings.wrappedKey, 'base64'), WRAP_AAD, 'the wrapped master key');
  } catch (err) {
    if (err instanceof IntegrityError) throw new WrongPassphrase();
    throw err;
  }
  const check = await subkeyBytes(master, INFO_CHECK, CHECK_BYTES);
  const stored = Buffer.from(settings.keyCheck, 'base64');
  if (stored.length !== check.length || !timingSafeEqual(stored, check)) {
    master.fill(0);
    throw new IntegrityError(
      "the superblock's crypt settings are inconsistent: the unwrapped key fails the key check",
    );
  }
  return master;
}

async function deriveKek(passphrase: Buffer, salt: Buffer, kdf: KdfSettings): Promise<KeyObject> {
  let raw: Buffer;
  if (kdf.id === 'argon2id') {
    raw = await hashRaw(passphrase, {
      algorithm: ARGON2ID,
      memoryCost: kdf.memoryKiB,
      timeCost: kdf.passes,
      parallelism: kdf.parallelism,
      outputLen: KEY_BYTES,
      salt,
    });
  } else {
    const { cost: N, blockSize: r, parallelism: p } = kdf;
    raw = await scryptAsync(passphrase, salt, KEY_BYTES, { N, r, p, maxmem: 128 * N * r * (p + 1) + (1 << 20) });
  }
  const key = createSecretKey(raw);
  raw.fill(0);
  return key;
}

async function deriveKeyring(master: Buffer): Promise<Keyring> {
  const keyring: Keyring = {
    blockKey: createSecretKey(await subkeyBytes(master, INFO_BLOCK, KEY_BYTES)),
    metadataKey: createSecretKey(await subkeyBytes(master, INFO_METADATA, KEY_BYTES)),
  };
  return Object.freeze(keyring);
}

async function subkeyBytes(master: Buffer, info: string, length: number): Promise<Buffer> {
  return Buffer.from(await hkdfAsync('sha256', master, Buffer.alloc(0), info, length));
}

function toBytes(passphrase: string | Buffer): Buffer {
  // NFC so that the same passphrase typed on differently-normalizing terminals matches.
  return typeof passphrase === 'string' ? Buffer.from(passphrase.normalize('NFC'), 'utf8') : passphrase;
}

function newPassphrase(passphrase: string | Buffer): Buffer {
  const bytes = toBytes(passphrase);
  if (bytes.length === 0) {
    throw new ConfigError('the passphrase is empty: choose a non-empty passphrase to encrypt the volume');
  }
  return bytes;
}

const inRange = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Bounds keep a hostile superblock from demanding absurd memory or time. */
function checkKdf(kdf: KdfSettings, fail: (msg: string) => Error): void {
  if (kdf?.id === 'argon2id') {
    if (!inRange(kdf.parallelism, 1, 64)) throw fail('argon2id parallelism must be 1..64');
    if (!inRange(kdf.memoryKiB, 8 * kdf.parallelism, 4 * 1024 * 1024)) {
      throw fail('argon2id memoryKiB must be between 8 x parallelism and 4194304 (4 GiB)');
    }
    if (!inRange(kdf.passes, 1, 64)) throw fail('argon2id passes must be 1..64');
  } else if (kdf?.id === 'scrypt') {
    const { cost, blockSize, parallelism } = kdf;
    if (!inRange(cost, 2, 2 ** 22) || (cost & (cost - 1)) !== 0) {
      throw fail('scrypt cost (N) must be a power of two up to 2^22');
    }
    if (!inRange(blockSize, 1, 32)) throw fail('scrypt blockSize (r) must be 1..32');
    if (!inRange(parallelism, 1, 16)) throw fail('scrypt parallelism (p) must be 1..16');
  } else {
    throw fail(`unknown KDF ${JSON.stringify((kdf as { id?: unknown })?.id)}: expected argon2id or scrypt`);
  }
}

function checkSettings(settings: CryptSettings): void {
  const fail = (msg: string) => new IntegrityError(`the superblock's crypt settings are malformed: ${msg}`);
  if (settings?.cipher !== 'aes-256-gcm') throw fail(`unknown cipher ${JSON.stringify(settings?.cipher)}`);
  checkKdf(settings.kdf, fail);
  for (const field of ['salt', 'wrappedKey', 'keyCheck'] as const) {
    if (typeof settings[field] !== 'string') throw fail(`${field} is not a base64 string`);
  }
}
