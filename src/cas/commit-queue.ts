import type { Logger } from 'pino';
import { IF_ABSENT, ifVersion, type CommitCheck, type CommitOp, type KvStore, type Version } from '../backends/kv-store.js';
import type { RecordCache } from './record-cache.js';
import { PENDING_CONDITION, Transaction, runBody, transact, type CommitPlan, type PendingWrites } from './transaction.js';

export interface CommitQueueOptions {
  /** How long a deferred operation may wait for a commit to share, ms. Default 10. */
  readonly deferMs?: number;
  /** Deferred operations held at most before they are committed at once. Default 256. */
  readonly maxDeferred?: number;
}

export interface QueuedOptions {
  /**
   * Answer once queued, before the store commits: the operation goes into the next commit (at
   * most `deferMs` later, or sooner with a close, an fsync or any operation that must wait).
   * Only for operations whose replay after a conflict may fail without misleading anyone who
   * saw the answer (attribute changes, the create of a file that a close will follow).
   */
  readonly defer?: boolean;
  /** Keep the records read and written out of the record cache (chunk maps). */
  readonly uncached?: boolean;
}

/** Runs a transaction body and commits it: {@link CommitQueue.transact}'s shape. */
export type Transact = <T>(body: (tx: Transaction) => Promise<T>, options?: QueuedOptions) => Promise<T>;

interface Entry {
  readonly body: (tx: Transaction) => Promise<unknown>;
  readonly tx: Transaction;
  readonly result: unknown;
  readonly cache: RecordCache | undefined;
  /** What the transaction asks of the store; taken once, when it joins the queue. */
  readonly plan: CommitPlan;
  /** Set for an operation whose caller waits for the commit. */
  readonly waiter?: { resolve: (value: unknown) => void; reject: (err: unknown) => void };
}

interface Queued {
  value: Buffer | null;
  /** Set while the batch writing it is in the store's hands. */
  committing?: Promise<void>;
}

/**
 * One store commit for every operation in flight (group commit), and for the operations that
 * were answered before committing (deferred). Operations run their transaction bodies at once,
 * reading what queued operations wrote; one commit at a time takes everything queued, in order,
 * merged into a single atomic commit (a key's condition is the first one on it, its value the
 * last write), so after a crash the store holds a prefix of the operations, each whole.
 *
 * A commit that conflicts (another process changed a record) is undone by replaying every
 * queued operation in order, each in its own transaction with retries: a waiting operation gets
 * the replay's outcome, a deferred one that now fails is logged and reported by the next
 * {@link takeLostUpdate} (fsync). Only for stores with their own multi-key transactions; on
 * others every operation commits by itself, as transact() does.
 */
export class CommitQueue implements PendingWrites {
  private queue: Entry[] = [];
  /** Entries of the queue whose callers were answered already. */
  private deferred = 0;
  private readonly pending = new Map<string, Queued>();
  private committing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lost: unknown;
  private readonly deferMs: number;
  private readonly maxDeferred: number;
  readonly enabled: boolean;

  constructor(
    private readonly store: KvStore,
    private readonly cache: RecordCache | undefined,
    private readonly log: Logger,
    options: CommitQueueOptions = {},
  ) {
    this.deferMs = options.deferMs ?? 10;
    this.maxDeferred = options.maxDeferred ?? 256;
    this.enabled = store.capabilities.atomicCommit && !store.capabilities.commitByIntents && store.commit !== undefined;
  }

  lookup(key: string): Buffer | null | undefined | Promise<void> {
    const queued = this.pending.get(key);
    if (!queued) return undefined;
    return queued.committing ?? queued.value;
  }

  /**
   * Runs `body` in a transaction that sees queued writes, and commits it with whatever else is
   * queued. `body` may run several times, as with transact().
   */
  async transact<T>(body: (tx: Transaction) => Promise<T>, options: QueuedOptions = {}): Promise<T> {
    const cache = options.uncached ? undefined : this.cache;
    if (!this.enabled) return transact(this.store, cache, body);
    for (let stale = 0; ; stale++) {
      // Something else keeps writing what this reads: let the queue drain first.
      if (stale > 8) await this.settle();
      const tx = new Transaction(this.store, cache, this);
      const result = await runBody(tx, body);
      if (!tx.writesAnything) return result;
      const busy = this.staleness(tx);
      if (busy === 'stale') continue;
      if (busy) {
        await busy;
        continue;
      }
      if (options.defer && this.deferred < this.maxDeferred) {
        this.enqueue({ body, tx, result, cache, plan: tx.plan() });
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.kick();
        }, this.deferMs);
        return result;
      }
      return new Promise<T>((resolve, reject) => {
        this.enqueue({ body, tx, result, cache, plan: tx.plan(), waiter: { resolve: resolve as (v: unknown) => void, reject } });
        this.kick();
      });
    }
  }

  /** Resolves once everything queued before the call is in the store. */
  async settle(): Promise<void> {
    while (this.queue.length > 0 || this.committing) {
      this.kick();
      await this.committing;
    }
  }

  /** A deferred operation lost to a conflicting update since the last call, if any. */
  takeLostUpdate(): unknown {
    const lost = this.lost;
    this.lost = undefined;
    return lost;
  }

  async close(): Promise<void> {
    await this.settle();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * 'stale' when a key the transaction took from the store has a queued write since (run the
   * body again, to read it); a promise when that key is being committed now (wait, then run
   * again); undefined when the transaction can join the queue.
   */
  private staleness(tx: Transaction): 'stale' | Promise<void> | undefined {
    for (const key of tx.keysFromStore()) {
      const queued = this.pending.get(key);
      if (queued) return queued.committing ?? 'stale';
    }
    return undefined;
  }

  private enqueue(entry: Entry): void {
    this.queue.push(entry);
    if (!entry.waiter) this.deferred++;
    for (const op of entry.plan.ops) {
      const queued = this.pending.get(op.key);
      if (queued && !queued.committing) queued.value = op.value;
      else this.pending.set(op.key, { value: op.value });
    }
  }

  /** Starts a commit of what is queued, unless one is under way (it starts the next itself). */
  private kick(): void {
    if (this.committing || this.queue.length === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // A batch stays within what one store commit takes; the rest waits for the next.
    const room = Math.max(1, Math.floor(this.store.capabilities.maxCommitOps / 2));
    let size = 0;
    let count = 0;
    while (count < this.queue.length) {
      const { ops, checks } = this.queue[count].plan;
      if (count > 0 && size + ops.length + checks.length > room) break;
      size += ops.length + checks.length;
      count++;
    }
    const batch = this.queue.slice(0, count);
    this.queue = this.queue.slice(count);
    for (const entry of batch) if (!entry.waiter) this.deferred--;
    const written = new Set<string>();
    for (const entry of batch) for (const op of entry.plan.ops) written.add(op.key);
    // A key that a later entry writes again keeps its queued value for readers.
    for (const entry of this.queue) for (const op of entry.plan.ops) written.delete(op.key);
    const done = this.commitBatch(batch).finally(() => {
      for (const key of written) {
        if (this.pending.get(key)?.committing === done) this.pending.delete(key);
      }
      this.committing = undefined;
      this.kick();
    });
    for (const key of written) {
      const queued = this.pending.get(key);
      if (queued) queued.committing = done;
    }
    this.committing = done;
  }

  private async commitBatch(batch: Entry[]): Promise<void> {
    const merged = mergeBatch(batch);
    let versions: (Version | undefined)[] | undefined | false = false;
    let failure: unknown;
    if (merged && merged.ops.length + merged.checks.length <= this.store.capabilities.maxCommitOps) {
      try {
        versions = await this.commitMerged(merged.ops, merged.checks);
      } catch (err) {
        failure = err;
      }
    }
    if (merged) this.remember(batch, merged.ops, versions || undefined);
    if (versions) {
      for (const entry of batch) entry.waiter?.resolve(entry.result);
      return;
    }
    if (failure !== undefined) {
      // The store refused or could not be reached: nothing of the batch is known to be written.
      for (const entry of batch) {
        entry.tx.forgetReads();
        if (entry.waiter) entry.waiter.reject(failure);
        else this.loseUpdate(failure);
      }
      return;
    }
    await this.replay(batch);
  }

  /**
   * What the batch wrote goes into the record cache with its new version where the store told
   * it (so the next operation reads no record back), and out of it otherwise.
   */
  private remember(batch: readonly Entry[], ops: readonly CommitOp[], versions: readonly (Version | undefined)[] | undefined): void {
    if (!this.cache) return;
    const uncached = new Set<string>();
    for (const entry of batch) if (!entry.cache) for (const op of entry.plan.ops) uncached.add(op.key);
    ops.forEach((op, i) => {
      const version = versions?.[i];
      if (!versions || uncached.has(op.key) || (op.value && version === undefined)) this.cache?.invalidate(op.key);
      else this.cache?.set(op.key, op.value ? { value: op.value, version: version ?? null } : { value: undefined, version: null });
    });
  }

  /** The versions the ops left (undefined: unknown), or false when the commit did not apply. */
  private async commitMerged(ops: CommitOp[], checks: CommitCheck[]): Promise<(Version | undefined)[] | false> {
    if (ops.length === 0) return [];
    if (ops.length === 1 && checks.length === 0) {
      const [op] = ops;
      if (op.value) {
        const put = await this.store.put(op.key, op.value, op.condition);
        return put.ok ? [put.version] : false;
      }
      const deleted = op.condition.kind === 'ifAbsent' || (await this.store.delete(op.key, op.condition)) || op.condition.kind === 'none';
      return deleted ? [undefined] : false;
    }
    if (this.store.commitVersioned) return (await this.store.commitVersioned(ops, checks)) ?? false;
    // `enabled` guarantees commit.
    return (await this.store.commit!(ops, checks)) ? ops.map(() => undefined) : false;
  }

  /** Each operation of a batch that conflicted, again on its own, in order. */
  private async replay(batch: Entry[]): Promise<void> {
    for (const entry of batch) {
      entry.tx.forgetReads();
      try {
        const result = await transact(this.store, entry.cache, entry.body);
        entry.waiter?.resolve(result);
      } catch (err) {
        if (entry.waiter) entry.waiter.reject(err);
        else this.loseUpdate(err);
      }
    }
  }

  private loseUpdate(err: unknown): void {
    this.log.error({ err }, 'an operation answered before its commit could not be committed (another mount changed the same records)');
    this.lost ??= err;
  }
}

/**
 * One commit for a batch of transactions in order: for each key the condition of the first
 * transaction that took it from the store, the value of the last write. Undefined when two
 * transactions saw different versions of one key, so that no single commit can stand for both.
 */
export function mergeBatch(batch: readonly { readonly plan: CommitPlan }[]): CommitPlan | undefined {
  const ops = new Map<string, CommitOp>();
  const checks = new Map<string, Version | null>();
  for (const { plan } of batch) {
    for (const check of plan.checks) {
      if (ops.has(check.key)) return undefined; // read from the store what an earlier one wrote
      const seen = checks.get(check.key);
      if (seen !== undefined && seen !== check.version) return undefined;
      checks.set(check.key, check.version);
    }
    for (const op of plan.ops) {
      const earlier = ops.get(op.key);
      if (earlier) {
        if (op.condition !== PENDING_CONDITION) return undefined; // wrote without reading the earlier write
        if (op.value === null && earlier.condition.kind === 'ifAbsent') {
          // Created and removed within the batch: the key must still be absent, nothing to write.
          ops.delete(op.key);
          checks.set(op.key, null);
        } else {
          ops.set(op.key, { key: op.key, value: op.value, condition: earlier.condition });
        }
        continue;
      }
      if (op.condition === PENDING_CONDITION) return undefined; // read a write of another batch
      const read = checks.get(op.key);
      let condition = op.condition;
      if (read !== undefined) {
        // Read by an earlier one, written by this one from the same read.
        checks.delete(op.key);
        const own = read === null ? IF_ABSENT : ifVersion(read);
        if (condition.kind !== own.kind || (condition.kind === 'ifVersion' && own.kind === 'ifVersion' && condition.version !== own.version)) {
          if (condition.kind !== 'none') return undefined;
          condition = own;
        }
      }
      ops.set(op.key, { key: op.key, value: op.value, condition });
    }
  }
  return { ops: [...ops.values()], checks: [...checks].map(([key, version]) => ({ key, version })) };
}
