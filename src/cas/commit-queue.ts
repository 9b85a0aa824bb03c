import type { Logger } from 'pino';
import { IF_ABSENT, ifVersion, type CommitCheck, type CommitOp, type KvStore, type Version } from '../backends/kv-store.js';
import type { RecordCache } from './record-cache.js';
import { PENDING_CONDITION, Transaction, runBody, transact, type CommitPlan, type InFlightWrite, type PendingWrites } from './transaction.js';

export interface CommitQueueOptions {
  /** How long a deferred operation may wait for a commit to share, ms. Default 10. */
  readonly deferMs?: number;
  /** Operations answered before their commit, at most, queued or in the store's hands. Default 256. */
  readonly maxDeferred?: number;
  /**
   * Whether an operation may be answered as soon as the store has taken its commit, before it
   * applies (and before the disk flush behind it). Default: when the store takes commits ahead
   * and no other process has it open, so nobody could look before it applies.
   */
  readonly answerWhenTaken?: () => boolean;
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

/** Operations taken from the queue together: one store commit. */
interface Batch {
  readonly entries: Entry[];
  /** Resolves once the store has taken the commit (or refused it). */
  taken: Promise<unknown>;
  /** Whether `taken` has resolved: versions are known then, where the store tells them. */
  takenYet: boolean;
  /** The version each key will have once the commit applies (null: deleted), once taken. */
  readonly versions: Map<string, Version | null>;
  /** Resolves once the batch's outcome is dealt with: answers given, or the operations replayed. */
  done: Promise<void>;
  /** Entries whose callers were answered before the commit. */
  readonly answered: number;
}

interface Queued {
  value: Buffer | null;
  /** The batch committing it, once taken from the queue. */
  batch?: Batch;
}

/**
 * One store commit for every operation in flight (group commit), and for the operations that
 * were answered before committing (deferred). Operations run their transaction bodies at once,
 * reading what queued operations wrote; a commit takes everything queued, in order, merged into
 * a single atomic commit (a key's condition is the first one on it, its value the last write),
 * so after a crash the store holds a prefix of the operations, each whole.
 *
 * Stores that take commits ahead ({@link KvStore.commitAhead}: LMDB) get the next commit as soon
 * as the last one is taken, each conditional on the one before, and later operations read a
 * taken write with the version it will have: nothing waits for a commit to apply (a disk flush)
 * unless its caller does. Other stores get one commit at a time.
 *
 * A commit that conflicts (another process changed a record) is undone by replaying every
 * operation of it, and of the commits after it, in order, each in its own transaction with
 * retries: a waiting operation gets the replay's outcome, one answered before that now fails is
 * logged and reported by the next {@link takeLostUpdate} (fsync). Only for stores with their own
 * multi-key transactions; on others every operation commits by itself, as transact() does.
 */
export class CommitQueue implements PendingWrites {
  private queue: Entry[] = [];
  /** Entries of the queue whose callers were answered already. */
  private deferred = 0;
  /** Entries answered already whose batches are in the store's hands. */
  private answeredInFlight = 0;
  private readonly pending = new Map<string, Queued>();
  /** Batches taken from the queue whose outcome is not dealt with yet, oldest first. */
  private readonly inFlight: Batch[] = [];
  /** Set while a batch is being handed to the store: the next one waits for it. */
  private handing: Promise<void> | undefined;
  /** Set while a failed batch and those after it are replayed: nothing new is handed over. */
  private recovering: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lost: unknown;
  private readonly deferMs: number;
  private readonly maxDeferred: number;
  private readonly answerWhenTaken: () => boolean;
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
    const ahead = store.commitAhead !== undefined;
    const alone = options.answerWhenTaken ?? (() => ahead && store.otherProcessesAttached?.() === false);
    let was: boolean | undefined;
    this.answerWhenTaken = () => {
      const now = alone();
      if (ahead && now !== was) {
        was = now;
        log.info(
          now
            ? 'no other process has the store open: operations are answered once their commit is handed over'
            : 'another process has the store open: operations wait for their commits to apply',
        );
      }
      return now;
    };
  }

  lookup(key: string): Buffer | null | undefined | InFlightWrite | Promise<void> {
    const queued = this.pending.get(key);
    if (!queued) return undefined;
    const { batch } = queued;
    if (!batch) return queued.value;
    const version = batch.versions.get(key);
    if (version !== undefined) return { value: queued.value, version };
    return batch.takenYet ? batch.done : batch.taken.then(() => undefined);
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
      const room = this.deferred + this.answeredInFlight < this.maxDeferred;
      if (options.defer && room) {
        this.enqueue({ body, tx, result, cache, plan: tx.plan() });
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.kick();
        }, this.deferMs);
        return result;
      }
      if (room && this.answerWhenTaken()) {
        this.enqueue({ body, tx, result, cache, plan: tx.plan() });
        this.kick();
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
    for (;;) {
      this.kick();
      const waitFor = this.handing ?? this.recovering ?? this.inFlight.at(-1)?.done;
      if (waitFor) await waitFor;
      else if (this.queue.length === 0) return;
    }
  }

  /**
   * Resolves once everything queued before the call can be seen by any other process: applied,
   * or, while no other process has the store open, taken by the store (close-to-open without
   * waiting for a disk flush).
   */
  async publish(): Promise<void> {
    if (!this.answerWhenTaken()) return this.settle();
    for (;;) {
      this.kick();
      const waitFor = this.handing ?? this.recovering;
      if (waitFor) await waitFor;
      else if (this.queue.length === 0) return;
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
   * 'stale' when the transaction read something the queue has changed since (run the body
   * again, to read it); a promise when what it read is being committed and its version is not
   * known yet (wait, then run again); undefined when the transaction can join the queue.
   */
  private staleness(tx: Transaction): 'stale' | Promise<unknown> | undefined {
    for (const key of tx.keysFromStore()) {
      const queued = this.pending.get(key);
      if (!queued) continue;
      const { batch } = queued;
      if (!batch) return 'stale';
      const version = batch.versions.get(key);
      if (version === undefined) return batch.takenYet ? batch.done : batch.taken;
      const read = tx.versionRead(key);
      if (read === version) continue; // read the taken write itself
      return read === undefined ? batch.done : 'stale';
    }
    // A queued write it read must still be the queue's last word on that key, and not taken yet.
    for (const [key, value] of tx.pendingReads()) {
      const queued = this.pending.get(key);
      if (!queued || queued.batch || queued.value !== value) return 'stale';
    }
    return undefined;
  }

  private enqueue(entry: Entry): void {
    this.queue.push(entry);
    if (!entry.waiter) this.deferred++;
    for (const op of entry.plan.ops) {
      const queued = this.pending.get(op.key);
      if (queued && !queued.batch) queued.value = op.value;
      else this.pending.set(op.key, { value: op.value });
    }
  }

  /** Hands what is queued to the store, unless a hand-over or a replay is under way (it calls again). */
  private kick(): void {
    if (this.handing || this.recovering || this.queue.length === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // A batch stays within what one store commit takes (with room for the link to the last one).
    const room = Math.max(1, Math.floor(this.store.capabilities.maxCommitOps / 2) - 1);
    let size = 0;
    let count = 0;
    while (count < this.queue.length) {
      const { ops, checks } = this.queue[count].plan;
      if (count > 0 && size + ops.length + checks.length > room) break;
      size += ops.length + checks.length;
      count++;
    }
    const entries = this.queue.slice(0, count);
    this.queue = this.queue.slice(count);
    let answered = 0;
    for (const entry of entries) if (!entry.waiter) answered++;
    this.deferred -= answered;
    this.answeredInFlight += answered;
    const batch: Batch = { entries, taken: Promise.resolve(), takenYet: false, versions: new Map(), done: Promise.resolve(), answered };
    const written = new Set<string>();
    for (const entry of entries) for (const op of entry.plan.ops) written.add(op.key);
    // A key that a later entry writes again keeps its queued value for readers.
    for (const entry of this.queue) for (const op of entry.plan.ops) written.delete(op.key);
    for (const key of written) {
      const queued = this.pending.get(key);
      if (queued) queued.batch = batch;
    }
    const previous = this.inFlight.at(-1);
    this.inFlight.push(batch);
    const taken = this.handOver(batch, previous);
    batch.taken = taken;
    // A batch the store did not take is replayed before anything after it is handed over.
    const handing = taken.then(
      (handed) => {
        batch.takenYet = true;
        return handed ? undefined : batch.done;
      },
      () => {
        batch.takenYet = true;
        return batch.done;
      },
    );
    this.handing = handing;
    void handing.then(() => {
      if (this.handing === handing) this.handing = undefined;
      this.kick();
    });
    batch.done = this.finish(batch, taken, previous?.done).finally(() => {
      for (const key of written) if (this.pending.get(key)?.batch === batch) this.pending.delete(key);
      this.inFlight.splice(this.inFlight.indexOf(batch), 1);
      this.answeredInFlight -= batch.answered;
      this.kick();
    });
  }

  /**
   * Gives the batch's merged commit to the store. On a store that takes commits ahead, the
   * commit also checks one record the previous batch writes, if that is still in flight, so that
   * it applies only after that one did.
   * @returns whether it applied (a promise, on stores that take commits ahead), or undefined
   *   when the batch cannot be one commit
   */
  private async handOver(batch: Batch, previous: Batch | undefined): Promise<{ versions: readonly (Version | undefined)[]; applied: Promise<boolean>; ops: CommitOp[] } | undefined> {
    const merged = mergeBatch(batch.entries, (key) => previous && this.inFlight.includes(previous) ? this.versionInFlight(key) : undefined);
    if (!merged || merged.ops.length + merged.checks.length > this.store.capabilities.maxCommitOps) return undefined;
    const { ops } = merged;
    let checks = merged.checks;
    if (ops.length === 0) return { versions: [], applied: Promise.resolve(true), ops };
    if (this.store.commitAhead) {
      const link = previous && this.inFlight.includes(previous) ? linkTo(previous, merged) : undefined;
      if (link) checks = [...checks, link];
      const taken = await this.store.commitAhead(ops, checks);
      ops.forEach((op, i) => batch.versions.set(op.key, op.value ? (taken.versions[i] ?? null) : null));
      // Versions unknown for some op: readers wait for the outcome rather than guess.
      for (const [i, op] of ops.entries()) if (op.value && taken.versions[i] === undefined) batch.versions.delete(op.key);
      return { versions: taken.versions, applied: taken.applied, ops };
    }
    const versions = await this.commitMerged(ops, checks);
    return { versions: versions || [], applied: Promise.resolve(versions !== false), ops };
  }

  /** The version a batch in flight gives `key`, if one writes it. */
  private versionInFlight(key: string): Version | null | undefined {
    for (let i = this.inFlight.length - 1; i >= 0; i--) {
      const version = this.inFlight[i].versions.get(key);
      if (version !== undefined) return version;
    }
    return undefined;
  }

  /** Deals with a batch's outcome once every batch before it is dealt with. */
  private async finish(
    batch: Batch,
    taken: Promise<{ versions: readonly (Version | undefined)[]; applied: Promise<boolean>; ops: CommitOp[] } | undefined>,
    before: Promise<void> | undefined,
  ): Promise<void> {
    let applied = false;
    let failure: unknown;
    let commit: { versions: readonly (Version | undefined)[]; ops: CommitOp[] } | undefined;
    try {
      const handed = await taken;
      if (handed) {
        commit = handed;
        applied = await handed.applied;
      }
    } catch (err) {
      failure = err;
    }
    await before;
    if (commit) this.remember(batch.entries, commit.ops, applied ? commit.versions : undefined);
    if (applied) {
      for (const entry of batch.entries) entry.waiter?.resolve(entry.result);
      return;
    }
    const recovering = this.replayOrReport(batch, failure);
    this.recovering = recovering;
    try {
      await recovering;
    } finally {
      if (this.recovering === recovering) this.recovering = undefined;
    }
  }

  private async replayOrReport(batch: Batch, failure: unknown): Promise<void> {
    if (failure !== undefined) {
      // The store refused or could not be reached: nothing of the batch is known to be written.
      for (const entry of batch.entries) {
        entry.tx.forgetReads();
        if (entry.waiter) entry.waiter.reject(failure);
        else this.loseUpdate(failure);
      }
      return;
    }
    await this.replay(batch.entries);
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
 * A check that `previous` applied: one record it writes, at the version it gives it, unless the
 * new commit already touches that record (its own condition then links it).
 */
function linkTo(previous: Batch, merged: CommitPlan): CommitCheck | undefined {
  const touched = new Set([...merged.ops.map((op) => op.key), ...merged.checks.map((check) => check.key)]);
  for (const [key, version] of previous.versions) {
    if (touched.has(key)) return undefined;
    return { key, version };
  }
  return undefined;
}

/**
 * One commit for a batch of transactions in order: for each key the condition of the first
 * transaction that took it from the store, the value of the last write. Undefined when two
 * transactions saw different versions of one key, so that no single commit can stand for both.
 */
export function mergeBatch(
  batch: readonly { readonly plan: CommitPlan }[],
  /** The version an earlier commit still in flight gives a key, for writes that read it queued. */
  inFlight: (key: string) => Version | null | undefined = () => undefined,
): CommitPlan | undefined {
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
      let condition = op.condition;
      if (condition === PENDING_CONDITION) {
        // Read a write that an earlier commit took: conditional on the version it gives.
        const version = inFlight(op.key);
        if (version === undefined) return undefined;
        condition = version === null ? IF_ABSENT : ifVersion(version);
      }
      const read = checks.get(op.key);
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
