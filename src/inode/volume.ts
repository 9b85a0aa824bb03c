import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ConfigError, IntegrityError } from '../backends/errors.js';
import type { KvStore } from '../backends/kv-store.js';
import { CommitQueue, type QueuedOptions } from '../cas/commit-queue.js';
import { QueuedView } from '../cas/queued-view.js';
import { RecordCache } from '../cas/record-cache.js';
import type { Transaction } from '../cas/transaction.js';
import type { ReplicatedStore } from '../backends/wrappers/replicated-store.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import { FileData } from '../chunk/file-data.js';
import type { BlockStore } from '../translators/block-store.js';
import { createKeyring, openKeyring, type Keyring } from '../translators/crypt/keyring.js';
import { RONOMON_CODEC_ID } from '../translators/erasure/codec.js';
import { NO_TRANSLATORS, describeRequest, requestOf, sameRequest, type TranslatorRequest } from '../translators/request.js';
import { buildBlockStack, buildMetadataStore, describeStack, type TranslatorSettings } from '../translators/stack.js';
import { DirectoryTree } from './directory-tree.js';
import { FsError } from './fs-error.js';
import { GarbageCollector } from './garbage.js';
import { InodeAllocator } from './inode-allocator.js';
import { LossDetector } from './loss-detector.js';
import { DEFAULT_MEMORY_BYTES, shareMemory } from './memory-ceiling.js';
import { VolumeKeys } from './keys.js';
import { ROOT_INO, S_IFDIR, type InodeRecord, type SuperblockRecord } from './records.js';
import { now } from './timespec.js';

/** 2: files have a chunk index (src/chunk/chunk-index.ts), which format 1 volumes lack. */
export const VOLUME_FORMAT = 2;
const MAX_CHUNK = 1024 * 1024;

/** Where a volume lives and how to unlock it. */
export interface VolumeStores {
  /** Store of metadata records (inodes, directories, chunk maps): needs `commit`. */
  readonly store: KvStore;
  /**
   * Store of immutable blocks; default `store`. Blocks are written once and never take part
   * in a multi-key commit, so they may bypass the intent layer (and its halved value limit).
   */
  readonly dataStore?: KvStore;
  /** Key prefix of the volume's records, e.g. `voldfs:`. */
  readonly prefix: string;
  /** Asked only when the volume is (or is to be) encrypted. */
  readonly passphrase?: () => Promise<string>;
  /** KDF cost for new keyrings (tests use a cheap one); default the keyring's own. */
  readonly kdf?: Parameters<typeof createKeyring>[1];
  /**
   * The layer under `store` that keeps metadata copies on several domains, when the store
   * has several (cli/open-store.ts); its copy count is set from the superblock. A volume
   * that records copies cannot be opened without it (its copies would go stale).
   */
  readonly replication?: ReplicatedStore;
  readonly log?: Logger;
}

export interface VolumeOptions extends VolumeStores {
  readonly log: Logger;
  /** Attribute / entry cache lifetime, ms. */
  readonly cacheTtlMs?: number;
  readonly graceMs?: number;
  /**
   * Ceiling of the mount's caches and buffers, shared out by {@link shareMemory}. Default
   * {@link DEFAULT_MEMORY_BYTES}.
   */
  readonly memoryBytes?: number;
  /** Bytes of file blocks kept in memory for reads; default half of `memoryBytes`. */
  readonly blockCacheBytes?: number;
  /** Chunks up to this size live in their chunk map record; default FileData's, 0 never. */
  readonly inlineMaxBytes?: number;
  /** How long an operation answered before its commit may wait for one to share, ms. */
  readonly commitDelayMs?: number;
  /**
   * Translators asked for: used when an empty store is formatted, and checked against the
   * superblock of an existing volume (a mismatch is refused). Undefined: take the volume's.
   */
  readonly translators?: TranslatorRequest;
}

export class VolumeNotFormatted extends Error {}

/** A volume's stores with its translators applied: what every layer above works on. */
export interface OpenedVolume {
  readonly superblock: SuperblockRecord;
  /** Metadata store, encrypted when the volume is. */
  readonly meta: KvStore;
  readonly blocks: BlockStore;
  readonly keys: VolumeKeys;
}

/** A volume's parts by name: what {@link Volume.open} assembles from the superblock. */
type VolumeParts = Pick<
  Volume,
  'store' | 'log' | 'keys' | 'superblock' | 'cache' | 'dirs' | 'data' | 'allocator' | 'garbage' | 'blocks' | 'cacheTtlMs' | 'loss' | 'commits'
>;

/** Everything one mounted volume is made of. */
export class Volume {
  /** Metadata store, encrypted when the volume is. */
  readonly store: KvStore;
  readonly log: Logger;
  readonly keys: VolumeKeys;
  readonly superblock: SuperblockRecord;
  readonly cache: RecordCache;
  readonly dirs: DirectoryTree;
  readonly data: FileData;
  readonly allocator: InodeAllocator;
  readonly garbage: GarbageCollector;
  readonly blocks: BlockStore;
  /** How long this mount may serve cached records and names, ms. */
  readonly cacheTtlMs: number;
  /** Tells records the store lost from records that never existed. */
  readonly loss: LossDetector;
  /** Every metadata transaction of this mount goes through it: one commit for all in flight. */
  readonly commits: CommitQueue;

  private constructor(parts: VolumeParts) {
    this.store = parts.store;
    this.log = parts.log;
    this.keys = parts.keys;
    this.superblock = parts.superblock;
    this.cache = parts.cache;
    this.dirs = parts.dirs;
    this.data = parts.data;
    this.allocator = parts.allocator;
    this.garbage = parts.garbage;
    this.blocks = parts.blocks;
    this.cacheTtlMs = parts.cacheTtlMs;
    this.loss = parts.loss;
    this.commits = parts.commits;
  }

  /** Runs a metadata transaction through the commit queue (see {@link CommitQueue.transact}). */
  transact<T>(body: (tx: Transaction) => Promise<T>, options?: QueuedOptions): Promise<T> {
    return this.commits.transact(body, options);
  }

  /**
   * Opens the volume, formatting the store first when it holds no volume at all.
   * @throws IntegrityError when the superblock is missing but the volume's root is there (the
   *   store lost records: a restarted memcached), or the format is not this version's;
   *   ConfigError when the translators asked for differ from the volume's, or a passphrase is
   *   missing; WrongPassphrase
   */
  static async open(options: VolumeOptions, formatIfEmpty = true): Promise<Volume> {
    let opened = await unlock(options);
    if (!opened) {
      if (!formatIfEmpty) throw new VolumeNotFormatted(`no volume under "${options.prefix}": run voldfs mkfs`);
      opened = await format(options, options.translators ?? NO_TRANSLATORS, false);
    }
    const { superblock, meta, blocks, keys } = opened;
    const cacheTtlMs = options.cacheTtlMs ?? 1000;
    // lru-cache reads a ttl of 0 as "forever": never let "no caching" become that.
    const shares = shareMemory(options.memoryBytes ?? DEFAULT_MEMORY_BYTES, superblock.chunkSize);
    const cache = new RecordCache({ ttlMs: Math.max(1, cacheTtlMs), maxBytes: shares.recordCacheBytes });
    // Every insert rewrites a whole leaf: small leaves keep creates cheap in big directories.
    const loss = new LossDetector(meta, keys, { replicated: replicasOf(superblock) > 1 });
    const dirs = new DirectoryTree(keys, Math.min(8 * 1024, Math.floor(meta.capabilities.maxValueBytes / 4)), loss);
    const garbage = new GarbageCollector({ store: meta, keys, blocks, log: options.log, graceMs: options.graceMs });
    const commits = new CommitQueue(meta, cache, options.log, { deferMs: options.commitDelayMs });
    // Reads outside transactions (chunk maps, locks, listings) see what the queue holds.
    const view = new QueuedView(meta, commits);
    const data = new FileData({
      transact: (body, queued) => commits.transact(body, queued),
      store: view,
      cache,
      blocks,
      chunkKey: (ino, i) => keys.chunkMap(ino, i),
      indexKey: (ino, level, group) => keys.chunkIndex(ino, level, group),
      volumeId: superblock.volumeId,
      chunkSize: superblock.chunkSize,
      retire: (refs) => garbage.retire(refs),
      blockCacheBytes: options.blockCacheBytes ?? shares.blockCacheBytes,
      pooledBlocks: shares.pooledBlocks,
      writeBufferBytes: shares.writeBufferBytes,
      inlineMaxBytes: options.inlineMaxBytes,
      checkMissing: (key) => loss.checkMissing(key, 'chunk map'),
    });
    garbage.attach(data);
    const allocator = new InodeAllocator(meta, keys.inodeAllocator());
    return new Volume({
      store: view,
      log: options.log,
      keys,
      superblock,
      cache,
      dirs,
      data,
      allocator,
      garbage,
      blocks,
      cacheTtlMs,
      loss,
      commits,
    });
  }

  async close(): Promise<void> {
    await this.commits.close();
    await this.garbage.close();
  }
}

/**
 * Reads the superblock and applies the volume's translators (unlocking its keyring), or
 * returns undefined for a store that holds no volume under the prefix.
 */
export async function unlock(
  options: VolumeStores & { translators?: TranslatorRequest },
  refuseLostData = true,
): Promise<OpenedVolume | undefined> {
  const keys = new VolumeKeys(options.prefix);
  const superblock = await readSuperblock(options.store, keys);
  if (!superblock) {
    if (await options.store.get(keys.inode(ROOT_INO))) {
      throw new IntegrityError(
        `the store holds volume records under "${options.prefix}" but no superblock: it has lost data ` +
          '(a memcached restarted empty, or evicted records). Run `voldfs fsck` before mounting.',
      );
    }
    return undefined;
  }
  const settings = superblock.translators as TranslatorSettings;
  if (options.translators && !sameRequest(options.translators, requestOf(settings))) {
    throw new ConfigError(
      `the volume was made with translators ${describeRequest(requestOf(settings))} ` +
        `(${describeStack(settings)}), but ${describeRequest(options.translators)} was asked for: ` +
        'unset VOLDFS_TRANSLATORS or make it match',
    );
  }
  applyReplicas(options, superblock);
  const keyring = settings.crypt ? await openKeyring(await askPassphrase(options), settings.crypt) : undefined;
  const opened = assemble(options, keys, superblock, keyring);
  const lost = refuseLostData ? await new LossDetector(opened.meta, keys).lostDomains() : [];
  // With metadata copies, fewer lost domains than copies leave a copy of every record (and,
  // with m+1 copies, enough fragments of every block): the mount serves, fsck --repair refills.
  if (lost.length > 0 && lost.length < replicasOf(superblock)) {
    options.log?.warn({ lost }, 'store domains lost their data; the volume is served from the other copies: run voldfs fsck --repair');
  } else if (lost.length > 0) {
    throw new IntegrityError(
      `the store has lost data: domain(s) ${lost.join(', ')} (of ${opened.meta.capabilities.placement.domains}) ` +
        'no longer hold the volume\'s marker record (a server restarted empty?). Run `voldfs fsck --repair` before mounting.',
    );
  }
  return opened;
}

/** Metadata copies the volume keeps (1 when the superblock does not say). */
export function replicasOf(superblock: SuperblockRecord): number {
  return superblock.metaReplicas ?? 1;
}

/**
 * Gives the replication layer the volume's copy count.
 * @throws ConfigError when the volume keeps copies but the store was opened without the
 *   layer, or has fewer domains than copies (servers missing from the list)
 */
function applyReplicas(options: VolumeStores, superblock: SuperblockRecord): void {
  const replicas = replicasOf(superblock);
  if (!options.replication) {
    if (replicas > 1) {
      throw new ConfigError(
        `the volume keeps ${replicas} copies of its metadata on distinct servers, but the store was opened ` +
          'with one failure domain: list every server of the pool (VOLDFS_MC_SERVERS), in the order used at mkfs',
      );
    }
    return;
  }
  if (replicas > options.replication.domainCount) {
    throw new ConfigError(
      `the volume keeps ${replicas} copies of its metadata on distinct servers, but the store has only ` +
        `${options.replication.domainCount}: list every server of the pool (VOLDFS_MC_SERVERS), in the order used at mkfs`,
    );
  }
  options.replication.setReplicas(replicas);
}

/**
 * Copies of metadata a new volume keeps: m+1 on distinct domains for erasure k+m when the
 * store has several (so metadata survives the same m lost servers as blocks), else 1.
 */
function replicasFor(options: VolumeStores, settings: TranslatorSettings): number {
  const domains = options.replication?.domainCount ?? 1;
  return settings.erasure && domains > 1 ? Math.min(settings.erasure.m + 1, domains) : 1;
}

function assemble(options: VolumeStores, keys: VolumeKeys, superblock: SuperblockRecord, keyring: Keyring | undefined): OpenedVolume {
  const settings = superblock.translators as TranslatorSettings;
  const meta = buildMetadataStore(settings, keyring, options.store, (key) => key === keys.superblock());
  const blocks = buildBlockStack(settings, keyring, options.dataStore ?? options.store, keys.blockPrefix(), undefined, options.log);
  return { superblock, meta, blocks, keys };
}

async function askPassphrase(options: VolumeStores): Promise<string> {
  if (!options.passphrase) {
    throw new ConfigError(
      'this volume is encrypted: give its passphrase in VOLDFS_PASSPHRASE_FILE (a file holding it), or run from a terminal to be asked',
    );
  }
  return options.passphrase();
}

async function readSuperblock(store: KvStore, keys: VolumeKeys): Promise<SuperblockRecord | undefined> {
  const found = await store.get(keys.superblock());
  if (!found) return undefined;
  const sb = decodeRecord<SuperblockRecord>(keys.superblock(), found.value);
  if (sb.format !== VOLUME_FORMAT) {
    throw new IntegrityError(`the volume has format ${sb.format}; this voldfs reads format ${VOLUME_FORMAT}`);
  }
  return sb;
}

/** Largest power of two not above `n`. */
function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

/**
 * Writes a new, empty volume with the translators asked for: superblock (in clear: it holds
 * the translator settings and the wrapped key), root directory, allocator, in one atomic step.
 * @param force overwrite an existing superblock (the old volume's records become garbage)
 * @throws FsError EEXIST when a volume is there and `force` is not set
 */
export async function format(options: VolumeStores, request: TranslatorRequest, force: boolean): Promise<OpenedVolume> {
  const keys = new VolumeKeys(options.prefix);
  const existing = await options.store.get(keys.superblock());
  if (existing && !force) throw new FsError('EEXIST', `a volume already exists under "${keys.prefix}"`);
  let settings: TranslatorSettings = {};
  let keyring: Keyring | undefined;
  if (request.crypt) {
    const made = await createKeyring(await askPassphrase(options), options.kdf);
    keyring = made.keyring;
    settings = { ...settings, crypt: made.settings };
  }
  if (request.erasure) settings = { ...settings, erasure: { ...request.erasure, codec: RONOMON_CODEC_ID } };
  const superblock: SuperblockRecord = {
    format: VOLUME_FORMAT,
    volumeId: randomBytes(16).toString('hex'),
    chunkSize: MAX_CHUNK,
    createdAt: Date.now(),
    translators: settings as Record<string, unknown>,
  };
  const replicas = replicasFor(options, settings);
  if (replicas > 1) superblock.metaReplicas = replicas;
  // Before anything is written, so every record gets its copies.
  options.replication?.setReplicas(replicas);
  const probe = assemble(options, keys, superblock, keyring);
  // Room under the stack's block limit for rounding; a chunk is one block.
  superblock.chunkSize = Math.min(MAX_CHUNK, floorPow2(probe.blocks.maxBlockBytes - 4096));
  const opened = assemble(options, keys, superblock, keyring);
  const t = now();
  const root: InodeRecord = {
    mode: S_IFDIR | 0o755,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    nlink: 2,
    size: 0,
    atime: t,
    mtime: t,
    ctime: t,
    rdev: 0,
    parent: ROOT_INO,
  };
  const ops = [
    { key: keys.inode(ROOT_INO), value: encodeRecord(root) },
    { key: keys.dirNode(ROOT_INO, 'r'), value: encodeRecord({ kind: 'leaf', entries: {} }) },
    { key: keys.inodeAllocator(), value: encodeRecord({ next: ROOT_INO + 1 }) },
    { key: keys.superblock(), value: encodeRecord(superblock) },
  ];
  const meta = opened.meta;
  // Markers first: a volume whose superblock exists always has them.
  await new LossDetector(meta, keys).plant(superblock.volumeId);
  if (meta.commit && !force) {
    const ok = await meta.commit(ops.map((o) => ({ ...o, condition: { kind: 'ifAbsent' as const } })));
    if (!ok) throw new FsError('EEXIST', `a volume already exists under "${keys.prefix}"`);
  } else {
    // Superblock last: a crash before it leaves a store that is still "empty" to the next mkfs.
    for (const op of ops) await meta.put(op.key, op.value);
  }
  return opened;
}
