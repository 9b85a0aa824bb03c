import { createHash } from 'node:crypto';

const MASK_64 = (1n << 64n) - 1n;
const LCG_MULTIPLIER = 2862933555777941757n;
const TWO_POW_31 = 2 ** 31;

/**
 * A stable 64-bit hash of a key: the first 8 bytes of its SHA-256. Stable across processes,
 * versions and machines, which is what placement needs; speed is secondary to a network trip.
 */
export function stableHash64(key: string): bigint {
  return createHash('sha256').update(key, 'latin1').digest().readBigUInt64BE(0);
}

/**
 * Jump consistent hash (Lamping and Veach, 2014): maps a 64-bit hash to a bucket in
 * `[0, buckets)` so that growing the list from n to n+1 buckets moves only 1/(n+1) of the keys,
 * all of them to the new bucket. Buckets are positions, so servers must keep their order.
 */
export function jumpHash(hash: bigint, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1) throw new RangeError(`bucket count ${buckets} must be a positive integer`);
  let key = hash & MASK_64;
  let bucket = -1;
  let jump = 0;
  while (jump < buckets) {
    bucket = jump;
    key = (key * LCG_MULTIPLIER + 1n) & MASK_64;
    jump = Math.floor((bucket + 1) * (TWO_POW_31 / (Number(key >> 33n) + 1)));
  }
  return bucket;
}
