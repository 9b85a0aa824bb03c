import type { KvStore, VersionedValue } from '../backends/kv-store.js';
import pMap from 'p-map';
import { ChunkIndex } from '../chunk/chunk-index.js';
import { transact } from '../cas/transaction.js';
import { DirectoryTree } from '../inode/directory-tree.js';
import type { ProblemList } from './problems.js';
import type { FsckTarget } from './target.js';

export interface FsckOptions {
  /** Repair what can be repaired safely. Default false: only look. */
  readonly repair?: boolean;
  /**
   * The caller vouches that no mount of the volume is active. Only then are repairs run
   * that depend on a still view of the whole volume: file link counts, orphan inodes, chunk
   * maps past the end, unreferenced blocks, garbage not yet due, pending intents of live
   * owners. Default false.
   */
  readonly offline?: boolean;
  /** Keys per getMany. Default 128. */
  readonly batchSize?: number;
  /** getMany calls and block checks in flight at once. Default 8. */
  readonly concurrency?: number;
  /** Wall clock, ms since epoch (garbage due dates). Default Date.now. */
  readonly now?: () => number;
  /** Called after each batch of work; cheap, so callers throttle their own output. */
  readonly onProgress?: (progress: FsckProgress) => void;
  /**
   * Inode numbers left free above the highest one in use when a lost allocator record is
   * rebuilt while mounts may be active (their claimed ranges are unknown). Default 2^20.
   */
  readonly allocatorMargin?: number;
}

export type FsckPhase = 'intents' | 'scan' | 'walk' | 'leftovers' | 'repair' | 'done';

/** Running totals; also the summary's figures. */
export interface FsckCounts {
  directories: number;
  files: number;
  symlinks: number;
  /** Fifos, devices, sockets. */
  others: number;
  /** Sum of regular files' sizes. */
  bytes: number;
  chunkMaps: number;
  blocksChecked: number;
  /** Records of blocks rewritten by repair (erasure fragments). */
  fragmentsRewritten: number;
  /** Metadata copies rewritten (or deleted) on the store's domains by repair. */
  metadataCopiesRewritten: number;
  /** Keys listed by scans. */
  keysScanned: number;
  /** Garbage records not yet due, left for the mounts (or collected early with --offline). */
  garbagePending: number;
  garbageCollected: number;
}

export interface FsckProgress extends Readonly<FsckCounts> {
  readonly phase: FsckPhase;
  /** Directories found but not yet listed. */
  readonly queuedDirectories: number;
  readonly repairsDone: number;
  readonly repairsTotal: number;
}

/** Everything the checks share. */
/** Every count at zero: a new check, or a report on a volume that could not be walked. */
export function emptyCounts(): FsckCounts {
  return {
    directories: 0,
    files: 0,
    symlinks: 0,
    others: 0,
    bytes: 0,
    chunkMaps: 0,
    blocksChecked: 0,
    fragmentsRewritten: 0,
    metadataCopiesRewritten: 0,
    keysScanned: 0,
    garbagePending: 0,
    garbageCollected: 0,
  };
}

export class FsckContext {
  readonly repair: boolean;
  readonly offline: boolean;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly now: () => number;
  readonly allocatorMargin: number;
  /** Directory operations inside repair transactions. */
  readonly dirs: DirectoryTree;
  /** Which chunks of a file may exist: how file data is found where the store cannot list keys. */
  readonly chunkIndex: ChunkIndex;
  readonly counts: FsckCounts = emptyCounts();
  /** What could not be checked or judged, for the report. */
  readonly notes: string[] = [];
  phase: FsckPhase = 'intents';
  queuedDirectories = 0;
  repairsDone = 0;
  repairsTotal = 0;

  constructor(
    readonly target: FsckTarget,
    readonly problems: ProblemList,
    private readonly options: FsckOptions,
  ) {
    // No repair without a superblock: the translators and chunk size are unknown.
    this.repair = Boolean(options.repair) && target.superblock !== undefined;
    this.offline = Boolean(options.offline);
    this.batchSize = options.batchSize ?? 128;
    this.concurrency = options.concurrency ?? 8;
    this.now = options.now ?? Date.now;
    this.allocatorMargin = options.allocatorMargin ?? 2 ** 20;
    // As Volume.open sizes leaves; only matters when a repair rewrites a leaf that then splits.
    this.dirs = new DirectoryTree(target.keys, Math.min(32 * 1024, Math.floor(target.meta.capabilities.maxValueBytes / 4)));
    const { meta, keys } = target;
    this.chunkIndex = new ChunkIndex({
      store: meta,
      indexKey: (ino, level, group) => keys.chunkIndex(ino, level, group),
      chunkKey: (ino, i) => keys.chunkMap(ino, i),
      transact: (body) => transact(meta, undefined, body),
    });
  }

  get chunkSize(): number | undefined {
    return this.target.superblock?.chunkSize;
  }

  /** Reads `keys` in batches of `batchSize`, `concurrency` batches at a time; results in order. */
  async readMany(store: KvStore, keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    const batches: (readonly string[])[] = [];
    for (let i = 0; i < keys.length; i += this.batchSize) batches.push(keys.slice(i, i + this.batchSize));
    const results = await pMap(batches, (batch) => store.getMany(batch), { concurrency: this.concurrency });
    return results.flat();
  }

  report(): void {
    this.options.onProgress?.({
      ...this.counts,
      phase: this.phase,
      queuedDirectories: this.queuedDirectories,
      repairsDone: this.repairsDone,
      repairsTotal: this.repairsTotal,
    });
  }
}
