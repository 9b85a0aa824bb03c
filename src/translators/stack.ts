import { ConfigError } from '../backends/errors.js';
import type { Logger } from 'pino';
import type { KvStore } from '../backends/kv-store.js';
import type { BlockStore } from './block-store.js';
import { CryptBlockStore } from './crypt/crypt-block-store.js';
import { EncryptedKvStore } from './crypt/encrypted-kv-store.js';
import type { CryptSettings, Keyring } from './crypt/keyring.js';
import { createCodec } from './erasure/codec.js';
import { ErasureBlockStore } from './erasure/erasure-block-store.js';
import { OffloadPool } from './offload/offload-pool.js';
import { RawBlockStore } from './raw-block-store.js';

/** Erasure coding of a volume, as stored in the superblock. */
export interface ErasureSettings {
  /** Data fragments per block, 1..24. */
  readonly k: number;
  /** Parity fragments per block, 1..6: up to m lost fragments are survived. */
  readonly m: number;
  /** Codec id (see erasure/codec.ts); fixed for the volume's life. */
  readonly codec: string;
  /**
   * Blocks shorter than this many bytes are written as m+1 whole copies. Default
   * DEFAULT_REPLICATE_BELOW (16 KiB). Only affects writes: each ref says its own layout.
   */
  readonly replicateBelow?: number;
}

/** The translator stack of a volume: plain data stored in the superblock. */
export interface TranslatorSettings {
  readonly crypt?: CryptSettings;
  readonly erasure?: ErasureSettings;
}

/**
 * Builds the data path for a volume: on write crypt -> erasure -> raw (parity is computed over
 * ciphertext, so repair needs no key); reads reverse it. Every stack detects a corrupt block:
 * crypt authenticates, erasure checksums each fragment, and raw alone keeps an XXH64. The
 * result's maxBlockBytes accounts for every layer's overhead.
 * @param keyring the unlocked keyring; required exactly when `settings.crypt` is set
 * @param keyPrefix prefix of the volume's block keys, e.g. `<volume>:b:`
 * @param offload worker pool for crypt's and erasure's CPU work, off the calling thread; default
 *   a new pool (its threads start on first use and end when idle); `false` keeps all of it on the
 *   calling thread
 * @param log where erasure reports blocks stored without fragments on unreachable servers
 * @throws ConfigError when the keyring is missing (or given for a plain volume), or the erasure
 *   settings name an unknown codec or bad k/m
 */
export function buildBlockStack(
  settings: TranslatorSettings,
  keyring: Keyring | undefined,
  kvStore: KvStore,
  keyPrefix: string,
  offload: OffloadPool | false = settings.crypt || settings.erasure ? new OffloadPool() : false,
  log?: Logger,
): BlockStore {
  checkKeyring(settings, keyring);
  const pool = offload === false ? undefined : offload;
  // With neither crypt nor erasure above it, raw is the only layer that can notice bit rot.
  const raw = new RawBlockStore(kvStore, keyPrefix, { checksum: !settings.crypt && !settings.erasure });
  let store: BlockStore = raw;
  if (settings.erasure) {
    const { k, m, codec, replicateBelow } = settings.erasure;
    store = new ErasureBlockStore(raw, { codec: createCodec(codec, k, m), replicateBelow, offload: pool, log });
  }
  if (settings.crypt && keyring) store = new CryptBlockStore(store, keyring.blockKey, pool);
  return store;
}

/**
 * The metadata store of a volume: values encrypted under the metadata key when the volume is
 * encrypted (keys for which `isClear` holds, such as the superblock's, stay in clear), the
 * store itself otherwise.
 * @throws ConfigError as {@link buildBlockStack}
 */
export function buildMetadataStore(
  settings: TranslatorSettings,
  keyring: Keyring | undefined,
  kvStore: KvStore,
  isClear: (key: string) => boolean,
): KvStore {
  checkKeyring(settings, keyring);
  return settings.crypt && keyring ? new EncryptedKvStore(kvStore, keyring.metadataKey, { exclude: isClear }) : kvStore;
}

/** One line for messages and `voldfs stat`, e.g. `crypt(aes-256-gcm, argon2id) -> erasure(4+2, ronomon-rs6) -> raw`. */
export function describeStack(settings: TranslatorSettings): string {
  const layers: string[] = [];
  if (settings.crypt) layers.push(`crypt(${settings.crypt.cipher}, ${settings.crypt.kdf.id})`);
  if (settings.erasure) {
    const { k, m, codec } = settings.erasure;
    layers.push(`erasure(${k}+${m}, ${codec})`);
  }
  layers.push('raw');
  return layers.join(' -> ');
}

function checkKeyring(settings: TranslatorSettings, keyring: Keyring | undefined): void {
  if (settings.crypt && !keyring) {
    throw new ConfigError('this volume is encrypted: give its passphrase to open it');
  }
  if (!settings.crypt && keyring) {
    throw new ConfigError('a passphrase was given but this volume is not encrypted: open it without one');
  }
}
