import type { Logger } from 'pino';
import {
  IF_ABSENT,
  conditionHolds,
  ifVersion,
  type CommitCheck,
  type Version,
  type WriteCondition,
} from '../backends/kv-store.js';
import { InjectedCrash } from './fault-points.js';
import { encodeEnvelope, encodeIntent, type Envelope } from './intent-codec.js';
import { previousOf, type RawState, type TxResolver } from './tx-resolver.js';

/** One key the commit locks: an op, or a key checked absent (locked so it stays absent). */
export interface LockPlan {
  readonly key: string;
  /** What the commit leaves there; `null` deletes (a checked-absent key stays absent). */
  readonly next: Buffer | null;
  readonly condition: WriteCondition;
  /** Versions checks on this same key expect (`null`: absent). */
  readonly expect: readonly (Version | null)[];
}

interface Placed {
  readonly version: Version;
  readonly envelope: Envelope;
}

/** Reads then CAS attempts on one key before the commit gives up on it as a conflict. */
const LOCK_ROUNDS = 16;
/** CAS attempts at the commit point when the store reports spurious conflicts. */
const COMMIT_ROUNDS = 3;

/**
 * One multi-key commit by the intent protocol described in intent-store.ts, run once by its
 * owner. Steps: read all keys (fail early) with the intent (pending) -> lock every key at
 * once (in sorted order where a live lock is in the way) -> validate version checks
 * -> intent CAS to committed (the commit point) -> replace envelopes by next values -> delete
 * the intent. Any failure before the commit point aborts and rolls back what was locked.
 */
export class IntentCommit {
  private readonly placed = new Map<string, Placed>();
  /**
   * Keys this commit locked and gave back: the version the value was put back at, and the
   * version it had before, which the commit's conditions were checked against.
   */
  private readonly restored = new Map<string, { readonly version: Version; readonly was: Version }>();
  /** The version each key was left at by this commit's own apply (null: deleted). */
  readonly written = new Map<string, Version | null>();
  private readonly intentKey: string;
  /** Version of our intent as last written or read; undefined until created or once gone. */
  private intentVersion: Version | undefined;
  private committed = false;

  /**
   * @param locks keys to lock, sorted (the canonical order that keeps waits cycle-free)
   * @param checks version checks on keys not locked (never `null`: absent checks are locks)
   */
  constructor(
    private readonly r: TxResolver,
    private readonly txid: string,
    private readonly locks: readonly LockPlan[],
    private readonly checks: readonly CommitCheck[],
    private readonly createdAt: number,
    private readonly log: Logger,
  ) {
    this.intentKey = r.intentKey(txid);
  }

  /**
   * @returns true once committed, false on a failed condition or check, or on a conflict
   *   (a lock held too long, or another client aborting this one as abandoned).
   * @throws the store's error when a call failed before the commit point; the commit is then
   *   rolled back where the store still answers, and its outcome is unknown only if the
   *   failing call was the commit point itself (the error says so by being thrown).
   */
  async commit(): Promise<boolean> {
    try {
      return await this.attempt();
    } catch (err) {
      if (err instanceof InjectedCrash) throw err;
      if (this.committed) {
        // Durable already: the intent says committed, so any client rolls the rest forward.
        this.log.warn({ err, txid: this.txid }, 'commit applied, but replacing its locks failed; others will finish it');
        return true;
      }
      if ((await this.settleAfterError()) === 'committed') return true;
      throw err;
    }
  }

  private async attempt(): Promise<boolean> {
    // One read of every key first: a commit that fails on what the caller already knows fails
    // with no write at all, and the locks below CAS against these versions without re-reading.
    // The intent goes out with that read: it names a fresh id, so nothing else waits for it.
    const keys = [...this.locks.map((l) => l.key), ...this.checks.map((c) => c.key)];
    const intent = encodeIntent({ state: 'pending', createdAt: this.createdAt, keys: this.locks.map((l) => l.key) });
    const [found, created] = await settleBoth(
      this.r.call('precheck.read', keys[0], () => this.r.inner.getMany(keys)),
      this.r.call('intent.create', this.intentKey, () => this.r.inner.put(this.intentKey, intent, IF_ABSENT)),
    );
    if (created.ok) this.intentVersion = created.version;
    const pre = keys.map((key, i) => this.r.decodeRaw(key, found[i]));
    if (this.failsAlready(pre)) {
      // Nothing was locked: only the intent goes again.
      await this.deleteIntent(true);
      return false;
    }
    // A taken id or a spurious conflict: nothing was locked, the caller retries.
    if (!created.ok) return false;
    if (!(await this.lockAll(pre))) return this.abort();
    if (!(await this.validateChecks())) return this.abort();
    if (!(await this.commitPoint())) return this.abort();
    this.committed = true;
    await this.applyAll();
    return true;
  }

  /** Whether a condition or check fails on the state read before locking (locked keys aside). */
  private failsAlready(pre: readonly RawState[]): boolean {
    for (let i = 0; i < this.locks.length; i++) {
      const raw = pre[i];
      if (raw.kind !== 'envelope' && !lockable(this.locks[i], raw)) return true;
    }
    for (let i = 0; i < this.checks.length; i++) {
      const raw = pre[this.locks.length + i];
      if (raw.kind !== 'envelope' && versionOf(raw) !== this.checks[i].version) return true;
    }
    return false;
  }

  /**
   * Locks every key, all at once: the CASes are independent, so they share one round trip.
   * A key held by a live commit is not waited for while later keys are held (two commits
   * could then wait for each other): the keys after it are given back, and it and they are
   * locked one by one in sorted order, waiting as needed, as a commit holding only earlier
   * keys may.
   * @returns false when a condition fails or a lock could not be had
   */
  private async lockAll(pre: readonly RawState[]): Promise<boolean> {
    const outcomes = await settleAll(this.locks.map((plan, i) => this.lock(plan, pre[i], false)));
    if (outcomes.includes('failed')) return false;
    const busy = outcomes.indexOf('busy');
    if (busy < 0) return true;
    const later = this.locks.slice(busy).filter((plan) => this.placed.has(plan.key));
    const given = await settleAll(later.map((plan) => this.unlock(plan.key)));
    if (given.includes(false)) return false;
    for (const plan of this.locks.slice(busy)) {
      if ((await this.lock(plan, undefined, true)) !== 'locked') return false;
    }
    return true;
  }

  /** Puts back the value an envelope of ours replaced, before the commit point. */
  private async unlock(key: string): Promise<boolean> {
    const placed = this.placed.get(key);
    if (!placed) return true;
    const released = await this.r.releaseKey(this.txid, key, false, 'rollback.write', { kind: 'envelope', ...placed });
    if (!released) return false;
    this.placed.delete(key);
    const prev = placed.envelope.prev;
    if (prev && released.version) this.restored.set(key, { version: released.version, was: prev.version });
    return true;
  }

  /**
   * Locks one key: resolve foreign locks, verify the condition, CAS the envelope in. `known`
   * is the key as read before the intent was written, if it was; later rounds read it afresh.
   * Without `wait`, a key held by a live commit is reported busy at once.
   */
  private async lock(plan: LockPlan, known: RawState | undefined, wait: boolean): Promise<'locked' | 'busy' | 'failed'> {
    let waits = 0;
    for (let round = 0; round < LOCK_ROUNDS; round++) {
      const raw = round === 0 && known ? known : await this.r.readRaw('lock.read', plan.key);
      if (raw.kind === 'envelope') {
        if (raw.envelope.txid === this.txid) {
          // Our own CAS landed although the store reported a failure.
          this.placed.set(plan.key, { version: raw.version, envelope: raw.envelope });
          return 'locked';
        }
        const decision = await this.r.decide(raw.envelope.txid);
        if (decision === 'live') {
          if (!wait) return 'busy';
          if (++waits > this.r.settings.lockWaitAttempts) return 'failed';
          await this.r.backoff(waits);
          continue;
        }
        const content = decision === 'committed' ? raw.envelope.next : (raw.envelope.prev?.value ?? null);
        // Whether this CAS or someone else's resolved it, the next read shows a plain state.
        await this.r.replace('resolve.write', plan.key, raw.version, content);
        continue;
      }
      // Unchanged since this commit put it back: the same state its conditions held for.
      const restored = this.restored.get(plan.key);
      const checked = raw.kind === 'plain' && restored?.version === raw.version ? { ...raw, version: restored.was } : raw;
      if (!lockable(plan, checked)) return 'failed';
      const current = raw.kind === 'plain' ? { value: raw.value, version: raw.version } : undefined;
      const envelope: Envelope = { txid: this.txid, prev: current ?? null, next: plan.next };
      const result = await this.r.call('lock.write', plan.key, () =>
        this.r.inner.put(plan.key, encodeEnvelope(envelope), current ? ifVersion(current.version) : IF_ABSENT),
      );
      if (result.ok) {
        this.placed.set(plan.key, { version: result.version, envelope });
        return 'locked';
      }
    }
    return 'failed';
  }

  /**
   * Checks read after every lock is held, as Silo validates its read set: a version that is
   * unchanged now was unchanged since the caller read it, so all checks held together at the
   * moment the last lock was taken, and the locks keep the written keys from changing until
   * the commit point.
   */
  private async validateChecks(): Promise<boolean> {
    if (this.checks.length === 0) return true;
    const keys = this.checks.map((c) => c.key);
    const found = await this.r.call('check.read', keys[0], () => this.r.inner.getMany(keys));
    for (let i = 0; i < keys.length; i++) {
      const version = await this.committedVersion(keys[i], this.r.decodeRaw(keys[i], found[i]));
      if (version === undefined || version !== this.checks[i].version) return false;
    }
    return true;
  }

  /** The version a key's committed state has, or undefined if a live lock makes it uncertain. */
  private async committedVersion(key: string, raw: RawState): Promise<Version | null | undefined> {
    if (raw.kind === 'absent') return null;
    if (raw.kind === 'plain') return raw.version;
    const decision = await this.r.decide(raw.envelope.txid);
    if (decision === 'committed') return raw.envelope.next ? raw.version : null;
    if (decision === 'aborted') return previousOf(raw.envelope)?.version ?? null;
    // Live: it may commit before we do. Missing: unknown without a write. Either way a conflict.
    return undefined;
  }

  /** CAS pending -> committed. False if another client aborted us meanwhile. */
  private async commitPoint(): Promise<boolean> {
    for (let round = 0; round < COMMIT_ROUNDS; round++) {
      const version = this.intentVersion;
      if (version === undefined) return false;
      const bytes = encodeIntent({ state: 'committed', createdAt: this.createdAt, keys: this.locks.map((l) => l.key) });
      const result = await this.r.call('intent.commit', this.intentKey, () =>
        this.r.inner.put(this.intentKey, bytes, ifVersion(version)),
      );
      if (result.ok) {
        this.intentVersion = result.version;
        return true;
      }
      const tx = await this.r.readTx('intent.reread', this.txid);
      this.intentVersion = tx?.version;
      if (!tx || tx.state === 'aborted') return false;
      if (tx.state === 'committed') return true;
      // Still pending at a version we did not write: a spurious conflict, try again.
    }
    return false;
  }

  /** Replaces our envelopes by their next values, then deletes the intent. */
  private async applyAll(): Promise<void> {
    await this.deleteIntent(await this.releaseAll(true));
  }

  /**
   * Replaces every envelope we placed, forward or back, all at once: the CASes are
   * independent, and only the intent's deletion must wait for all of them.
   * @returns whether every key is free of our envelope.
   */
  private async releaseAll(forward: boolean): Promise<boolean> {
    const point = forward ? 'apply.write' : 'rollback.write';
    const results = await Promise.allSettled(
      [...this.placed].map(async ([key, placed]) => {
        const released = await this.r.releaseKey(this.txid, key, forward, point, { kind: 'envelope', ...placed });
        if (forward && released && released.version !== undefined) this.written.set(key, released.version);
        return released !== false;
      }),
    );
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (failures.length > 0) throw failures.find((e) => e instanceof InjectedCrash) ?? failures[0];
    return results.every((r) => r.status === 'fulfilled' && r.value);
  }

  /** Marks the intent aborted (so waiters need not wait), rolls back, deletes the intent. */
  private async abort(): Promise<false> {
    const version = this.intentVersion;
    if (version !== undefined) {
      const bytes = encodeIntent({ state: 'aborted', createdAt: this.createdAt, keys: this.locks.map((l) => l.key) });
      const marked = await this.r.call('abort.intent', this.intentKey, () =>
        this.r.inner.put(this.intentKey, bytes, ifVersion(version)),
      );
      if (marked.ok) this.intentVersion = marked.version;
      else this.intentVersion = (await this.r.readTx('intent.reread', this.txid))?.version;
    }
    await this.deleteIntent(await this.releaseAll(false));
    return false;
  }

  /** Deletes our intent if every envelope is gone; otherwise leaves it for helpers and fsck. */
  private async deleteIntent(clean: boolean): Promise<void> {
    const version = this.intentVersion;
    if (version === undefined) return;
    if (!clean) {
      this.log.warn({ txid: this.txid }, 'keys of a finished commit kept changing; left its intent for others to finish');
      return;
    }
    await this.r.call('intent.delete', this.intentKey, () => this.r.inner.delete(this.intentKey, ifVersion(version)));
  }

  /**
   * After a store error before the commit point was known to pass: decide our transaction
   * ourselves rather than leave its locks to the timeout. Aborts it if still pending. A
   * commit point that failed with an error may have landed: then it is rolled forward.
   */
  private async settleAfterError(): Promise<'committed' | 'aborted' | 'unknown'> {
    try {
      for (let round = 0; round < COMMIT_ROUNDS; round++) {
        const tx = await this.r.readTx('intent.reread', this.txid);
        if (!tx) {
          // Gone: it can no longer commit; take back whatever we may have locked.
          for (const plan of this.locks) await this.r.releaseKey(this.txid, plan.key, false, 'rollback.write');
          return 'aborted';
        }
        if (tx.state === 'pending') {
          const version = await this.r.setState('abort.intent', tx, 'aborted');
          if (version === undefined) continue;
          await this.r.finishTx({ ...tx, state: 'aborted', version });
          return 'aborted';
        }
        await this.r.finishTx(tx);
        return tx.state;
      }
      return 'unknown';
    } catch (err) {
      if (err instanceof InjectedCrash) throw err;
      this.log.warn({ err, txid: this.txid }, 'could not settle a failed commit; others will after the lock timeout');
      return 'unknown';
    }
  }
}

/**
 * The results of calls run together, once every one has settled; then the first failure is
 * thrown (an injected crash first), so that nothing is still in flight when the caller moves on.
 */
async function settleAll<T>(calls: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(calls);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) throw failures.find((e) => e instanceof InjectedCrash) ?? failures[0];
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Two calls run together, as {@link settleAll}. */
async function settleBoth<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  const failures = [ra, rb].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) throw failures.find((e) => e instanceof InjectedCrash) ?? failures[0];
  return [(ra as PromiseFulfilledResult<A>).value, (rb as PromiseFulfilledResult<B>).value];
}

/** The version of a plain or absent key (`null` when absent). */
function versionOf(raw: RawState & { kind: 'absent' | 'plain' }): Version | null {
  return raw.kind === 'plain' ? raw.version : null;
}

/** Whether the op's condition and the checks on its key hold for the key's plain state. */
function lockable(plan: LockPlan, raw: RawState & { kind: 'absent' | 'plain' }): boolean {
  const current = raw.kind === 'plain' ? { value: raw.value, version: raw.version } : undefined;
  const version = versionOf(raw);
  return conditionHolds(plan.condition, current) && plan.expect.every((v) => v === version);
}
