import type { Placement } from '../kv-store.js';
import { jumpHash, stableHash64 } from './jump-hash.js';

/** Separates a key from the placement suffix; not used by the key names of the layers above. */
const SUFFIX_MARK = '~';
/** Suffixes tried before giving up: 36^3, enough for any realistic pool (miss odds (1-1/n)^46656). */
const MAX_SUFFIX_TRIES = 36 ** 3;

/**
 * Placement over a memcached pool: each server is a failure domain and a key's server is
 * `jumpHash(sha256(key), servers)`. Every client must list the servers in the same order.
 */
export class JumpHashPlacement implements Placement {
  /**
   * @param domains number of servers (at least 1)
   */
  constructor(readonly domains: number) {
    if (!Number.isInteger(domains) || domains < 1) throw new RangeError(`server count ${domains} must be a positive integer`);
  }

  domainOf(key: string): number {
    return this.domains === 1 ? 0 : jumpHash(stableHash64(key), this.domains);
  }

  /**
   * `key` + `~` + the first base-36 counter (at most 3 characters) whose result lands on
   * `domain`, so a derived key is at most 4 bytes longer than `key`.
   * @throws RangeError when `domain` is not in `[0, domains)`
   */
  keyInDomain(key: string, domain: number): string {
    if (!Number.isInteger(domain) || domain < 0 || domain >= this.domains) {
      throw new RangeError(`domain ${domain} is not in [0, ${this.domains})`);
    }
    for (let attempt = 0; attempt < MAX_SUFFIX_TRIES; attempt++) {
      const candidate = key + SUFFIX_MARK + attempt.toString(36);
      if (this.domainOf(candidate) === domain) return candidate;
    }
    // Unreachable in practice: each try lands on `domain` with probability 1/domains.
    throw new RangeError(`no key derived from ${JSON.stringify(key)} lands on server ${domain} of ${this.domains}`);
  }
}
