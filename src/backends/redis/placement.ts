import type { Placement } from '../kv-store.js';
import { SLOT_COUNT, keySlot } from './key-slot.js';

/** Slots `[first, last]` (inclusive) served by the master with this node id. */
export interface SlotRange {
  readonly first: number;
  readonly last: number;
  readonly masterId: string;
}


/**
 * Placement over the masters of a Redis Cluster: one failure domain per master, numbered by
 * the first slot each serves (so every client that sees the same slot map numbers them
 * alike, and a failover, which keeps a master's slots, keeps its number). Ordinary keys hash
 * over all slots, so a volume spreads over every master; `keyInDomain` appends a hash tag
 * `{t}` precomputed so that its slot belongs to the requested master.
 *
 * The map is taken when the store opens: moving slots between masters (resharding) while
 * mounted changes where new fragments land but never where existing keys are looked up.
 */
export class ClusterPlacement implements Placement {
  readonly domains: number;
  private readonly domainBySlot: Int16Array;
  private readonly tags: readonly string[];

  /** @throws Error if the ranges leave slots unserved or overlap */
  constructor(ranges: readonly SlotRange[]) {
    const firstSlotOf = new Map<string, number>();
    for (const r of ranges) {
      if (!(Number.isInteger(r.first) && Number.isInteger(r.last) && r.first >= 0 && r.first <= r.last && r.last < SLOT_COUNT)) {
        throw new Error(`invalid slot range ${r.first}-${r.last} in the cluster's slot map`);
      }
      firstSlotOf.set(r.masterId, Math.min(firstSlotOf.get(r.masterId) ?? SLOT_COUNT, r.first));
    }
    const masters = [...firstSlotOf.entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id);
    if (masters.length === 0) throw new Error('the cluster reports no slot ranges at all');
    const index = new Map(masters.map((id, i) => [id, i]));
    this.domains = masters.length;
    this.domainBySlot = new Int16Array(SLOT_COUNT).fill(-1);
    for (const r of ranges) {
      for (let slot = r.first; slot <= r.last; slot++) {
        if (this.domainBySlot[slot] !== -1) throw new Error(`slot ${slot} is served by two masters`);
        this.domainBySlot[slot] = index.get(r.masterId) ?? -1;
      }
    }
    const unserved = this.domainBySlot.indexOf(-1);
    if (unserved !== -1) {
      throw new Error(`slot ${unserved} is served by no master: the cluster is incomplete (cluster_state is not ok)`);
    }
    this.tags = Object.freeze(masters.map((_id, domain) => this.findTag(domain)));
  }

  domainOf(key: string): number {
    return this.domainBySlot[keySlot(key)];
  }

  /**
   * `key` with a hash tag appended that puts it on `domain`.
   * @throws RangeError if `domain` is out of range or `key` already contains `{` (its own tag
   *   could decide the slot instead)
   */
  keyInDomain(key: string, domain: number): string {
    if (!Number.isInteger(domain) || domain < 0 || domain >= this.domains) {
      throw new RangeError(`domain ${domain} is outside [0, ${this.domains})`);
    }
    if (key.includes('{')) {
      throw new RangeError(`key ${key} contains '{', so an appended Redis hash tag would not decide its slot`);
    }
    return `${key}{${this.tags[domain]}}`;
  }

  /** The shortest base-36 counter whose slot belongs to `domain`. */
  private findTag(domain: number): string {
    for (let n = 0; n < 1_000_000; n++) {
      const tag = n.toString(36);
      if (this.domainBySlot[keySlot(tag)] === domain) return tag;
    }
    throw new Error(`no hash tag found for cluster master ${domain}`);
  }
}
