/**
 * The store contracts through the translators, on real stores.
 *
 * Metadata path of an encrypted volume: the KvStore contract over EncryptedKvStore, on LMDB
 * (native commit) and on memcached through withAtomicCommit (intent records), stacked as a
 * volume stacks them (src/translators/stack.ts buildMetadataStore over src/cli/open-store.ts),
 * so conditions, versions, commit and scan survive encryption; plus what encryption itself
 * promises there (no value in clear, a record moved under another key fails).
 *
 * Data path: the BlockStore contract over raw, crypt, erasure 4+2 and crypt+erasure, each on
 * LMDB and on a pool of six memcached servers (fragments on distinct servers).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/backends/errors.js';
import { LMDB_MAX_VALUE_BYTES, LmdbStore } from '../../src/backends/lmdb/index.js';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import { IF_ABSENT, type KvStore } from '../../src/backends/kv-store.js';
import { ENVELOPE_OVERHEAD } from '../../src/cas/intent-codec.js';
import { withAtomicCommit } from '../../src/cas/intent-store.js';
import { AEAD_OVERHEAD } from '../../src/translators/crypt/aead.js';
import { createKeyring, type CryptSettings, type KdfSettings, type Keyring } from '../../src/translators/crypt/keyring.js';
import { DEFAULT_REPLICATE_BELOW } from '../../src/translators/erasure/erasure-block-store.js';
import { RONOMON_CODEC_ID } from '../../src/translators/erasure/codec.js';
import { buildBlockStack, buildMetadataStore, type TranslatorSettings } from '../../src/translators/stack.js';
import { silentLog } from '../helpers/intent-fixture.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { describeBlockStoreContract, type ExpectedBlockStore } from './block-store-contract.js';
import { describeKvStoreContract } from './kv-store-contract.js';

/** Argon2id at its minimum cost: the KDF is not under test here. */
const CHEAP_KDF: KdfSettings = { id: 'argon2id', memoryKiB: 64, passes: 1, parallelism: 1 };
/** -I 1m: 1048576 bytes per item, minus 250 for the longest key and 59 of item overhead. */
const MC_MAX_VALUE_BYTES = 1_048_576 - 250 - 59;
const MC_TIMEOUT_MS = 2000;
const K = 4;
const M = 2;
/** Erasure fragments are whole multiples of the codec's 8-byte alignment. */
const ALIGNMENT = 8;

let keyringMade: Promise<{ keyring: Keyring; settings: CryptSettings }> | undefined;
/** One keyring for the whole file: the KDF is slow on purpose, and not what is tested here. */
function testKeyring(): Promise<{ keyring: Keyring; settings: CryptSettings }> {
  keyringMade ??= createKeyring('translator stacks contract', { kdf: CHEAP_KDF });
  return keyringMade;
}

let lmdbDir = '';
let lmdbOpened = 0;
beforeAll(async () => {
  lmdbDir = await makeTempDir('translator-stacks');
});
afterAll(async () => {
  if (lmdbDir) await removeTempDir(lmdbDir);
});
const freshLmdb = (): Promise<KvStore> => LmdbStore.open({ path: join(lmdbDir, `store-${lmdbOpened++}`) });

function openMemcached(pool: MemcachedPool | undefined): Promise<KvStore> {
  if (!pool) throw new Error('memcached servers did not start');
  return memcachedBackend.create(
    memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_MC_TIMEOUT_MS: String(MC_TIMEOUT_MS) }),
  );
}

/** The metadata store of an encrypted volume over `inner`, as Volume builds it. */
async function encryptedMeta(inner: KvStore, clearKey = '\0no clear key'): Promise<KvStore> {
  const { keyring, settings } = await testKeyring();
  return buildMetadataStore({ crypt: settings }, keyring, inner, (key) => key === clearKey);
}

describe('metadata path: EncryptedKvStore over LMDB', () => {
  describeKvStoreContract('encrypted metadata on lmdb', {
    open: async () => encryptedMeta(await freshLmdb()),
    expected: {
      maxValueBytes: LMDB_MAX_VALUE_BYTES - AEAD_OVERHEAD,
      atomicCommit: true,
      scan: true,
      maxCommitOps: 1024,
      domains: 1,
    },
  });

  encryptionChecks('lmdb', async () => {
    const inner = await freshLmdb();
    return { inner, meta: await encryptedMeta(inner, 'enc:sb') };
  });
});

describe('metadata path: EncryptedKvStore over intent commits on memcached (pool of three)', () => {
  let pool: MemcachedPool | undefined;
  beforeAll(async () => {
    pool = await startMemcachedServers(3, { memoryMb: 64 });
  });
  afterAll(async () => {
    await pool?.stop();
  });

  encryptionChecks('memcached', async () => {
    const inner = await openMemcached(pool);
    return { inner, meta: await encryptedMeta(withAtomicCommit(inner, { log: silentLog }), 'enc:sb') };
  });

  // Last: its final test stops every server of this pool.
  describeKvStoreContract('encrypted metadata on memcached, intent commits', {
    open: async () => encryptedMeta(withAtomicCommit(await openMemcached(pool), { log: silentLog })),
    breakStore: async () => {
      await Promise.all(pool?.servers.map((s) => s.stop('SIGKILL')) ?? []);
    },
    expected: {
      maxValueBytes: Math.floor((MC_MAX_VALUE_BYTES - ENVELOPE_OVERHEAD) / 2) - AEAD_OVERHEAD,
      atomicCommit: true,
      scan: true,
      domains: 3,
    },
    unavailableWithinMs: MC_TIMEOUT_MS,
  });
});

/**
 * What encryption adds to the contract, seen from the store below it (`inner`: for memcached
 * the raw servers, under the intent layer).
 */
function encryptionChecks(label: string, open: () => Promise<{ inner: KvStore; meta: KvStore }>): void {
  describe(`encryption on ${label}`, () => {
    const MARKER = 'METADATA-PLAINTEXT-MARKER';

    it('no value reaches the store in clear, through put and commit; excluded keys stay clear', async () => {
      const { inner, meta } = await open();
      try {
        const p = `enc:${randomBytes(4).toString('hex')}:`;
        await meta.put(`${p}put`, Buffer.from(`${MARKER} put`));
        if (!meta.commit) throw new Error('the metadata store must have commit');
        expect(
          await meta.commit([
            { key: `${p}c1`, value: Buffer.from(`${MARKER} c1`), condition: IF_ABSENT },
            { key: `${p}c2`, value: Buffer.from(`${MARKER} c2`), condition: IF_ABSENT },
          ]),
        ).toBe(true);
        await meta.put('enc:sb', Buffer.from('superblock in clear'));
        const keys: string[] = [];
        for await (const key of inner.scan?.('') ?? []) keys.push(key);
        expect(keys.filter((key) => key.startsWith(p)).sort()).toEqual([`${p}c1`, `${p}c2`, `${p}put`]);
        const values = await inner.getMany(keys);
        const dump = Buffer.concat(values.map((v) => v?.value ?? Buffer.alloc(0)));
        expect(dump.includes(Buffer.from(MARKER))).toBe(false);
        expect(dump.includes(Buffer.from('superblock in clear'))).toBe(true);
        expect((await meta.get(`${p}c2`))?.value.toString()).toBe(`${MARKER} c2`);
      } finally {
        await meta.close();
      }
    });

    it('a record copied under another key fails authentication with IntegrityError', async () => {
      const { inner, meta } = await open();
      try {
        const p = `enc:${randomBytes(4).toString('hex')}:`;
        await meta.put(`${p}a`, Buffer.from('inode of a'));
        await meta.put(`${p}b`, Buffer.from('inode of b'));
        // Copy the stored bytes through the same layers the volume uses, minus encryption:
        // on memcached the intent layer's tag byte must stay as it is.
        const below = label === 'memcached' ? withAtomicCommit(inner, { log: silentLog }) : inner;
        const sealed = await below.get(`${p}a`);
        if (!sealed) throw new Error('record a is missing below the encryption');
        await below.put(`${p}b`, sealed.value);
        await expect(meta.get(`${p}b`)).rejects.toBeInstanceOf(IntegrityError);
        await expect(meta.getMany([`${p}a`, `${p}b`])).rejects.toBeInstanceOf(IntegrityError);
        expect((await meta.get(`${p}a`))?.value.toString()).toBe('inode of a');
      } finally {
        await meta.close();
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Data path.

type StackKind = 'raw' | 'crypt' | 'erasure 4+2' | 'crypt+erasure 4+2';
const STACKS: readonly StackKind[] = ['raw', 'crypt', 'erasure 4+2', 'crypt+erasure 4+2'];

async function settingsOf(kind: StackKind): Promise<{ settings: TranslatorSettings; keyring?: Keyring }> {
  let settings: TranslatorSettings = {};
  let keyring: Keyring | undefined;
  if (kind.startsWith('crypt')) {
    const made = await testKeyring();
    keyring = made.keyring;
    settings = { crypt: made.settings };
  }
  if (kind.includes('erasure')) settings = { ...settings, erasure: { k: K, m: M, codec: RONOMON_CODEC_ID } };
  return { settings, keyring };
}

function expectedOf(kind: StackKind, storeMaxValue: number): ExpectedBlockStore {
  const erasure = kind.includes('erasure');
  const crypt = kind.startsWith('crypt');
  const base = erasure ? K * Math.floor(storeMaxValue / ALIGNMENT) * ALIGNMENT : storeMaxValue;
  return {
    maxBlockBytes: base - (crypt ? AEAD_OVERHEAD : 0),
    reconstructs: erasure,
    bindsContext: crypt,
    recordsPerBlock: (length) => {
      if (!erasure) return 1;
      return length + (crypt ? AEAD_OVERHEAD : 0) < DEFAULT_REPLICATE_BELOW ? M + 1 : K + M;
    },
  };
}

describe('data path on LMDB', () => {
  for (const kind of STACKS) {
    describeBlockStoreContract(`${kind} on lmdb`, {
      openStore: freshLmdb,
      stack: async (store, prefix) => {
        const { settings, keyring } = await settingsOf(kind);
        return buildBlockStack(settings, keyring, store, prefix);
      },
      expected: expectedOf(kind, LMDB_MAX_VALUE_BYTES),
      slowTestMs: 240_000,
    });
  }
});

describe('data path on a pool of six memcached servers', () => {
  let pool: MemcachedPool | undefined;
  beforeAll(async () => {
    pool = await startMemcachedServers(6, { memoryMb: 256 });
  });
  afterAll(async () => {
    await pool?.stop();
  });

  // Only the stacks that place fragments on several servers: raw and crypt go through the same
  // code on every store, which the LMDB runs above and each store's own contract cover.
  for (const kind of STACKS.filter((k) => k.includes('erasure'))) {
    describeBlockStoreContract(`${kind} on memcached x6`, {
      openStore: () => openMemcached(pool),
      stack: async (store, prefix) => {
        const { settings, keyring } = await settingsOf(kind);
        return buildBlockStack(settings, keyring, store, prefix);
      },
      expected: expectedOf(kind, MC_MAX_VALUE_BYTES),
    });
  }

  it('erasure 4+2 puts the six fragments of a block on six distinct servers', async () => {
    const store = await openMemcached(pool);
    try {
      const prefix = `place:${randomBytes(4).toString('hex')}:b:`;
      const { settings, keyring } = await settingsOf('crypt+erasure 4+2');
      const blocks = buildBlockStack(settings, keyring, store, prefix);
      for (let i = 0; i < 8; i++) {
        await blocks.put(`blk${i}`, Buffer.alloc(200_000 + i, i), { volumeId: 'v', ino: 2, chunkIndex: i });
      }
      const byBlock = new Map<string, Set<number>>();
      for await (const key of store.scan?.(prefix) ?? []) {
        const block = /^.*:b:(blk\d+)\./.exec(key)?.[1] ?? key;
        const servers = byBlock.get(block) ?? new Set<number>();
        servers.add(store.capabilities.placement.domainOf(key));
        byBlock.set(block, servers);
      }
      expect(byBlock.size).toBe(8);
      for (const [block, servers] of byBlock) expect(servers.size, block).toBe(K + M);
    } finally {
      await store.close();
    }
  });
});
