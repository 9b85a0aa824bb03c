import { IntegrityError, isUnreachable } from '../backends/errors.js';
import { IF_ABSENT, type KvStore } from '../backends/kv-store.js';
import type { VolumeKeys } from './keys.js';

/** How long a sentinel seen present is trusted, ms. */
const TRUST_MS = 1000;

/**
 * Tells a record that never existed from one the store lost. mkfs writes a small sentinel
 * record on every failure domain of the store (each memcached server, each cluster master); a
 * server that restarted empty has lost its sentinel along with everything else. When a record
 * that should be there is missing (a chunk map, an inode a name points at, a directory node),
 * the sentinel of the domain that held it says whether that is a hole or damage: damage is an
 * IntegrityError (EIO, logged), never zeros or a vanished file.
 */
export class LossDetector {
  private readonly seenAt = new Map<number, number>();

  private readonly replicated: boolean;
  private readonly now: () => number;

  /**
   * @param options.replicated the store keeps metadata copies (src/backends/wrappers/replicated-store.ts),
   *   which never answers "absent" from a domain that lost its data: a miss is then a real one
   * @param options.now clock, ms; default Date.now
   */
  constructor(
    private readonly store: KvStore,
    private readonly keys: VolumeKeys,
    options: { replicated?: boolean; now?: () => number } = {},
  ) {
    this.replicated = options.replicated ?? false;
    this.now = options.now ?? Date.now;
  }

  /** Sentinel keys, one per domain of the store. */
  sentinelKeys(): string[] {
    const { placement } = this.store.capabilities;
    return Array.from({ length: placement.domains }, (_, d) => placement.keyInDomain(this.keys.sentinel(), d));
  }

  /** Writes every sentinel (mkfs, or fsck --repair once the damage is dealt with). */
  async plant(volumeId: string): Promise<void> {
    for (const key of this.sentinelKeys()) await this.store.put(key, Buffer.from(volumeId), IF_ABSENT);
    this.seenAt.clear();
  }

  /**
   * Domains whose sentinel is gone: the servers that lost data. A domain that cannot be
   * reached is not counted (it may well hold its data; what it holds is unreachable anyway).
   */
  async lostDomains(): Promise<number[]> {
    const found = await Promise.all(
      this.sentinelKeys().map(async (key) => {
        try {
          return (await this.store.get(key)) !== undefined;
        } catch (err) {
          if (isUnreachable(err)) return true;
          throw err;
        }
      }),
    );
    return found.flatMap((present, d) => (present ? [] : [d]));
  }

  /**
   * Called when `key` is missing though the volume's structure says it should exist.
   * @throws IntegrityError when the domain that held `key` lost its data
   */
  async checkMissing(key: string, what: string): Promise<void> {
    if (this.replicated) return;
    const { placement } = this.store.capabilities;
    const domain = placement.domainOf(key);
    const seen = this.seenAt.get(domain);
    if (seen !== undefined && this.now() - seen < TRUST_MS) return;
    const sentinel = placement.keyInDomain(this.keys.sentinel(), domain);
    if (await this.store.get(sentinel)) {
      this.seenAt.set(domain, this.now());
      return;
    }
    throw new IntegrityError(
      `${what} has no record ${key}, and store domain ${domain} has lost its data ` +
        '(a server restarted empty?): run voldfs fsck',
    );
  }
}
