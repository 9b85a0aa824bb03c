/**
 * The contract every key-value backend implements. It knows nothing about files: keys are
 * printable ASCII strings (no spaces or control characters, at most {@link MAX_KEY_BYTES}
 * bytes), values are opaque bytes.
 *
 * Versions are opaque tokens: a backend may use a memcached CAS unique, an etcd mod_revision,
 * a Voldemort vector clock or a random number, so callers only ever compare them by passing
 * them back. A version never repeats for the same key (no ABA): a key deleted and written again
 * gets a version its earlier life never had.
 */

/** Opaque version token; only meaningful to the backend that returned it. */
export type Version = string;

/** Longest key any layer above may build; memcached's 250-byte limit is the tightest. */
export const MAX_KEY_BYTES = 240;

export interface VersionedValue {
  readonly value: Buffer;
  readonly version: Version;
}

/**
 * Condition of a put or delete:
 * - `none`: unconditional (only for records nobody else can hold, such as fresh block ids);
 * - `ifAbsent`: succeeds only if the key does not exist;
 * - `ifVersion`: succeeds only if the key exists with exactly this version.
 */
export type WriteCondition =
  | { readonly kind: 'none' }
  | { readonly kind: 'ifAbsent' }
  | { readonly kind: 'ifVersion'; readonly version: Version };

export const UNCONDITIONAL: WriteCondition = Object.freeze({ kind: 'none' });
export const IF_ABSENT: WriteCondition = Object.freeze({ kind: 'ifAbsent' });
export function ifVersion(version: Version): WriteCondition {
  return { kind: 'ifVersion', version };
}

/** Whether a write condition holds for a key whose committed state is `current`. */
export function conditionHolds(condition: WriteCondition, current: VersionedValue | undefined): boolean {
  switch (condition.kind) {
    case 'none':
      return true;
    case 'ifAbsent':
      return current === undefined;
    case 'ifVersion':
      return current?.version === condition.version;
  }
}

/**
 * A failed condition is a result, not an exception. Some stores report spurious conflicts
 * (kumofs documents them), so a conflict means "re-read and retry", never "give up".
 */
export type PutResult = { readonly ok: true; readonly version: Version } | { readonly ok: false };

/** One write of an atomic multi-key commit; `value: null` deletes the key. */
export interface CommitOp {
  readonly key: string;
  readonly value: Buffer | null;
  readonly condition: WriteCondition;
}

/** A key that an atomic commit only read: the commit fails unless it still has this state. */
export interface CommitCheck {
  readonly key: string;
  /** The version read, or `null` if the key was absent when read. */
  readonly version: Version | null;
}

/**
 * How a store spreads keys over failure domains (servers, cluster masters), so that a
 * translator can put erasure fragments on distinct domains.
 */
export interface Placement {
  /** Number of independent failure domains; 1 for a single server or an embedded store. */
  readonly domains: number;
  /** Which domain a key lands on, in `[0, domains)`. */
  domainOf(key: string): number;
  /**
   * A key derived from `key` (same prefix, a short suffix or hash tag added) that lands on
   * `domain`. Deterministic: the same arguments always give the same key.
   */
  keyInDomain(key: string, domain: number): string;
}

/**
 * The placement of a store that is one failure domain: an embedded store, one server, or a
 * cluster that hides where keys live (etcd, a Voldemort coordinator).
 */
export const SINGLE_DOMAIN: Placement = Object.freeze({
  domains: 1,
  domainOf: () => 0,
  keyInDomain(key: string, domain: number): string {
    if (domain !== 0) throw new RangeError(`domain ${domain} is outside [0, 1)`);
    return key;
  },
});

export interface StoreCapabilities {
  /** Largest value, in bytes, a single put accepts (memcached: 1 MB item minus overhead). */
  readonly maxValueBytes: number;
  /**
   * Whether {@link KvStore.commit} exists: an all-or-nothing write of several keys with a
   * condition on each. Stores without it get crash-atomicity from intent records (src/cas).
   */
  readonly atomicCommit: boolean;
  /**
   * True when {@link KvStore.commit} is built from intent records over single-key CAS (several
   * round trips) rather than the store's own transaction: callers then prefer single-key
   * updates where order alone keeps them safe.
   */
  readonly commitByIntents?: boolean;
  /** Largest number of ops + checks one commit takes (etcd: 128 by default). */
  readonly maxCommitOps: number;
  /**
   * `scan` reads only the keys under its prefix (a range), not the whole keyspace: cheap enough
   * for a mount to list its garbage records at start. Unset: only fsck scans.
   */
  readonly scansByRange?: boolean;
  readonly placement: Placement;
  /**
   * True when the store keeps no reference to a value once {@link KvStore.put} has resolved
   * (LMDB: written to its map), so the caller may reuse that memory. Absent or false: the store
   * may hold on to the caller's buffer (MemoryStore keeps it), which must then never change.
   * A put that rejects may still hold the value either way.
   */
  readonly putReleasesValue?: boolean;
}

/** A commit the store has taken ({@link KvStore.commitAhead}). */
export interface TakenCommit {
  /** The version each op leaves if the commit applies (undefined for a delete). */
  readonly versions: readonly (Version | undefined)[];
  /** Resolves true once applied, false if a condition did not hold (nothing applied). */
  readonly applied: Promise<boolean>;
}

export interface KvStore {
  /** Backend name as chosen by VOLDFS_DB (`lmdb`, `mem`, `mc`, ...). */
  readonly name: string;
  readonly capabilities: StoreCapabilities;

  /** The value and its version, or `undefined` if absent. A miss never throws. */
  get(key: string): Promise<VersionedValue | undefined>;

  /**
   * Several gets at once, pipelined where the store allows; not atomic across keys. The
   * result is in the order of `keys`.
   */
  getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]>;

  /**
   * The value of `key` copied into memory that `alloc` returns (called once, with the value's
   * length; it must return exactly that many bytes), without a version; `undefined` if absent.
   * For large immutable records (blocks): the caller can recycle that memory instead of having
   * a fresh buffer allocated, and later collected, for every read. Optional.
   */
  getValueInto?(key: string, alloc: (bytes: number) => Buffer): Promise<Buffer | undefined>;

  /**
   * Writes `value` under `key` if `condition` holds (default unconditional).
   * @throws ValueTooLarge above `capabilities.maxValueBytes`; StoreFull when the store refuses
   *   for lack of space; StoreUnavailable / StoreTimeout when it cannot be reached.
   */
  put(key: string, value: Buffer, condition?: WriteCondition): Promise<PutResult>;

  /**
   * Deletes `key` if `condition` holds (`ifVersion` or `none`; `ifAbsent` makes no sense here).
   * @returns `true` if a record was deleted, `false` on a failed condition or a missing key.
   */
  delete(key: string, condition?: WriteCondition): Promise<boolean>;

  /**
   * Atomic multi-key commit: every check and every op's condition holds and all ops apply, or
   * nothing changes and the result is `false`. Present only when
   * `capabilities.atomicCommit` is true.
   */
  commit?(ops: readonly CommitOp[], checks?: readonly CommitCheck[]): Promise<boolean>;

  /**
   * {@link KvStore.commit}, telling the version each op left (undefined for a delete), or
   * undefined when the commit did not apply: the caller can keep what it wrote in its cache
   * instead of reading it back. Optional, on stores that know the versions when they commit.
   */
  commitVersioned?(ops: readonly CommitOp[], checks?: readonly CommitCheck[]): Promise<(Version | undefined)[] | undefined>;

  /**
   * {@link KvStore.commitVersioned} without waiting for the commit to apply: resolves once the
   * store has taken it, with the version each op will leave if it applies, and `applied`, which
   * tells whether it did. Commits taken later apply after it. Optional, on stores that choose
   * versions before they commit and apply commits in the order taken.
   */
  commitAhead?(ops: readonly CommitOp[], checks?: readonly CommitCheck[]): Promise<TakenCommit>;

  /**
   * Whether another process has the store open now, and so would not yet see a commit taken
   * ({@link KvStore.commitAhead}) but not applied. Optional: without it, assume one may.
   */
  otherProcessesAttached?(): boolean;

  /**
   * Every key starting with `prefix`, for fsck, garbage collection and tests. May be slow and
   * is not a snapshot. Stores that cannot list keys (memcached) return `undefined`.
   */
  scan?(prefix: string): AsyncIterable<string>;

  /**
   * For stores that list keys from their own record of the keys created (memcached-protocol
   * servers without a key listing): rewrites that record for the keys under `prefix` (a
   * volume's) so that it holds only keys that exist. Only while nothing else writes under
   * `prefix` (fsck --offline). Optional.
   * @returns keys recorded before and after
   */
  compactListing?(prefix: string): Promise<{ before: number; after: number }>;

  /**
   * Waits until every write that has completed is durable (on disk, for a store that keeps
   * data on disk). Stores whose completed writes are already durable, or that have no disk,
   * leave it out. fsync(2) on a file ends here.
   */
  sync?(): Promise<void>;

  /** Releases connections and handles. Idempotent. */
  close(): Promise<void>;
}
