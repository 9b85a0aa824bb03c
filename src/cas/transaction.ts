import {
  IF_ABSENT,
  UNCONDITIONAL,
  ifVersion,
  type CommitCheck,
  type CommitOp,
  type KvStore,
  type Version,
  type WriteCondition,
} from '../backends/kv-store.js';
import { StoreError } from '../backends/errors.js';
import type { RecordCache } from './record-cache.js';
import { CONFLICT, ContentionError, retryOnConflict, type RetryOptions } from './retry.js';

export { ContentionError };

/**
 * Condition of a write whose key this transaction read from a queued (uncommitted) write: the
 * shared commit takes the condition of the queued write instead.
 */
export const PENDING_CONDITION: WriteCondition = Object.freeze({ kind: 'none' });

interface ReadState {
  readonly value: Buffer | undefined;
  readonly version: Version | null;
  /** Read from writes queued for a later commit ({@link PendingWrites}): no store version. */
  readonly pending?: true;
  /** The queued value this pending read saw, to tell whether the queue still holds it. */
  readonly queued?: Buffer | null;
  /** Served by the record cache: possibly older than the store. */
  readonly cached?: true;
}

/** A write handed to the store and not yet applied, with the version it will have (null: deleted). */
export interface InFlightWrite {
  readonly value: Buffer | null;
  readonly version: Version | null;
}

/**
 * Writes staged by transactions that are answered but not committed yet (src/cas/commit-queue):
 * later transactions of the same process read them instead of the store.
 */
export interface PendingWrites {
  /**
   * The queued value of `key` (`null`: queued for deletion), `undefined` if none is queued, a
   * write handed to the store (read it as if applied, with its version), or a promise to wait for
   * when the key is being committed and its version is not known yet (then read again).
   */
  lookup(key: string): Buffer | null | undefined | InFlightWrite | Promise<void>;
}

/** What a transaction asks the store to do on commit. */
export interface CommitPlan {
  readonly ops: CommitOp[];
  readonly checks: CommitCheck[];
}

interface StagedWrite {
  readonly value: Buffer | null;
  readonly condition: WriteCondition;
}

/**
 * An optimistic transaction over a KvStore: reads record the version they saw, writes are
 * staged, and commit applies them all only if nothing read has changed. Never a blind
 * overwrite: a write to a key that was read is conditional on that read's version; a key
 * created here is `ifAbsent`.
 */
export class Transaction {
  private readonly reads = new Map<string, ReadState>();
  private readonly writes = new Map<string, StagedWrite>();

  constructor(
    private readonly store: KvStore,
    private readonly cache: RecordCache | undefined,
    private readonly pending?: PendingWrites,
  ) {}

  /** The record's bytes, or undefined if absent. Sees this transaction's own staged writes. */
  async read(key: string): Promise<Buffer | undefined> {
    const staged = this.writes.get(key);
    if (staged) return staged.value ?? undefined;
    const seen = this.reads.get(key);
    if (seen) return seen.value;
    for (let queued = this.pending?.lookup(key); queued !== undefined; queued = this.pending?.lookup(key)) {
      if (queued instanceof Promise) {
        await queued;
        continue;
      }
      if (queued !== null && !Buffer.isBuffer(queued)) {
        // Handed to the store: the commit applies it before this transaction's.
        const state: ReadState = { value: queued.value ?? undefined, version: queued.version };
        this.reads.set(key, state);
        return state.value;
      }
      const state: ReadState = { value: queued ?? undefined, version: null, pending: true, queued };
      this.reads.set(key, state);
      return state.value;
    }
    const cached = this.cache?.get(key);
    if (cached) {
      this.reads.set(key, { ...cached, cached: true });
      return cached.value;
    }
    const found = await this.store.get(key);
    const state: ReadState = found ? { value: found.value, version: found.version } : { value: undefined, version: null };
    this.reads.set(key, state);
    this.cache?.set(key, state);
    return state.value;
  }

  /** Several reads at once (one round of getMany for those not yet seen). */
  async readMany(keys: readonly string[]): Promise<(Buffer | undefined)[]> {
    const missing = keys.filter(
      (k) => !this.writes.has(k) && !this.reads.has(k) && this.pending?.lookup(k) === undefined && !this.cache?.get(k),
    );
    if (missing.length > 0) {
      const found = await this.store.getMany(missing);
      missing.forEach((key, i) => {
        const f = found[i];
        const state: ReadState = f ? { value: f.value, version: f.version } : { value: undefined, version: null };
        this.reads.set(key, state);
        this.cache?.set(key, state);
      });
    }
    return Promise.all(keys.map((k) => this.read(k)));
  }

  /**
   * Forgets a record this transaction took from the record cache, so that the next read asks the
   * store (a name missing from a cached directory record may have been created by another
   * mount). @returns whether it did; false for a record read from the store, queued or staged
   */
  refresh(key: string): boolean {
    if (this.writes.has(key) || !this.reads.get(key)?.cached) return false;
    this.reads.delete(key);
    this.cache?.invalidate(key);
    return true;
  }

  /** Stages a write of a key; conditional on what this transaction read of it. */
  write(key: string, value: Buffer): void {
    this.writes.set(key, { value, condition: this.conditionFor(key) });
  }

  /** Stages the creation of a key that must not exist yet. */
  create(key: string, value: Buffer): void {
    this.writes.set(key, { value, condition: IF_ABSENT });
  }

  /** Stages a delete; conditional on what this transaction read of it. */
  remove(key: string): void {
    const earlier = this.writes.get(key);
    if (earlier && earlier.condition.kind === 'ifAbsent') {
      // Created and removed in the same transaction: nothing to do in the store.
      this.writes.delete(key);
      return;
    }
    this.writes.set(key, { value: null, condition: this.conditionFor(key) });
  }

  private conditionFor(key: string): WriteCondition {
    const earlier = this.writes.get(key);
    if (earlier) return earlier.condition;
    const seen = this.reads.get(key);
    if (!seen) return UNCONDITIONAL;
    // The queued write this read saw carries the condition into the shared commit.
    if (seen.pending) return PENDING_CONDITION;
    return seen.version === null ? IF_ABSENT : ifVersion(seen.version);
  }

  /** Whether this transaction staged any write. */
  get writesAnything(): boolean {
    return this.writes.size > 0;
  }

  /**
   * Keys whose state this transaction took from the store or the cache: those it read there, and
   * those it wrote without reading. A queued write to one of them since makes it stale.
   */
  *keysFromStore(): Iterable<string> {
    for (const [key, state] of this.reads) if (!state.pending) yield key;
    for (const key of this.writes.keys()) if (!this.reads.has(key)) yield key;
  }

  /** Keys read from queued writes, with the value each read saw there. */
  *pendingReads(): Iterable<[string, Buffer | null]> {
    for (const [key, state] of this.reads) if (state.pending) yield [key, state.queued ?? null];
  }

  /** The version a read of `key` saw (null: absent); undefined if not read, or read from the queue. */
  versionRead(key: string): Version | null | undefined {
    const state = this.reads.get(key);
    return state && !state.pending ? state.version : undefined;
  }

  /**
   * The writes and the read checks of a commit. Writes whose only condition is a queued write
   * they read carry {@link PENDING_CONDITION}, for the commit queue to resolve.
   */
  plan(): CommitPlan {
    const checks: CommitCheck[] = [];
    for (const [key, state] of this.reads) {
      if (!this.writes.has(key) && !state.pending) checks.push({ key, version: state.version });
    }
    const ops: CommitOp[] = [...this.writes].map(([key, w]) => ({ key, value: w.value, condition: w.condition }));
    return { ops, checks };
  }

  /**
   * Applies the staged writes if every condition and every read still holds.
   * @returns false on a conflict (the caller retries with a fresh transaction).
   */
  async commit(): Promise<boolean> {
    if (this.writes.size === 0) return true;
    const { ops, checks } = this.plan();
    if (ops.some((op) => op.condition === PENDING_CONDITION) || [...this.reads.values()].some((r) => r.pending)) {
      throw new StoreError('a transaction that read queued writes commits through the commit queue');
    }
    if (ops.length === 1 && checks.length === 0) return this.commitOne(ops[0]);
    if (!this.store.commit) {
      throw new StoreError(`store ${this.store.name} offers no atomic commit; open it through withAtomicCommit()`);
    }
    if (this.store.commitVersioned) {
      const versions = await this.store.commitVersioned(ops, checks);
      if (!versions) {
        for (const op of ops) this.cache?.invalidate(op.key);
        this.forgetReads();
        return false;
      }
      // What we wrote, at the version the store told, so the next operation reads no record back.
      ops.forEach((op, i) => {
        const version = versions[i];
        if (!op.value) this.cache?.set(op.key, { value: undefined, version: null });
        else if (version !== undefined) this.cache?.set(op.key, { value: op.value, version });
        else this.cache?.invalidate(op.key);
      });
      return true;
    }
    const ok = await this.store.commit(ops, checks);
    // commit() does not return new versions: forget what we wrote, and on failure what we read.
    for (const op of ops) this.cache?.invalidate(op.key);
    if (!ok) this.forgetReads();
    return ok;
  }

  private async commitOne(op: CommitOp): Promise<boolean> {
    if (op.value === null) {
      if (op.condition.kind === 'ifAbsent') return true;
      const ok = await this.store.delete(op.key, op.condition);
      if (ok) this.cache?.set(op.key, { value: undefined, version: null });
      else this.cache?.invalidate(op.key);
      return ok || op.condition.kind === 'none';
    }
    const result = await this.store.put(op.key, op.value, op.condition);
    if (result.ok) this.cache?.set(op.key, { value: op.value, version: result.version });
    else this.cache?.invalidate(op.key);
    return result.ok;
  }

  /** Drops everything this transaction read from the cache, so a retry reads afresh. */
  forgetReads(): void {
    for (const key of this.reads.keys()) this.cache?.invalidate(key);
  }
}

/**
 * Runs a transaction body. If it throws, what it read leaves the cache: a decision taken on
 * cached state may be wrong (ENOENT on a name another mount just created), and the next
 * operation must see the store.
 */
export async function runBody<T>(tx: Transaction, body: (tx: Transaction) => Promise<T>): Promise<T> {
  try {
    return await body(tx);
  } catch (err) {
    tx.forgetReads();
    throw err;
  }
}

export type TransactOptions = Pick<RetryOptions, 'attempts' | 'budgetMs' | 'baseDelayMs' | 'maxDelayMs' | 'operation'>;

/**
 * Runs `body` in a fresh transaction and commits it, retrying with randomized exponential
 * backoff on conflicts until the retry budget is spent ({@link retryOnConflict}). `body` may
 * run several times: it must only read and stage through the transaction, and throw (FsError)
 * to abort without retry. A read that gave up on contention inside `body` counts as a conflict.
 */
export function transact<T>(
  store: KvStore,
  cache: RecordCache | undefined,
  body: (tx: Transaction) => Promise<T>,
  options: TransactOptions = {},
): Promise<T> {
  return retryOnConflict(
    async () => {
      const tx = new Transaction(store, cache);
      let result: T;
      try {
        result = await runBody(tx, body);
      } catch (err) {
        if (err instanceof ContentionError) return CONFLICT;
        throw err;
      }
      if (await tx.commit()) return result;
      tx.forgetReads();
      return CONFLICT;
    },
    { baseDelayMs: 1, maxDelayMs: 200, ...options },
  );
}
