import { StoreFull } from '../errors.js';
import { conditionHolds, type CommitCheck, type CommitOp, type Version, type VersionedValue, type WriteCondition } from '../kv-store.js';

/**
 * The records of an in-process store, shared by every MemoryStore client opened on it, so a
 * test can run two "mounts" on one store or crash one client and reopen the data with another.
 * All methods are synchronous: each one is atomic with respect to every other.
 */
export class MemoryData {
  private readonly records = new Map<string, VersionedValue>();
  /** Shared by all keys, so a version is never reused, even after delete and recreate. */
  private lastVersion = 0;
  private usedBytes = 0;

  /**
   * @param maxTotalBytes capacity in bytes (keys + values); a write beyond it throws StoreFull.
   *   Default: unlimited.
   */
  constructor(readonly maxTotalBytes = Number.POSITIVE_INFINITY) {}

  /** Number of records, for tests. */
  get size(): number {
    return this.records.size;
  }

  /** Bytes held by keys and values. */
  get bytes(): number {
    return this.usedBytes;
  }

  get(key: string): VersionedValue | undefined {
    return this.records.get(key);
  }

  /** Whether `condition` holds for `key` right now. */
  holds(key: string, condition: WriteCondition): boolean {
    return conditionHolds(condition, this.records.get(key));
  }

  /** Applies a write (value `null` deletes) without checking conditions; returns the version. */
  write(key: string, value: Buffer | null): Version | undefined {
    this.reserve([{ key, value }]);
    return this.apply(key, value);
  }

  /** Whether every check still matches the key's current state. */
  checksHold(checks: readonly CommitCheck[]): boolean {
    return checks.every((c) => (this.records.get(c.key)?.version ?? null) === c.version);
  }

  /** Applies ops whose conditions the caller verified, all or (on StoreFull) none; their versions. */
  writeAll(ops: readonly Pick<CommitOp, 'key' | 'value'>[]): (Version | undefined)[] {
    this.reserve(ops);
    return ops.map((op) => this.apply(op.key, op.value));
  }

  keys(): IterableIterator<string> {
    return this.records.keys();
  }

  /** Throws StoreFull if the writes would exceed the capacity; changes nothing. */
  private reserve(ops: readonly Pick<CommitOp, 'key' | 'value'>[]): void {
    let delta = 0;
    for (const { key, value } of ops) {
      const old = this.records.get(key);
      if (old) delta -= key.length + old.value.length;
      if (value) delta += key.length + value.length;
    }
    if (delta > 0 && this.usedBytes + delta > this.maxTotalBytes) {
      throw new StoreFull(
        `memory store is full: ${this.usedBytes} of ${this.maxTotalBytes} bytes used, ` +
          `${delta} more needed; delete data or create the store with a larger maxTotalBytes`,
      );
    }
  }

  private apply(key: string, value: Buffer | null): Version | undefined {
    const old = this.records.get(key);
    if (old) {
      this.usedBytes -= key.length + old.value.length;
      this.records.delete(key);
    }
    if (value === null) return undefined;
    const version = String(++this.lastVersion);
    // A private copy: the caller may reuse its buffer.
    this.records.set(key, { value: Buffer.from(value), version });
    this.usedBytes += key.length + value.length;
    return version;
  }
}
