import { StoreUnavailable, ValueTooLarge } from '../errors.js';
import {
  UNCONDITIONAL,
  type CommitCheck,
  type CommitOp,
  type KvStore,
  type PutResult,
  type StoreCapabilities,
  type Version,
  type VersionedValue,
  type WriteCondition,
} from '../kv-store.js';
import type { FaultHook, MemoryOperation } from './faults.js';
import { MemoryData } from './memory-data.js';
import { suffixPlacement } from './placement.js';

/** Options of {@link MemoryStore}; every one has a default. */
export interface MemoryStoreOptions {
  /** Records to work on; share one between clients to model several mounts. Default: new, empty. */
  readonly data?: MemoryData;
  /** Largest value in bytes. Default 1 MiB, memcached's order of magnitude. */
  readonly maxValueBytes?: number;
  /** Largest ops + checks per commit. Default 1024. */
  readonly maxCommitOps?: number;
  /** Failure domains to pretend to have (see suffixPlacement). Default 1. */
  readonly domains?: number;
  /** Called before every operation; see FaultHook. Default: none. */
  readonly beforeOperation?: FaultHook;
}

export const MEMORY_DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/**
 * An in-process KvStore for unit tests: atomic commits, scan, versions that never repeat, and
 * an optional fault hook. Values are copied in and out, as over a network.
 */
export class MemoryStore implements KvStore {
  readonly name = 'mem';
  readonly capabilities: StoreCapabilities;
  readonly data: MemoryData;
  private readonly beforeOperation?: FaultHook;
  private calls = 0;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    const maxValueBytes = options.maxValueBytes ?? MEMORY_DEFAULT_MAX_VALUE_BYTES;
    const maxCommitOps = options.maxCommitOps ?? 1024;
    for (const [name, n] of [['maxValueBytes', maxValueBytes], ['maxCommitOps', maxCommitOps]] as const) {
      if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a whole number >= 1, got ${n}`);
    }
    this.capabilities = Object.freeze({
      maxValueBytes,
      atomicCommit: true,
      maxCommitOps,
      placement: suffixPlacement(options.domains ?? 1),
      scansByRange: true,
    });
    this.data = options.data ?? new MemoryData();
    this.beforeOperation = options.beforeOperation;
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    await this.enter('get', [key]);
    return copy(this.data.get(key));
  }

  async getValueInto(key: string, alloc: (bytes: number) => Buffer): Promise<Buffer | undefined> {
    await this.enter('get', [key]);
    const found = this.data.get(key);
    if (!found) return undefined;
    const out = alloc(found.value.length);
    if (out.length !== found.value.length) throw new RangeError(`alloc(${found.value.length}) returned ${out.length} bytes`);
    found.value.copy(out);
    return out;
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    await this.enter('getMany', keys);
    return keys.map((key) => copy(this.data.get(key)));
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    this.checkSize(key, value);
    await this.enter('put', [key]);
    if (!this.data.holds(key, condition)) return { ok: false };
    const version = this.data.write(key, value);
    if (version === undefined) throw new Error('a put produced no version');
    return { ok: true, version };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    await this.enter('delete', [key]);
    if (this.data.get(key) === undefined || !this.data.holds(key, condition)) return false;
    this.data.write(key, null);
    return true;
  }

  async commit(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<boolean> {
    return (await this.commitVersioned(ops, checks)) !== undefined;
  }

  async commitVersioned(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<(Version | undefined)[] | undefined> {
    if (ops.length + checks.length > this.capabilities.maxCommitOps) {
      throw new RangeError(
        `commit of ${ops.length + checks.length} ops and checks exceeds maxCommitOps ${this.capabilities.maxCommitOps}`,
      );
    }
    const seen = new Set<string>();
    for (const op of ops) {
      if (seen.has(op.key)) throw new RangeError(`commit writes key ${op.key} twice`);
      seen.add(op.key);
      if (op.value) this.checkSize(op.key, op.value);
    }
    await this.enter('commit', [...ops.map((op) => op.key), ...checks.map((c) => c.key)]);
    if (!this.data.checksHold(checks)) return undefined;
    if (!ops.every((op) => this.data.holds(op.key, op.condition))) return undefined;
    return this.data.writeAll(ops);
  }

  async *scan(prefix: string): AsyncIterable<string> {
    await this.enter('scan', [prefix]);
    const matching = [...this.data.keys()].filter((key) => key.startsWith(prefix)).sort();
    yield* matching;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Runs the fault hook, then refuses if closed; the yield lets concurrent calls interleave. */
  private async enter(op: MemoryOperation, keys: readonly string[]): Promise<void> {
    const index = this.calls++;
    await this.beforeOperation?.({ op, index, keys });
    if (this.closed) throw new StoreUnavailable(`memory store was closed before ${op}; open a new one`);
  }

  private checkSize(key: string, value: Buffer): void {
    if (value.length > this.capabilities.maxValueBytes) {
      throw new ValueTooLarge(key, value.length, this.capabilities.maxValueBytes);
    }
  }
}

function copy(found: VersionedValue | undefined): VersionedValue | undefined {
  return found && { value: Buffer.from(found.value), version: found.version };
}
