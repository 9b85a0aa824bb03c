import type { Placement } from '../kv-store.js';

/**
 * Placement for a store that pretends to have `domains` failure domains, so translator tests
 * can spread fragments without real servers. A key ending in `@<n>` (n < domains) lives on
 * domain n; any other key is placed by an FNV-1a hash. With one domain everything is on 0.
 */
export function suffixPlacement(domains: number): Placement {
  if (!Number.isInteger(domains) || domains < 1) {
    throw new RangeError(`placement needs a whole number of domains >= 1, got ${domains}`);
  }
  return Object.freeze({
    domains,
    domainOf(key: string): number {
      if (domains === 1) return 0;
      const tagged = /@(\d+)$/.exec(key);
      if (tagged) {
        const n = Number(tagged[1]);
        if (n < domains) return n;
      }
      return fnv1a(key) % domains;
    },
    keyInDomain(key: string, domain: number): string {
      if (!Number.isInteger(domain) || domain < 0 || domain >= domains) {
        throw new RangeError(`domain ${domain} is outside [0, ${domains})`);
      }
      return domains === 1 ? key : `${key}@${domain}`;
    },
  });
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}
