import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { patternBytes } from '../../helpers/pattern.js';
import { MemoryStore, type MemoryStoreOptions } from '../../../src/backends/memory/index.js';
import type { BlockContext, BlockStore } from '../../../src/translators/block-store.js';
import { createKeyring, type KdfSettings, type Keyring } from '../../../src/translators/crypt/keyring.js';
import { RONOMON_CODEC_ID } from '../../../src/translators/erasure/codec.js';
import { buildBlockStack, type ErasureSettings, type TranslatorSettings } from '../../../src/translators/stack.js';

/** Argon2id at its minimum cost: keeps keyring tests fast; the default KDF has its own test. */
export const CHEAP_KDF: KdfSettings = { id: 'argon2id', memoryKiB: 64, passes: 1, parallelism: 1 };
export const PASSPHRASE = 'correct horse battery staple';
export const BLOCK_PREFIX = 'v1:b:';

export const ERASURE_4_2: ErasureSettings = { k: 4, m: 2, codec: RONOMON_CODEC_ID };

export function context(over: Partial<BlockContext> = {}): BlockContext {
  return { volumeId: '9f3c01d2', ino: 42, chunkIndex: 7, ...over };
}

export const contextArb: fc.Arbitrary<BlockContext> = fc.record({
  volumeId: fc.stringMatching(/^[0-9a-f]{1,32}$/),
  ino: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  chunkIndex: fc.nat({ max: 2 ** 40 }),
});

/** Deterministic pseudo-random bytes, so a failing property replays exactly. */
export function bytes(length: number, seed = 1): Buffer {
  return patternBytes(length, seed);
}

export type StackKind = 'raw' | 'crypt' | 'erasure' | 'crypt+erasure';
export const STACK_KINDS: readonly StackKind[] = ['raw', 'crypt', 'erasure', 'crypt+erasure'];

export interface Fixture {
  readonly store: MemoryStore;
  readonly blocks: BlockStore;
  readonly settings: TranslatorSettings;
  readonly keyring?: Keyring;
}

export async function makeStack(
  kind: StackKind,
  storeOptions: MemoryStoreOptions = {},
  erasure: ErasureSettings = ERASURE_4_2,
): Promise<Fixture> {
  const store = new MemoryStore(storeOptions);
  let keyring: Keyring | undefined;
  let settings: TranslatorSettings = {};
  if (kind.includes('crypt')) {
    const made = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
    keyring = made.keyring;
    settings = { crypt: made.settings };
  }
  if (kind.includes('erasure')) settings = { ...settings, erasure };
  return { store, blocks: buildBlockStack(settings, keyring, store, BLOCK_PREFIX), settings, keyring };
}

/** Every record of the store whose key starts with `prefix`, with its value. */
export async function records(store: MemoryStore, prefix = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const key of store.scan(prefix)) {
    const found = await store.get(key);
    if (found) out.set(key, found.value);
  }
  return out;
}

/** Key -> SHA-256 of value, for fast whole-store comparisons. */
export async function fingerprint(store: MemoryStore, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [key, value] of await records(store, prefix)) out[key] = createHash('sha256').update(value).digest('hex');
  return out;
}
