/**
 * Crash-atomic multi-key commits for stores that only have single-key CAS (memcached, Redis
 * Cluster across slots, Voldemort), by intent records any client can roll forward.
 *
 * RECORDS. Every value the wrapper stores starts with a tag byte (intent-codec.ts): plain, or
 * a lock envelope {txid, prev (value and its version, or absent), next (value or delete)}.
 * Intents live at `<ns>x:<txid>`: {state pending|committed|aborted, createdAt, locked keys}.
 * Wrapper versions are the underlying store's versions.
 *
 * COMMIT (owner, intent-commit.ts).
 *  0. getMany of every key involved; a condition or check that already fails returns false
 *     having written none of them (so a failed commit leaves even the versions untouched).
 *  1. put the intent, pending, ifAbsent, together with step 0 (deleted again if step 0 fails).
 *  2. for each key to lock, all at once, starting from the state read in step 0: if it
 *     holds another transaction's envelope, decide that one (below) and re-read, or back off a
 *     bounded number of times while it is live and then give up (conflict); verify the op's
 *     condition and any check on the key against the plain state; CAS (ifVersion / ifAbsent of
 *     exactly what was read) the envelope in, re-reading on failure. Keys checked absent are
 *     locked too (envelope prev = next = absent), so they stay absent. A failed condition
 *     aborts: intent -> aborted, envelopes back, intent deleted. A key held by a live
 *     commit is waited for only once the keys after it in sorted order are given back (put
 *     back by CAS), and those are then locked one by one in that order.
 *  3. read the version-checked keys; each must still show the expected committed version.
 *  4. COMMIT POINT: CAS the intent pending -> committed, against the version we wrote.
 *  5. replace each envelope by its next value (or delete), by CAS on the envelope's version.
 *  6. delete the intent.
 *
 * DECIDING ANOTHER TRANSACTION T (any client, tx-resolver.ts), after reading T's envelope:
 * read T's intent. committed -> the key's state is next; aborted -> prev; pending and live ->
 * prev (T has not committed); pending and abandoned (lock-liveness.ts) -> CAS it to aborted,
 * then prev; missing -> T can no longer commit (see invariant I3), so prev, but only a CAS on
 * the envelope proves it is still there. Helpers write only by CAS on the exact version read.
 *
 * WHY IT IS CORRECT.
 *  I1. A transaction commits iff the CAS of step 4 succeeds, and only the owner issues it,
 *      against the pending version it wrote. Anyone else may only move pending -> aborted, by
 *      CAS. So "committed" and "aborted" are exclusive and final, and the decision never
 *      depends on clocks: the lock timeout only chooses when to abort (liveness). Aborting a
 *      live transaction is safe; it just returns false (conflict) to its caller.
 *  I2. Versions never repeat (kv-store.ts), so a CAS at a version read earlier succeeds only
 *      if nothing changed in between: a helper acting on a stale read fails harmlessly.
 *  I3. An intent is deleted only after every one of its keys was seen not to hold its envelope
 *      (owner: steps 5-6 or the abort path; helpers: finishTx). Envelopes are placed only
 *      before the commit point, so once committed no new envelope of T appears. Hence a key
 *      still holding T's envelope after T's intent is gone belongs to a T that never
 *      committed (an owner may place a late envelope after a helper aborted and deleted T):
 *      rolling it back by CAS is right.
 *  I4. Atomic visibility: before step 4 every written key holds T's envelope or its old plain
 *      value, and every reader maps the envelope to prev (T undecided or aborted); from step 4
 *      on, readers map it to next, and plain values written in step 5 are next. No reader can
 *      see a mix: which state an envelope shows depends on T's intent alone, read after the
 *      envelope (get, getMany) and, for "missing", confirmed by a CAS on the envelope.
 *  I5. Isolation: a key cannot change while locked (plain writes CAS against plain versions,
 *      which never equal an envelope's version; conditional writes over an envelope first
 *      decide it and never overwrite a live one). Conditions are verified under the lock;
 *      version checks are validated after all locks are held, so every check held at the
 *      moment the last lock was taken (versions never repeat), when every op's condition
 *      held too. This is Silo's commit protocol; sorted lock order makes waits cycle-free.
 *  I6. Crash anywhere: before step 4 the intent is pending (or aborted, or missing) and every
 *      key reads as before; after it, as after. Whoever next meets a leftover envelope, or
 *      fsck (recover), finishes it. A pending intent whose owner died is aborted after the
 *      lock timeout.
 *
 * Versions a reader gets for a locked key: prev's version while T is undecided (a conditional
 * put with it then fails as a conflict, since the key now holds the envelope's version), the
 * new version when the reader itself resolved the lock, or the envelope's own version when T
 * is committed and someone else is resolving it (its committed state is next, so a put at that
 * version is a correct successor). Rolling back writes prev anew with a new version, so a
 * caller holding prev's version sees one spurious conflict; the contract allows it.
 *
 * Costs: a multi-key commit of n locked keys takes 2n + 3 writes and one or two getMany
 * (two with version checks): 5 or 6 sequential round trips whatever n, as steps 0 and 1 go
 * out together and the n writes of step 2, and of step 5, each go out together. Envelopes
 * hold two values, so `maxValueBytes` is about half the store's. Stores must
 * not evict (memcached: run with -M); an evicted intent would read as missing.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { destination, pino, type Logger } from 'pino';
import { ValueTooLarge } from '../backends/errors.js';
import {
  IF_ABSENT,
  MAX_KEY_BYTES,
  UNCONDITIONAL,
  conditionHolds,
  type CommitCheck,
  type CommitOp,
  type KvStore,
  type PutResult,
  type StoreCapabilities,
  type Version,
  type VersionedValue,
  type WriteCondition,
} from '../backends/kv-store.js';
import type { FaultHook } from './fault-points.js';
import { IntentCommit, type LockPlan } from './intent-commit.js';
import { ENVELOPE_OVERHEAD, MAX_TXID_BYTES, encodePlain } from './intent-codec.js';
import { IntentRecovery, type IntentInfo, type RecoveryOptions, type RecoveryReport } from './intent-recovery.js';
import { KeyLock } from './key-lock.js';
import { LockLiveness } from './lock-liveness.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContentionError } from './retry.js';
import { TxResolver, previousOf, type RawState } from './tx-resolver.js';

export type { IntentInfo, RecoveryOptions, RecoveryReport } from './intent-recovery.js';

export interface IntentCommitOptions {
  /** Prefix of the wrapper's own records (intents at `<namespace>x:<txid>`). Default `_cas/`. */
  readonly namespace?: string;
  /**
   * How long a pending intent may stay pending before others abort it as abandoned, ms.
   * Must exceed any live commit's duration; errs on the side of waiting. Default 20000.
   */
  readonly lockTimeoutMs?: number;
  /** Backoffs while a key is locked by a live commit, before giving up (conflict). Default 8. */
  readonly lockWaitAttempts?: number;
  /** First backoff ceiling while waiting for a lock, ms; doubles per wait. Default 2. */
  readonly backoffBaseMs?: number;
  /** Largest backoff ceiling, ms. Default 100. */
  readonly backoffMaxMs?: number;
  /**
   * Largest ops + checks per commit; capped so the intent fits one value. Default 128: a
   * directory leaf that splits writes its 64 children, itself and two inodes in one commit.
   */
  readonly maxCommitOps?: number;
  /** Uniform in [0, 1) for backoff jitter. Default Math.random. */
  readonly random?: () => number;
  /** Wall clock, ms since epoch (intent ages). Default Date.now. */
  readonly now?: () => number;
  /** Clock that never jumps, ms (local lock observation). Default performance.now. */
  readonly monotonicNow?: () => number;
  /** Default setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** New transaction id, printable ASCII, at most 64 bytes. Default 16 random bytes in hex. */
  readonly newTxId?: () => string;
  /** Called before every store call; see fault-points.ts. Default none. */
  readonly faults?: FaultHook;
  /** Warnings (locks left for others to finish). Default: warn level to stderr. */
  readonly log?: Logger;
}

/** Read rounds before a get gives up on a key whose lock keeps changing. */
const READ_ROUNDS = 8;
/** Rounds of the general single-key write before it reports a conflict. */
const WRITE_ROUNDS = 16;

type WriteOutcome =
  | { readonly kind: 'written'; readonly version: Version | null }
  | { readonly kind: 'absent' }
  | { readonly kind: 'conflict' };

/**
 * A KvStore with `commit`, over a store without one (see the protocol above). Every client of
 * the store must go through this wrapper: it tags values, so raw reads would see the tags.
 */
export class IntentCommitStore implements KvStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  /** Keys that hold the wrapper's intents start with this. */
  readonly namespace: string;
  private readonly resolver: TxResolver;
  private readonly keyLock = new KeyLock();
  private readonly now: () => number;
  private readonly newTxId: () => string;
  private readonly log: Logger;
  readonly scan?: (prefix: string) => AsyncIterable<string>;

  /**
   * @throws RangeError when the store already has native commit (use {@link withAtomicCommit}),
   *   when it is too small to hold an envelope, or on an invalid option.
   */
  constructor(
    readonly inner: KvStore,
    options: IntentCommitOptions = {},
  ) {
    if (inner.commit) throw new RangeError(`store ${inner.name} has native commit; use withAtomicCommit()`);
    this.namespace = options.namespace ?? '_cas/';
    if (!/^[\x21-\x7e]{1,32}$/.test(this.namespace)) {
      throw new RangeError(`intent namespace must be 1 to 32 printable ASCII characters, got "${this.namespace}"`);
    }
    const lockTimeoutMs = positive('lockTimeoutMs', options.lockTimeoutMs ?? 20_000);
    const lockWaitAttempts = whole('lockWaitAttempts', options.lockWaitAttempts ?? 8);
    const backoffBaseMs = positive('backoffBaseMs', options.backoffBaseMs ?? 2);
    const backoffMaxMs = positive('backoffMaxMs', options.backoffMaxMs ?? 100);
    if (backoffMaxMs < backoffBaseMs) throw new RangeError('backoffMaxMs must be at least backoffBaseMs');
    const innerMax = inner.capabilities.maxValueBytes;
    const maxValueBytes = Math.floor((innerMax - ENVELOPE_OVERHEAD) / 2);
    if (maxValueBytes < 1) throw new RangeError(`store ${inner.name} takes values of ${innerMax} bytes, too small for lock envelopes`);
    // The intent lists every locked key; it must fit in one value.
    const fitting = Math.floor((innerMax - 64) / (MAX_KEY_BYTES + 3));
    const maxCommitOps = Math.min(whole('maxCommitOps', options.maxCommitOps ?? 128), fitting);
    this.name = inner.name;
    this.capabilities = Object.freeze({
      maxValueBytes,
      atomicCommit: true,
      commitByIntents: true,
      maxCommitOps,
      placement: inner.capabilities.placement,
      scansByRange: inner.capabilities.scansByRange,
    });
    this.now = options.now ?? Date.now;
    this.newTxId = options.newTxId ?? (() => randomBytes(16).toString('hex'));
    this.log = options.log ?? pino({ name: 'cas', level: 'warn' }, destination({ fd: 2, sync: true }));
    this.resolver = new TxResolver({
      inner,
      namespace: this.namespace,
      liveness: new LockLiveness(lockTimeoutMs, this.now, options.monotonicNow ?? (() => performance.now())),
      lockWaitAttempts,
      backoffBaseMs,
      backoffMaxMs,
      random: options.random ?? Math.random,
      sleep: options.sleep ?? sleep,
      faults: options.faults,
    });
    if (inner.scan) this.scan = (prefix) => this.scanPlain(prefix);
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    this.checkKey(key);
    return this.resolveRead(key, await this.resolver.readRaw('get', key));
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    keys.forEach((key) => this.checkKey(key));
    if (keys.length === 0) return [];
    const found = await this.resolver.call('getMany', keys[0], () => this.inner.getMany(keys));
    const out: (VersionedValue | undefined)[] = [];
    // Envelopes are rare (a commit in flight or a dead client's leftovers): resolve in turn.
    for (let i = 0; i < keys.length; i++) out.push(await this.resolveRead(keys[i], this.resolver.decodeRaw(keys[i], found[i])));
    return out;
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    this.checkKey(key);
    this.checkSize(key, value);
    const outcome = await this.writeOne(key, value, condition);
    return outcome.kind === 'written' && outcome.version !== null ? { ok: true, version: outcome.version } : { ok: false };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    this.checkKey(key);
    return (await this.writeOne(key, null, condition)).kind === 'written';
  }

  /**
   * Atomic multi-key commit by intent records (see the top of this file).
   * @returns false if a condition or check fails, or on a conflict (a key locked by a live
   *   commit for longer than the lock-wait budget, or this commit aborted as abandoned).
   * @throws RangeError for duplicate op keys, too many ops, or keys in the intent namespace;
   *   ValueTooLarge above `capabilities.maxValueBytes`; the store's errors, after rolling back.
   */
  async commit(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<boolean> {
    return (await this.commitVersioned(ops, checks)) !== undefined;
  }

  /**
   * {@link commit}, telling the version each op left where this client wrote it last (null
   * for a delete, undefined when unknown: another client finished the commit's apply), so
   * that the caller can cache what it wrote instead of reading it back.
   * @returns undefined when the commit did not apply
   */
  async commitVersioned(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<(Version | undefined)[] | undefined> {
    if (ops.length + checks.length > this.capabilities.maxCommitOps) {
      throw new RangeError(
        `commit of ${ops.length + checks.length} ops and checks exceeds maxCommitOps ${this.capabilities.maxCommitOps}`,
      );
    }
    const plans = new Map<string, { next: Buffer | null; condition: WriteCondition; expect: (Version | null)[] }>();
    for (const op of ops) {
      this.checkKey(op.key);
      if (plans.has(op.key)) throw new RangeError(`commit writes key ${op.key} twice`);
      if (op.value) this.checkSize(op.key, op.value);
      plans.set(op.key, { next: op.value, condition: op.condition, expect: [] });
    }
    const versionChecks: CommitCheck[] = [];
    for (const check of checks) {
      this.checkKey(check.key);
      const plan = plans.get(check.key);
      if (plan) plan.expect.push(check.version);
      // Absence has no version to validate later: lock the key so it stays absent.
      else if (check.version === null) plans.set(check.key, { next: null, condition: IF_ABSENT, expect: [] });
      else versionChecks.push(check);
    }
    if (plans.size === 0) return (await this.validateOnly(versionChecks)) ? [] : undefined;
    if (ops.length === 1 && checks.length === 0) {
      // A single-key commit is a single-key CAS: no intent needed.
      const outcome = await this.writeOne(ops[0].key, ops[0].value, ops[0].condition);
      if (outcome.kind === 'conflict') return undefined;
      return [outcome.kind === 'written' && outcome.version !== null ? outcome.version : undefined];
    }
    const locks: LockPlan[] = [...plans]
      .map(([key, p]) => ({ key, ...p }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return this.keyLock.withLocks(
      locks.map((l) => l.key),
      async () => {
        const commit = new IntentCommit(this.resolver, this.txid(), locks, versionChecks, this.now(), this.log);
        if (!(await commit.commit())) return undefined;
        return ops.map((op) => commit.written.get(op.key) ?? undefined);
      },
    );
  }

  /** Intents in the store (needs scan; memcached's is best effort), for fsck. */
  async pendingIntents(): Promise<IntentInfo[] | undefined> {
    return new IntentRecovery(this.resolver).list();
  }

  /**
   * For fsck: finishes every decided intent, aborts and rolls back abandoned ones (all pending
   * ones with `abortLive`, when no client can be running), and rolls back envelopes whose
   * intent vanished. Without scan it can only report that it listed nothing.
   */
  async recover(options: RecoveryOptions = {}): Promise<RecoveryReport> {
    return new IntentRecovery(this.resolver).recover(options);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }

  /** A key's committed state, resolving a lock found on it. */
  private async resolveRead(key: string, first: RawState): Promise<VersionedValue | undefined> {
    let raw = first;
    for (let round = 0; ; round++) {
      if (raw.kind === 'absent') return undefined;
      if (raw.kind === 'plain') return { value: raw.value, version: raw.version };
      const { envelope, version } = raw;
      const decision = await this.resolver.decide(envelope.txid);
      if (decision === 'live') return previousOf(envelope);
      const content = decision === 'committed' ? envelope.next : (envelope.prev?.value ?? null);
      const replaced = await this.resolver.replace('resolve.write', key, version, content);
      if (replaced.ok) return content && replaced.version ? { value: content, version: replaced.version } : undefined;
      if (round + 1 >= READ_ROUNDS) {
        // Someone else keeps resolving it; a decided lock still tells the committed state.
        if (decision === 'committed') return content ? { value: content, version } : undefined;
        if (decision === 'aborted') return previousOf(envelope);
        throw new ContentionError(`read of ${key} gave up: its lock keeps changing; try again`);
      }
      raw = await this.resolver.readRaw('get', key);
    }
  }

  /**
   * A single-key conditional write (`next: null` deletes). Tries the direct CAS first; on
   * failure, or for an unconditional write, reads the key, decides a lock found there, and CAS
   * es against what it read, so it never overwrites a live transaction's envelope.
   */
  private async writeOne(key: string, next: Buffer | null, condition: WriteCondition): Promise<WriteOutcome> {
    const inner = this.inner;
    if (next !== null && condition.kind !== 'none') {
      const put = await this.resolver.call('put', key, () => inner.put(key, encodePlain(next), condition));
      if (put.ok) return { kind: 'written', version: put.version };
    } else if (next !== null) {
      // Unconditional puts are mostly of fresh keys: ifAbsent is one round trip and cannot
      // clobber an envelope.
      const put = await this.resolver.call('put', key, () => inner.put(key, encodePlain(next), IF_ABSENT));
      if (put.ok) return { kind: 'written', version: put.version };
    } else if (condition.kind === 'ifVersion') {
      if (await this.resolver.call('delete', key, () => inner.delete(key, condition))) return { kind: 'written', version: null };
    }
    return this.writeSlow(key, next, condition);
  }

  private async writeSlow(key: string, next: Buffer | null, condition: WriteCondition): Promise<WriteOutcome> {
    let waits = 0;
    for (let round = 0; round < WRITE_ROUNDS; round++) {
      const raw = await this.resolver.readRaw('put.read', key);
      let current: VersionedValue | undefined;
      let against: WriteCondition;
      let decision: 'plain' | 'committed' | 'aborted' | 'missing' = 'plain';
      if (raw.kind === 'absent') {
        against = IF_ABSENT;
      } else if (raw.kind === 'plain') {
        current = { value: raw.value, version: raw.version };
        against = { kind: 'ifVersion', version: raw.version };
      } else {
        const found = await this.resolver.decide(raw.envelope.txid);
        if (found === 'live') {
          // It fails on the committed state already; waiting cannot make it hold.
          if (!conditionHolds(condition, previousOf(raw.envelope))) return { kind: 'conflict' };
          if (++waits > this.resolver.settings.lockWaitAttempts) return { kind: 'conflict' };
          await this.resolver.backoff(waits);
          continue;
        }
        decision = found;
        const { envelope } = raw;
        if (found !== 'committed') current = previousOf(envelope);
        else if (envelope.next) current = { value: envelope.next, version: raw.version };
        against = { kind: 'ifVersion', version: raw.version };
      }
      if (!conditionHolds(condition, current)) return { kind: 'conflict' };
      if (next === null && current === undefined) {
        if (raw.kind !== 'envelope') return { kind: 'absent' };
        // Clear the decided lock; for a vanished intent this CAS is what proves it undone.
        const cleared = await this.resolver.replace('resolve.write', key, raw.version, null);
        if (cleared.ok || decision !== 'missing') return { kind: 'absent' };
        continue;
      }
      if (next === null) {
        if (await this.resolver.call('delete', key, () => this.inner.delete(key, against))) {
          return { kind: 'written', version: null };
        }
        continue;
      }
      const put = await this.resolver.call('put', key, () => this.inner.put(key, encodePlain(next), against));
      if (put.ok) return { kind: 'written', version: put.version };
    }
    return { kind: 'conflict' };
  }

  /**
   * A commit with only version checks writes nothing: one read of all the keys suffices, since
   * each version unchanged since the caller read it was unchanged throughout (no ABA), so all
   * held together when the read started.
   */
  private async validateOnly(checks: readonly CommitCheck[]): Promise<boolean> {
    if (checks.length === 0) return true;
    const got = await this.getMany(checks.map((c) => c.key));
    return checks.every((c, i) => (got[i]?.version ?? null) === c.version);
  }

  private async *scanPlain(prefix: string): AsyncIterable<string> {
    const scan = this.inner.scan?.bind(this.inner);
    if (!scan) return;
    for await (const key of scan(prefix)) if (!key.startsWith(this.namespace)) yield key;
  }

  private txid(): string {
    const id = this.newTxId();
    if (!/^[\x21-\x7e]+$/.test(id) || id.length > MAX_TXID_BYTES) {
      throw new RangeError(`transaction ids must be 1 to ${MAX_TXID_BYTES} printable ASCII characters, got "${id}"`);
    }
    return id;
  }

  private checkKey(key: string): void {
    if (key.startsWith(this.namespace)) {
      throw new RangeError(`key ${key} is inside the intent namespace ${this.namespace}; choose another key prefix`);
    }
  }

  private checkSize(key: string, value: Buffer): void {
    if (value.length > this.capabilities.maxValueBytes) {
      throw new ValueTooLarge(key, value.length, this.capabilities.maxValueBytes);
    }
  }
}

/**
 * The store itself when it has native atomic commit, otherwise an {@link IntentCommitStore}
 * over it. Either way the result has `commit`.
 */
export function withAtomicCommit(
  store: KvStore,
  options?: IntentCommitOptions,
): KvStore & Required<Pick<KvStore, 'commit'>> {
  if (store.capabilities.atomicCommit && store.commit) return store as KvStore & Required<Pick<KvStore, 'commit'>>;
  return new IntentCommitStore(store, options);
}

function positive(name: string, n: number): number {
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${name} must be a positive number, got ${n}`);
  return n;
}

function whole(name: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a whole number >= 1, got ${n}`);
  return n;
}
