import { IntegrityError } from '../backends/errors.js';
import {
  ifVersion,
  type KvStore,
  type Version,
  type VersionedValue,
  type WriteCondition,
} from '../backends/kv-store.js';
import type { FaultHook, FaultPoint } from './fault-points.js';
import { decodeStored, encodeIntent, encodePlain, type Envelope, type Intent, type IntentState } from './intent-codec.js';
import type { LockLiveness } from './lock-liveness.js';
import { backoffDelay } from './retry.js';

/** A key as the underlying store holds it. */
export type RawState =
  | { readonly kind: 'absent' }
  | { readonly kind: 'plain'; readonly value: Buffer; readonly version: Version }
  | { readonly kind: 'envelope'; readonly envelope: Envelope; readonly version: Version };

/** An intent as read, with the key and version it was read at. */
export interface TxRecord {
  readonly txid: string;
  readonly key: string;
  readonly state: IntentState;
  readonly intent: Intent;
  readonly version: Version;
}

/**
 * What a client may conclude about another transaction it found a lock of:
 * committed / aborted are final; `missing` means its intent is gone, so it can no longer
 * commit (whether it is finished is for a CAS on the envelope to tell); `live` means pending
 * and not (yet) abandoned.
 */
export type Decision = 'committed' | 'aborted' | 'missing' | 'live';

export interface ResolverSettings {
  readonly inner: KvStore;
  /** Prefix of intent keys; intents live at `<namespace>x:<txid>`. */
  readonly namespace: string;
  readonly liveness: LockLiveness;
  readonly lockWaitAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly faults?: FaultHook;
}

/** Rounds of read-then-CAS before a helper leaves a key to someone else. */
const RELEASE_ROUNDS = 4;

/**
 * The steps every client shares: reading keys and intents, deciding another transaction's
 * fate, and replacing its envelopes. Every store call goes through {@link call}, which runs
 * the fault hook first. Every write here is a CAS against the exact version read, so acting on
 * a stale read can only fail, never undo someone else's work.
 */
export class TxResolver {
  constructor(readonly settings: ResolverSettings) {}

  get inner(): KvStore {
    return this.settings.inner;
  }

  intentKey(txid: string): string {
    return `${this.settings.namespace}x:${txid}`;
  }

  /** Runs the fault hook for `point`, then the store call. */
  async call<T>(point: FaultPoint, key: string, fn: () => Promise<T>): Promise<T> {
    await this.settings.faults?.(point, key);
    return fn();
  }

  decodeRaw(key: string, found: VersionedValue | undefined): RawState {
    if (!found) return { kind: 'absent' };
    const stored = decodeStored(key, found.value);
    if (stored.kind === 'plain') return { kind: 'plain', value: stored.value, version: found.version };
    if (stored.kind === 'envelope') return { kind: 'envelope', envelope: stored.envelope, version: found.version };
    throw new IntegrityError(`key ${key} holds an intent record outside the intent namespace`);
  }

  async readRaw(point: FaultPoint, key: string): Promise<RawState> {
    return this.decodeRaw(key, await this.call(point, key, () => this.inner.get(key)));
  }

  /** The intent of `txid`, or undefined if it does not exist (any more). */
  async readTx(point: FaultPoint, txid: string): Promise<TxRecord | undefined> {
    const key = this.intentKey(txid);
    const found = await this.call(point, key, () => this.inner.get(key));
    if (!found) return undefined;
    const stored = decodeStored(key, found.value);
    if (stored.kind !== 'intent') throw new IntegrityError(`intent key ${key} holds a ${stored.kind} record`);
    return { txid, key, state: stored.intent.state, intent: stored.intent, version: found.version };
  }

  /** CAS of an intent to a new state; the new version, or undefined if it changed meanwhile. */
  async setState(point: FaultPoint, tx: TxRecord, state: IntentState): Promise<Version | undefined> {
    const bytes = encodeIntent({ ...tx.intent, state });
    const result = await this.call(point, tx.key, () => this.inner.put(tx.key, bytes, ifVersion(tx.version)));
    return result.ok ? result.version : undefined;
  }

  /**
   * Decides the fate of another client's transaction: reads its intent; if it is pending and
   * abandoned (or `abortLive`), aborts it by CAS and rolls it back. A decided intent old
   * enough that its owner has likely died is finished on the spot (all keys, then the intent).
   */
  async decide(txid: string, abortLive = false): Promise<Decision> {
    for (let round = 0; round < 3; round++) {
      const tx = await this.readTx('resolve.intent.read', txid);
      if (!tx) return 'missing';
      if (tx.state !== 'pending') {
        if (this.settings.liveness.isStale(tx.intent.createdAt)) await this.finishTx(tx);
        return tx.state;
      }
      if (!abortLive && !this.settings.liveness.isAbandoned(txid, tx.version, tx.intent.createdAt)) return 'live';
      const version = await this.setState('resolve.abort', tx, 'aborted');
      if (version !== undefined) {
        this.settings.liveness.forget(txid, tx.version);
        await this.finishTx({ ...tx, state: 'aborted', version });
        return 'aborted';
      }
      // The intent changed under us (committed, or aborted by another helper): read again.
    }
    return 'live';
  }

  /**
   * Replaces the envelope at `version` of `key` by `content` (a value, or `null` to delete).
   * @returns whether the CAS applied; with the new version when a value was written.
   */
  async replace(
    point: FaultPoint,
    key: string,
    version: Version,
    content: Buffer | null,
  ): Promise<{ ok: true; version: Version | null } | { ok: false }> {
    const condition: WriteCondition = ifVersion(version);
    if (content === null) {
      const deleted = await this.call(point, key, () => this.inner.delete(key, condition));
      return deleted ? { ok: true, version: null } : { ok: false };
    }
    const result = await this.call(point, key, () => this.inner.put(key, encodePlain(content), condition));
    return result.ok ? { ok: true, version: result.version } : { ok: false };
  }

  /**
   * Makes sure `key` no longer holds an envelope of `txid`, replacing it by its next value
   * (`forward`) or its previous one. Only for decided transactions: committed ones forward,
   * aborted or vanished ones back. `known` skips the first read when the caller just placed
   * the envelope.
   * @returns false if the key kept changing and still holds the envelope; otherwise the
   *   version this call wrote (null: deleted), or undefined when someone else released it.
   */
  async releaseKey(
    txid: string,
    key: string,
    forward: boolean,
    writePoint: FaultPoint,
    known?: RawState,
  ): Promise<Released | false> {
    let raw = known;
    for (let round = 0; round < RELEASE_ROUNDS; round++) {
      raw ??= await this.readRaw('finish.read', key);
      if (raw.kind !== 'envelope' || raw.envelope.txid !== txid) return { version: undefined };
      const content = forward ? raw.envelope.next : (raw.envelope.prev?.value ?? null);
      const result = await this.replace(round === 0 ? writePoint : 'finish.write', key, raw.version, content);
      if (result.ok) return { version: result.version };
      raw = undefined;
    }
    return false;
  }

  /**
   * Completes a decided transaction: every key forward (committed) or back (aborted), then
   * deletes the intent. The intent goes last so that "intent missing" always means "cannot
   * commit any more": a committed intent disappears only after none of its envelopes remain.
   * @returns whether it got to delete the intent.
   */
  async finishTx(tx: TxRecord): Promise<boolean> {
    if (tx.state === 'pending') throw new Error(`finishTx on pending transaction ${tx.txid}`);
    for (const key of tx.intent.keys) {
      if (!(await this.releaseKey(tx.txid, key, tx.state === 'committed', 'finish.write'))) return false;
    }
    await this.call('finish.delete', tx.key, () => this.inner.delete(tx.key, ifVersion(tx.version)));
    return true;
  }

  /** Waits before the next look at a lock held by a live transaction. */
  async backoff(attempt: number): Promise<void> {
    const s = this.settings;
    await s.sleep(backoffDelay(attempt, s.backoffBaseMs, s.backoffMaxMs, s.random));
  }
}

/** A key freed of a transaction's envelope, and the version it was left at if known. */
export interface Released {
  readonly version: Version | null | undefined;
}

/** A key's committed state as an envelope of an undecided (or aborted) transaction shows it. */
export function previousOf(envelope: Envelope): VersionedValue | undefined {
  return envelope.prev ? { value: envelope.prev.value, version: envelope.prev.version } : undefined;
}
