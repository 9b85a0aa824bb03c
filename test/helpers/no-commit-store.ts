import { MemoryData, MemoryStore, type FaultHook } from '../../src/backends/memory/index.js';
import {
  UNCONDITIONAL,
  type KvStore,
  type PutResult,
  type StoreCapabilities,
  type VersionedValue,
  type WriteCondition,
} from '../../src/backends/kv-store.js';

export interface NoCommitStoreOptions {
  /** Shared records; give several clients the same one. Default: new. */
  readonly data?: MemoryData;
  readonly maxValueBytes?: number;
  /** Probability that a conditional put or delete reports a conflict without applying (kumofs). */
  readonly spuriousConflicts?: number;
  /** Source of randomness for spurious conflicts. Default Math.random. */
  readonly random?: () => number;
  /** Runs before every underlying call (latency, crashes); see MemoryStore. */
  readonly beforeOperation?: FaultHook;
  /** Called after every successful put, to let tests see what reached the store. */
  readonly onPut?: (key: string, value: Buffer) => void;
  /** Hide scan, as memcached has none. Default false. */
  readonly noScan?: boolean;
}

/**
 * A MemoryStore without commit, standing in for memcached or Redis Cluster: single-key CAS
 * only, optionally with spurious conflicts and without scan.
 */
export class NoCommitStore implements KvStore {
  readonly name = 'mem-nocommit';
  readonly capabilities: StoreCapabilities;
  readonly memory: MemoryStore;
  readonly scan?: (prefix: string) => AsyncIterable<string>;

  constructor(private readonly options: NoCommitStoreOptions = {}) {
    this.memory = new MemoryStore({
      data: options.data,
      maxValueBytes: options.maxValueBytes,
      beforeOperation: options.beforeOperation,
    });
    this.capabilities = { ...this.memory.capabilities, atomicCommit: false };
    if (!options.noScan) this.scan = (prefix) => this.memory.scan(prefix);
  }

  get data(): MemoryData {
    return this.memory.data;
  }

  get(key: string): Promise<VersionedValue | undefined> {
    return this.memory.get(key);
  }

  getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    return this.memory.getMany(keys);
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    if (this.spurious(condition)) return { ok: false };
    const result = await this.memory.put(key, value, condition);
    if (result.ok) this.options.onPut?.(key, value);
    return result;
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    if (this.spurious(condition)) return false;
    return this.memory.delete(key, condition);
  }

  close(): Promise<void> {
    return this.memory.close();
  }

  private spurious(condition: WriteCondition): boolean {
    const p = this.options.spuriousConflicts ?? 0;
    return condition.kind !== 'none' && p > 0 && (this.options.random ?? Math.random)() < p;
  }
}
