import type { Version } from '../backends/kv-store.js';

/** How many pending intents one client remembers having seen; older sightings are dropped. */
const MAX_SIGHTINGS = 4096;

/**
 * Decides when a pending intent counts as abandoned (its owner presumed dead), so that a
 * client may abort it and take over its keys. This only affects liveness: aborting a live
 * transaction is always safe, because its owner's commit point is a CAS on the intent that
 * then fails (see intent-store.ts). So the rule may err, and it errs towards waiting.
 *
 * A pending intent is abandoned when either
 * - its age by the owner's wall clock (`createdAt`) against ours exceeds the timeout (clocks
 *   within a fraction of the timeout of each other, as NTP keeps them), or
 * - this client has itself watched the same intent version stay pending for longer than the
 *   timeout by its own monotonic clock, which needs no clock agreement at all and covers an
 *   owner whose clock ran ahead.
 */
export class LockLiveness {
  /** `txid@version` -> monotonic ms when first seen pending; Map order = age. */
  private readonly sightings = new Map<string, number>();

  /**
   * @param timeoutMs how long a pending intent may live, ms; must exceed any live commit
   * @param now wall clock, ms since epoch
   * @param monotonicNow a clock that never jumps, ms
   */
  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number,
    private readonly monotonicNow: () => number,
  ) {}

  /** Whether the pending intent `txid` at `version`, created at `createdAt`, is abandoned. */
  isAbandoned(txid: string, version: Version, createdAt: number): boolean {
    if (this.now() - createdAt > this.timeoutMs) return true;
    const id = `${txid}@${version}`;
    const seenNow = this.monotonicNow();
    const first = this.sightings.get(id);
    if (first === undefined) {
      this.sightings.set(id, seenNow);
      if (this.sightings.size > MAX_SIGHTINGS) {
        const oldest = this.sightings.keys().next();
        if (!oldest.done) this.sightings.delete(oldest.value);
      }
      return false;
    }
    return seenNow - first > this.timeoutMs;
  }

  /** Whether a decided intent is old enough that its owner has likely gone, so helpers finish it. */
  isStale(createdAt: number): boolean {
    return this.now() - createdAt > this.timeoutMs;
  }

  /** Forgets a transaction once it is decided. */
  forget(txid: string, version: Version): void {
    this.sightings.delete(`${txid}@${version}`);
  }
}
