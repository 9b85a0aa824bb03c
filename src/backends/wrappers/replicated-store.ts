import type { Logger } from 'pino';
import { IntegrityError, StoreUnavailable, isUnreachable } from '../errors.js';
import {
  IF_ABSENT,
  UNCONDITIONAL,
  ifVersion,
  type KvStore,
  type PutResult,
  type StoreCapabilities,
  type Version,
  type VersionedValue,
  type WriteCondition,
} from '../kv-store.js';

/**
 * Marks a replica copy's key: `<key>~R` placed on a domain (`<key>~R~3f` on memcached). The
 * layers above never put `~` in a key, and placement suffixes never hold an upper-case R.
 */
const REPLICA_MARK = '~R';
/** How long the per-domain sentinel state is trusted before it is read again, ms. */
const DEFAULT_TRUST_MS = 1000;

/** What a domain looks like to reads: holding its data, restarted empty, or not answering. */
export type DomainState = 'ok' | 'lost' | 'unknown';

export interface ReplicationOptions {
  /**
   * Base key of the per-domain sentinel (the volume's marker, `placement.keyInDomain(base, d)`
   * on domain d). A domain whose sentinel is gone while another domain has one lost its data.
   * Sentinel keys pass through unreplicated.
   */
  readonly sentinelKey: string;
  /** Keys stored on every domain whatever the replica count (the superblock). Default none. */
  readonly everywhere?: readonly string[];
  /** Copies of every other key, 1 to `domains`; {@link ReplicatedStore.setReplicas} changes it. Default 1. */
  readonly replicas?: number;
  /** How long a domain's sentinel state is trusted, ms. Default 1000. */
  readonly trustMs?: number;
  readonly now?: () => number;
  readonly log?: Logger;
}

/**
 * Metadata on several failure domains of a store that has them (a memcached pool), so that a
 * volume erasure-coded k+m survives m servers down for its metadata as for its blocks.
 *
 * PLACEMENT. Key K has `replicas` copies on domains p, p+1, ... (mod n), p = domainOf(K): the
 * copy on p is K itself (so one copy is exactly the unreplicated layout), the others are
 * `keyInDomain(K + "~R", d)`. Keys listed in `everywhere` have a copy on every domain.
 *
 * READS go to the first copy, in that order, whose domain is `ok`: reachable when last looked
 * at and holding its sentinel. A domain that restarted empty answers "absent" for everything;
 * its sentinel is gone too, so it is skipped until fsck --repair has copied the records back
 * and planted the sentinel again. A domain unreachable when the sentinels were read is skipped
 * for reads too (a server that comes back empty is never asked before its sentinel is seen).
 * Sentinel states are cached `trustMs`. If no copy's domain is `ok`, a read fails:
 * StoreUnavailable when some are unreachable, IntegrityError when all lost their data.
 *
 * WRITES. The acting primary is the first `ok` domain that answers; it decides a conditional
 * put or delete (versions are tagged with the domain that issued them, so a version from
 * another domain is a conflict, which callers already retry). Once it succeeded, every other
 * copy is overwritten unconditionally (or deleted), lost domains included (so a domain being
 * refilled by fsck does not miss records written meanwhile). A domain that misses a copy write
 * (unreachable) is recorded by a marker on every other domain; the first client to see it
 * answer again deletes its sentinel, so every client treats it as lost until fsck --repair.
 * Not a quorum: clients that disagree on which domains are reachable can each act on a
 * different primary. See docs/replication.md for what a stale copy can still do.
 */
export class ReplicatedStore implements KvStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  private readonly domains: number;
  private readonly sentinels: string[];
  private readonly sentinelSet: Set<string>;
  /** Prefix of the missed-write markers (`<sentinel>~M<domain>`, placed on the other domains). */
  private readonly markerBase: string;
  private readonly everywhere: Set<string>;
  private readonly trustMs: number;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private replicaCount: number;
  private states: { at: number; states: DomainState[] } | undefined;
  /**
   * Domains that missed a write while unreachable (their copies may be stale), with the
   * version their sentinel had when last seen.
   */
  private readonly missed = new Map<number, Version | undefined>();
  private sentinelVersions: (Version | undefined)[] = [];
  private loading: Promise<DomainState[]> | undefined;

  /** @throws RangeError when the store has a single domain or `replicas` is out of range */
  constructor(
    private readonly inner: KvStore,
    options: ReplicationOptions,
  ) {
    const { placement } = inner.capabilities;
    this.domains = placement.domains;
    if (this.domains < 2) throw new RangeError(`replication needs a store with several domains; ${inner.name} has ${this.domains}`);
    this.name = inner.name;
    this.capabilities = Object.freeze({ ...inner.capabilities, atomicCommit: false, maxCommitOps: 0 });
    this.sentinels = Array.from({ length: this.domains }, (_, d) => placement.keyInDomain(options.sentinelKey, d));
    this.sentinelSet = new Set(this.sentinels);
    this.markerBase = `${options.sentinelKey}~M`;
    this.everywhere = new Set(options.everywhere ?? []);
    this.trustMs = options.trustMs ?? DEFAULT_TRUST_MS;
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.replicaCount = 1;
    this.setReplicas(options.replicas ?? 1);
  }

  /** Copies kept of each key (not counting `everywhere` keys), at most the domain count. */
  get replicas(): number {
    return this.replicaCount;
  }

  /** Number of failure domains of the store below. */
  get domainCount(): number {
    return this.domains;
  }

  /**
   * Sets the copy count, as the volume's superblock records it (mount, mkfs).
   * @throws RangeError unless 1 <= count <= domains
   */
  setReplicas(count: number): void {
    if (!Number.isInteger(count) || count < 1 || count > this.domains) {
      throw new RangeError(`metadata replica count ${count} must be a whole number in [1, ${this.domains}]`);
    }
    this.replicaCount = count;
  }

  /** Domains holding `key`'s copies, primary first. */
  replicaDomains(key: string): number[] {
    const primary = this.inner.capabilities.placement.domainOf(key);
    const count = this.everywhere.has(key) ? this.domains : this.replicaCount;
    return Array.from({ length: count }, (_, j) => (primary + j) % this.domains);
  }

  /** The store key of `key`'s copy on `domain`. */
  copyKey(key: string, domain: number): string {
    const { placement } = this.inner.capabilities;
    return placement.domainOf(key) === domain ? key : placement.keyInDomain(key + REPLICA_MARK, domain);
  }

  /**
   * Each domain's state, read again when older than `trustMs` (or when `fresh`).
   * @throws the store's error other than unreachability
   */
  async domainStates(fresh = false): Promise<readonly DomainState[]> {
    if (!fresh && this.states && this.now() - this.states.at < this.trustMs) return this.states.states;
    this.loading ??= this.loadStates().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    if (this.isLocal(key)) return this.inner.get(key);
    const states = await this.domainStates();
    const domains = this.replicaDomains(key);
    let unreachable: Error | undefined;
    for (const d of domains) {
      if (states[d] !== 'ok') continue;
      try {
        return tagged(d, await this.inner.get(this.copyKey(key, d)));
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        this.unreachable(d);
        unreachable = err;
      }
    }
    throw this.noCopy(key, domains, states, unreachable);
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    const states = await this.domainStates();
    const plan = keys.map((key) => {
      if (this.isLocal(key)) return { key, domain: undefined };
      const domain = this.replicaDomains(key).find((d) => states[d] === 'ok');
      return domain === undefined ? undefined : { key: this.copyKey(key, domain), domain };
    });
    if (plan.every((p) => p !== undefined)) {
      try {
        const found = await this.inner.getMany(plan.map((p) => p.key));
        return found.map((f, i) => {
          const domain = plan[i]?.domain;
          return domain === undefined ? f : tagged(domain, f);
        });
      } catch (err) {
        if (!isUnreachable(err)) throw err;
      }
    }
    // A copy unreachable or missing: one key at a time, each falling back to its next copy.
    return Promise.all(keys.map((key) => this.get(key)));
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    if (this.isLocal(key)) return this.inner.put(key, value, condition);
    const acted = await this.act<PutResult>(key, (copy, cond) => this.inner.put(copy, value, cond), condition, { ok: false });
    if (!acted.result.ok) return acted.result;
    await this.toOthers(key, acted.domain, (copy) => this.inner.put(copy, value));
    return { ok: true, version: tag(acted.domain, acted.result.version) };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    if (this.isLocal(key)) return this.inner.delete(key, condition);
    const acted = await this.act(key, (copy, cond) => this.inner.delete(copy, cond), condition, false);
    // An unconditional delete removes every copy, even one the primary no longer had.
    if (!acted.result && condition.kind !== 'none') return false;
    await this.toOthers(key, acted.domain, (copy) => this.inner.delete(copy));
    return acted.result;
  }

  /**
   * Logical keys starting with `prefix`: each replicated key once, whichever copies exist.
   * Not a snapshot, as the store's own scan.
   */
  get scan(): ((prefix: string) => AsyncIterable<string>) | undefined {
    const scan = this.inner.scan?.bind(this.inner);
    if (!scan) return undefined;
    const markerBase = this.markerBase;
    return async function* (prefix: string): AsyncIterable<string> {
      const seen = new Set<string>();
      for await (const key of scan(prefix)) {
        if (key.startsWith(markerBase)) continue;
        const mark = key.indexOf(REPLICA_MARK);
        const logical = mark < 0 ? key : key.slice(0, mark);
        if (seen.has(logical)) continue;
        seen.add(logical);
        yield logical;
      }
    };
  }

  get sync(): (() => Promise<void>) | undefined {
    return this.inner.sync?.bind(this.inner);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }

  /**
   * Makes every copy of `key` equal to the acting primary's (fsck --repair): missing or
   * different copies are written, copies of a key the primary does not hold are deleted. Each
   * write is conditional on the copy read, and the primary is re-read first, so a mount that
   * writes the key meanwhile (and copies it itself) wins.
   * @param write false: only count the copies that differ (fsck without --repair)
   * @returns copies rewritten or deleted (or, without `write`, that differ)
   * @throws StoreUnavailable when a copy's domain cannot be reached; IntegrityError when every
   *   copy's domain lost its data
   */
  async resync(key: string, write = true): Promise<number> {
    if (this.isLocal(key)) return 0;
    const states = await this.domainStates();
    const domains = this.replicaDomains(key);
    const acting = domains.find((d) => states[d] === 'ok');
    if (acting === undefined) throw this.noCopy(key, domains, states, undefined);
    const copies = await Promise.all(domains.map((d) => this.inner.get(this.copyKey(key, d))));
    const truth = copies[domains.indexOf(acting)];
    let rewritten = 0;
    for (const [i, d] of domains.entries()) {
      const copy = copies[i];
      if (d === acting || (truth && copy?.value.equals(truth.value)) || (!truth && !copy)) continue;
      if (!write) {
        rewritten++;
        continue;
      }
      const current = await this.inner.get(this.copyKey(key, acting));
      if (current?.version !== truth?.version) continue;
      const copyKey = this.copyKey(key, d);
      if (!truth) {
        if (copy && (await this.inner.delete(copyKey, ifVersion(copy.version)))) rewritten++;
        continue;
      }
      const done = await this.inner.put(copyKey, truth.value, copy ? ifVersion(copy.version) : IF_ABSENT);
      if (done.ok) rewritten++;
    }
    return rewritten;
  }

  /**
   * Runs `op` on the first `ok` copy that answers, with the caller's condition translated to
   * that domain's versions.
   */
  private async act<R>(
    key: string,
    op: (copy: string, condition: WriteCondition) => Promise<R>,
    condition: WriteCondition,
    conflict: R,
  ): Promise<{ domain: number; result: R }> {
    const states = await this.domainStates();
    const domains = this.replicaDomains(key);
    let unreachable: Error | undefined;
    for (const d of domains) {
      if (states[d] !== 'ok') continue;
      let cond = condition;
      if (condition.kind === 'ifVersion') {
        const own = untag(condition.version, d);
        // Read from another copy: not this one's version, so the condition fails; callers re-read.
        if (own === undefined) return { domain: d, result: conflict };
        cond = ifVersion(own);
      }
      try {
        return { domain: d, result: await op(this.copyKey(key, d), cond) };
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        this.unreachable(d);
        unreachable = err;
      }
    }
    throw this.noCopy(key, domains, states, unreachable);
  }

  /** Applies a write to every copy but the acting primary's; unreachable domains are skipped. */
  private async toOthers(key: string, acting: number, write: (copy: string) => Promise<unknown>): Promise<void> {
    const others = this.replicaDomains(key).filter((d) => d !== acting);
    await Promise.all(
      others.map(async (d) => {
        try {
          await write(this.copyKey(key, d));
        } catch (err) {
          if (!isUnreachable(err)) throw err;
          this.unreachable(d);
          if (!this.missed.has(d)) {
            this.log?.warn({ domain: d, err: err.message }, 'metadata domain missed a write: its copies are stale until voldfs fsck --repair');
            this.missed.set(d, this.sentinelVersions[d]);
            await this.writeMarker(d, this.sentinelVersions[d]);
          }
        }
      }),
    );
  }

  /**
   * Not read again before its sentinel has been read again: a server that failed may come
   * back empty before the cached states expire, and must not answer "absent" meanwhile.
   */
  private unreachable(domain: number): void {
    if (this.states) this.states.states[domain] = 'unknown';
  }

  private noCopy(key: string, domains: readonly number[], states: readonly DomainState[], unreachable: Error | undefined): Error {
    if (unreachable || domains.some((d) => states[d] === 'unknown')) {
      return new StoreUnavailable(
        `no copy of ${key} can be reached: its domains ${domains.join(', ')} are down or lost their data` +
          (unreachable ? ` (${unreachable.message})` : ''),
        { cause: unreachable },
      );
    }
    return new IntegrityError(
      `the store has no record ${key}: every domain holding a copy of it (${domains.join(', ')}) has lost its data ` +
        '(servers restarted empty?): run voldfs fsck',
    );
  }

  private async loadStates(): Promise<DomainState[]> {
    const read = await Promise.all(
      this.sentinels.map(async (key): Promise<VersionedValue | undefined | 'unknown'> => {
        try {
          return await this.inner.get(key);
        } catch (err) {
          if (!isUnreachable(err)) throw err;
          return 'unknown';
        }
      }),
    );
    const markers = await Promise.all(this.sentinels.map((_s, d) => this.readMarker(d)));
    const found = read.map((r) => (r === 'unknown' ? r : r ? 'present' : 'absent'));
    this.sentinelVersions = read.map((r) => (r === 'unknown' ? undefined : r?.version));
    // No sentinel anywhere: no volume yet (mkfs), so nothing can have been lost.
    const formatted = found.includes('present');
    const states = found.map((f): DomainState => (f === 'unknown' ? 'unknown' : formatted && f === 'absent' ? 'lost' : 'ok'));
    await this.demoteMissed(states, markers);
    const before = this.states?.states;
    for (const [d, s] of states.entries()) {
      if (before && before[d] !== s) this.log?.warn({ domain: d, state: s, was: before[d] }, 'metadata domain state changed');
    }
    this.states = { at: this.now(), states };
    return states;
  }

  /**
   * A domain that missed a write and answers again holds stale copies: its sentinel is
   * deleted, so that every client (not only this one) treats it as having lost its data until
   * fsck --repair has copied the records back. Until it answers, this client skips it.
   */
  private async demoteMissed(states: DomainState[], markers: readonly (Version | null | undefined)[]): Promise<void> {
    const candidates = new Map<number, Version | undefined>();
    markers.forEach((seen, d) => {
      if (seen !== undefined) candidates.set(d, seen ?? undefined);
    });
    for (const [d, seen] of this.missed) candidates.set(d, seen);
    for (const [d, seen] of candidates) {
      if (states[d] === 'unknown') continue;
      const current = this.sentinelVersions[d];
      // A sentinel planted again since the miss: fsck --repair refilled the domain meanwhile.
      if (states[d] === 'ok' && current !== undefined && (seen === undefined || seen === current)) {
        let deleted: boolean;
        try {
          // Conditional: a repair that plants the sentinel meanwhile wins.
          deleted = await this.inner.delete(this.sentinels[d], ifVersion(current));
        } catch (err) {
          if (!isUnreachable(err)) throw err;
          states[d] = 'unknown';
          continue;
        }
        // Not deleted: another client demoted it, or a repair planted it again; read it again.
        states[d] = deleted ? 'lost' : 'unknown';
        if (deleted) this.log?.warn({ domain: d }, 'metadata domain that missed writes is back: marked as having lost its data; run voldfs fsck --repair');
      }
      this.missed.delete(d);
    }
    for (const d of this.missed.keys()) states[d] = 'unknown';
  }

  /**
   * Deletes every missed-write marker (fsck --repair, once the domains they name have been
   * refilled, just before their sentinels are planted again).
   */
  async clearMissedMarkers(): Promise<void> {
    await Promise.all(
      this.sentinels.flatMap((_s, d) =>
        this.markerDomains(d).map(async (e) => {
          await this.inner.delete(this.markerKey(d, e));
        }),
      ),
    );
  }

  /**
   * Records on every other domain that `domain` missed a write, with the version its sentinel
   * had when last seen (empty: never seen), so that the next client to see it answer demotes
   * it even if this one is gone by then.
   */
  private async writeMarker(domain: number, seen: Version | undefined): Promise<void> {
    await Promise.all(
      this.markerDomains(domain).map(async (e) => {
        try {
          await this.inner.put(this.markerKey(domain, e), Buffer.from(seen ?? '', 'utf8'));
        } catch (err) {
          if (!isUnreachable(err)) throw err;
        }
      }),
    );
  }

  /** A marker of `domain` found on any other domain: the sentinel version it names (null: never seen), or undefined. */
  private async readMarker(domain: number): Promise<Version | null | undefined> {
    const found = await Promise.all(
      this.markerDomains(domain).map(async (e) => {
        try {
          return await this.inner.get(this.markerKey(domain, e));
        } catch (err) {
          if (!isUnreachable(err)) throw err;
          return undefined;
        }
      }),
    );
    const marker = found.find((f) => f !== undefined);
    if (!marker) return undefined;
    return marker.value.length === 0 ? null : marker.value.toString('utf8');
  }

  private markerDomains(domain: number): number[] {
    return Array.from({ length: this.domains }, (_v, e) => e).filter((e) => e !== domain);
  }

  private markerKey(domain: number, on: number): string {
    return this.inner.capabilities.placement.keyInDomain(`${this.markerBase}${domain}`, on);
  }

  private isLocal(key: string): boolean {
    return this.sentinelSet.has(key) || key.startsWith(this.markerBase);
  }
}

function tag(domain: number, version: Version): Version {
  return `${domain}:${version}`;
}

function tagged(domain: number, found: VersionedValue | undefined): VersionedValue | undefined {
  return found && { value: found.value, version: tag(domain, found.version) };
}

/** The store version inside a tagged one, if it was issued by `domain`. */
function untag(version: Version, domain: number): Version | undefined {
  const colon = version.indexOf(':');
  return colon > 0 && version.slice(0, colon) === String(domain) ? version.slice(colon + 1) : undefined;
}
