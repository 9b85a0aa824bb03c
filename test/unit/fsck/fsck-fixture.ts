import type { ReplicatedStore } from '../../../src/backends/wrappers/replicated-store.js';
import { pino } from 'pino';
import type { KvStore } from '../../../src/backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../../../src/chunk/record-codec.js';
import type { ChunkMapRecord } from '../../../src/chunk/file-data.js';
import type { BlockRef } from '../../../src/translators/block-store.js';
import { fsckVolume, type FsckOptions, type FsckReport, type ProblemKind } from '../../../src/fsck/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { VolumeKeys } from '../../../src/inode/keys.js';
import { S_IFREG, type InodeRecord } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';
import type { TranslatorRequest } from '../../../src/translators/request.js';
import { CHEAP_KDF } from '../translators/fixtures.js';

export const silent = pino({ level: 'silent' });
export const caller = { uid: 0, gid: 0 };
const O_RDWR = 2;

export interface FixtureOptions {
  /** Metadata store (an intent layer, or the memory store itself). */
  readonly store: KvStore;
  /** Block store; default `store`. */
  readonly dataStore?: KvStore;
  readonly graceMs?: number;
  readonly translators?: TranslatorRequest;
  readonly prefix?: string;
  /** For encrypted volumes; the KDF is made cheap. */
  readonly passphrase?: string;
  /** The metadata-copies layer under `store`, when the store has several domains. */
  readonly replication?: ReplicatedStore;
}

/** A volume built through the FileSystem, then damaged record by record. */
export class VolumeFixture {
  readonly keys: VolumeKeys;
  private constructor(
    readonly fs: FileSystem,
    readonly options: FixtureOptions,
  ) {
    this.keys = fs.volume.keys;
  }

  static async create(options: FixtureOptions): Promise<VolumeFixture> {
    const volume = await Volume.open({
      store: options.store,
      dataStore: options.dataStore,
      replication: options.replication,
      log: silent,
      prefix: options.prefix ?? 't:',
      graceMs: options.graceMs ?? 3_600_000,
      cacheTtlMs: 0,
      translators: options.translators,
      ...VolumeFixture.unlocking(options),
    });
    return new VolumeFixture(new FileSystem(volume), options);
  }

  private static unlocking(options: FixtureOptions) {
    const { passphrase } = options;
    return passphrase === undefined ? {} : { passphrase: async () => passphrase, kdf: { kdf: CHEAP_KDF } };
  }

  get store(): KvStore {
    return this.options.store;
  }

  get data(): KvStore {
    return this.options.dataStore ?? this.options.store;
  }

  get chunkSize(): number {
    return this.fs.volume.superblock.chunkSize;
  }

  async writeFile(path: string, data: Buffer): Promise<number> {
    const [parent, name] = await this.fs.resolveParent(path);
    const ino = await this.fs.namespace.create(parent, name, S_IFREG | 0o644, caller);
    const fh = await this.fs.files.open(ino, O_RDWR);
    await this.fs.files.write(fh, 0, data);
    await this.fs.files.release(fh);
    return ino;
  }

  async mkdir(path: string): Promise<number> {
    return this.fs.mkdir(path, 0o755, caller);
  }

  async symlink(path: string, target: string): Promise<number> {
    const [parent, name] = await this.fs.resolveParent(path);
    return this.fs.namespace.symlink(parent, name, target, caller);
  }

  async link(existing: string, path: string): Promise<void> {
    const [parent, name] = await this.fs.resolveParent(path);
    await this.fs.namespace.link(await this.fs.resolve(existing), parent, name);
  }

  /** Persists everything and stops the volume's timers (as an unmount does). */
  async close(): Promise<void> {
    await this.fs.close();
  }

  fsck(options: FsckOptions = {}): Promise<FsckReport> {
    const stores = { store: this.store, dataStore: this.options.dataStore, replication: this.options.replication, prefix: this.keys.prefix };
    return fsckVolume({ ...stores, ...VolumeFixture.unlocking(this.options) }, options);
  }

  /** Metadata as the volume reads it (decrypted when encrypted). */
  get meta(): KvStore {
    return this.fs.volume.store;
  }

  async inode(ino: number): Promise<InodeRecord> {
    const found = await this.meta.get(this.keys.inode(ino));
    if (!found) throw new Error(`inode ${ino} has no record`);
    return decodeRecord<InodeRecord>(this.keys.inode(ino), found.value);
  }

  async putInode(ino: number, record: InodeRecord): Promise<void> {
    await this.meta.put(this.keys.inode(ino), encodeRecord(record));
  }

  async chunkMap(ino: number, index: number): Promise<ChunkMapRecord> {
    const key = this.keys.chunkMap(ino, index);
    const found = await this.meta.get(key);
    if (!found) throw new Error(`no chunk map ${key}`);
    return decodeRecord<ChunkMapRecord>(key, found.value);
  }

  /** The block of a chunk; fails the test if the chunk's bytes are inline in its map. */
  async chunkBlock(ino: number, index: number): Promise<BlockRef> {
    const { block } = await this.chunkMap(ino, index);
    if (!block) throw new Error(`chunk ${index} of inode ${ino} is inline: the test needs a bigger file`);
    return block;
  }

  /** Keys of every raw record under the volume's prefix in `store` (default the data store). */
  async keysUnder(sub: string, store: KvStore = this.data): Promise<string[]> {
    const out: string[] = [];
    if (!store.scan) throw new Error('store has no scan');
    for await (const key of store.scan(this.keys.prefix + sub)) out.push(key);
    return out.sort();
  }
}

/** Kinds of the problems in a report, sorted, with repeats. */
export function kindsOf(report: FsckReport): ProblemKind[] {
  return report.problems.map((p) => p.kind).sort();
}
