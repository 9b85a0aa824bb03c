import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KvStore } from '../backends/kv-store.js';
import { IntegrityError } from '../backends/errors.js';
import { RecordCache } from '../cas/record-cache.js';
import { decodeRecord, encodeRecord } from '../cas/record-codec.js';
import { FileData } from '../chunk/file-data.js';
import type { BlockStore } from '../translators/block-store.js';
import { RawBlockStore } from '../translators/raw-block-store.js';
import { DirectoryTree } from './directory-tree.js';
import { FsError } from './fs-error.js';
import { GarbageCollector } from './garbage.js';
import { InodeAllocator } from './inode-allocator.js';
import { VolumeKeys } from './keys.js';
import { ROOT_INO, S_IFDIR, type InodeRecord, type SuperblockRecord } from './records.js';
import { now } from './timespec.js';

export const VOLUME_FORMAT = 1;
const MAX_CHUNK = 1024 * 1024;

export interface VolumeOptions {
  /** Store of metadata records (inodes, directories, chunk maps): needs `commit`. */
  readonly store: KvStore;
  /**
   * Store of immutable blocks; default `store`. Blocks are written once and never take part
   * in a multi-key commit, so they may bypass the intent layer (and its halved value limit).
   */
  readonly dataStore?: KvStore;
  readonly log: Logger;
  /** Key prefix of the volume's records, e.g. `voldfs:`. */
  readonly prefix: string;
  /** Attribute / entry cache lifetime, ms. */
  readonly cacheTtlMs?: number;
  readonly graceMs?: number;
  /** Builds the translator stack from the superblock's settings; default: no translators. */
  readonly buildBlocks?: (superblock: SuperblockRecord, raw: RawBlockStore) => Promise<BlockStore>;
  /** Translator settings recorded by mkfs. */
  readonly translators?: Record<string, unknown>;
}

export class VolumeNotFormatted extends Error {}

/** Everything one mounted volume is made of, assembled from its superblock. */
export class Volume {
  private constructor(
    readonly store: KvStore,
    readonly log: Logger,
    readonly keys: VolumeKeys,
    readonly superblock: SuperblockRecord,
    readonly cache: RecordCache,
    readonly dirs: DirectoryTree,
    readonly data: FileData,
    readonly allocator: InodeAllocator,
    readonly garbage: GarbageCollector,
    readonly blocks: BlockStore,
    /** How long this mount may serve cached records and names, ms. */
    readonly cacheTtlMs: number,
  ) {}

  /**
   * Opens the volume, formatting the store first when it holds no volume at all.
   * @throws IntegrityError when the superblock is missing but the volume's root is there (the
   *   store lost records: a restarted memcached), or the format is not this version's.
   */
  static async open(options: VolumeOptions, formatIfEmpty = true): Promise<Volume> {
    const keys = new VolumeKeys(options.prefix);
    let superblock = await readSuperblock(options.store, keys);
    if (!superblock) {
      if (await options.store.get(keys.inode(ROOT_INO))) {
        throw new IntegrityError(
          `the store holds volume records under "${options.prefix}" but no superblock: it has lost data ` +
            '(a memcached restarted empty, or evicted records). Run `voldfs fsck` before mounting.',
        );
      }
      if (!formatIfEmpty) throw new VolumeNotFormatted(`no volume under "${options.prefix}": run voldfs mkfs`);
      await format(options.store, keys, options.translators ?? {}, false, MAX_CHUNK, options.dataStore);
      superblock = await readSuperblock(options.store, keys);
      if (!superblock) throw new IntegrityError('the superblock just written cannot be read back');
    }
    const raw = new RawBlockStore(options.dataStore ?? options.store, keys.blockPrefix());
    const blocks = options.buildBlocks ? await options.buildBlocks(superblock, raw) : raw;
    const cacheTtlMs = options.cacheTtlMs ?? 1000;
    // lru-cache reads a ttl of 0 as "forever": never let "no caching" become that.
    const cache = new RecordCache({ ttlMs: Math.max(1, cacheTtlMs) });
    const dirs = new DirectoryTree(keys, Math.min(32 * 1024, Math.floor(options.store.capabilities.maxValueBytes / 4)));
    const garbage = new GarbageCollector({ store: options.store, keys, blocks, log: options.log, graceMs: options.graceMs });
    const data = new FileData({
      store: options.store,
      cache,
      blocks,
      chunkKey: (ino, i) => keys.chunkMap(ino, i),
      volumeId: superblock.volumeId,
      chunkSize: superblock.chunkSize,
      retire: (refs) => garbage.retire(refs),
    });
    garbage.attach(data);
    const allocator = new InodeAllocator(options.store, keys.inodeAllocator());
    return new Volume(options.store, options.log, keys, superblock, cache, dirs, data, allocator, garbage, blocks, cacheTtlMs);
  }

  async close(): Promise<void> {
    await this.garbage.close();
  }
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
 * Writes a new, empty volume: superblock, root directory, allocator, in one atomic step.
 * @param force overwrite an existing superblock (the old volume's records become garbage)
 * @throws FsError EEXIST when a volume is there and `force` is not set
 */
export async function format(
  store: KvStore,
  keys: VolumeKeys,
  translators: Record<string, unknown>,
  force: boolean,
  chunkLimit = MAX_CHUNK,
  dataStore: KvStore = store,
): Promise<SuperblockRecord> {
  const existing = await store.get(keys.superblock());
  if (existing && !force) throw new FsError('EEXIST', `a volume already exists under "${keys.prefix}"`);
  // Room for translator overhead (nonce, tag, erasure headers) under the store's item limit.
  const chunkSize = Math.min(chunkLimit, floorPow2(dataStore.capabilities.maxValueBytes - 4096));
  const superblock: SuperblockRecord = {
    format: VOLUME_FORMAT,
    volumeId: randomBytes(16).toString('hex'),
    chunkSize,
    createdAt: Date.now(),
    translators,
  };
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
    { key: keys.superblock(), value: encodeRecord(superblock) },
    { key: keys.inode(ROOT_INO), value: encodeRecord(root) },
    { key: keys.dirNode(ROOT_INO, 'r'), value: encodeRecord({ kind: 'leaf', entries: {} }) },
    { key: keys.inodeAllocator(), value: encodeRecord({ next: ROOT_INO + 1 }) },
  ];
  // Unconditional on force (replacing a volume), else all-or-nothing ifAbsent where possible.
  if (store.commit && !force) {
    const ok = await store.commit(ops.map((o) => ({ ...o, condition: { kind: 'ifAbsent' as const } })));
    if (!ok) throw new FsError('EEXIST', `a volume already exists under "${keys.prefix}"`);
  } else {
    // Superblock last: a crash before it leaves a store that is still "empty" to the next mkfs.
    for (const op of ops.slice(1)) await store.put(op.key, op.value);
    await store.put(ops[0].key, ops[0].value);
  }
  return superblock;
}
