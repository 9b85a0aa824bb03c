import { randomFillSync } from 'node:crypto';
import type { Version } from '../kv-store.js';

/**
 * LMDB record versions. lmdb-js stores a float64 version with each record; we use random
 * integers below 2^53 so versions never repeat for a key, across restarts and across processes
 * sharing one store, without a shared counter that every write would have to update. The chance
 * that a key's new version equals one a stale reader still holds is 2^-53 per write.
 */
export function newVersion(): number {
  if (randomAt + 7 > random.length) {
    randomFillSync(random);
    randomAt = 0;
  }
  // 21 high bits + 32 low bits = 53 bits, exactly representable in a double.
  const version = (random.readUIntBE(randomAt, 3) & 0x1fffff) * 2 ** 32 + random.readUInt32BE(randomAt + 3);
  randomAt += 7;
  return version === 0 ? 1 : version;
}

/** Random bytes drawn a page at a time: one draw per version costs tens of microseconds. */
const random = Buffer.alloc(7 * 585);
let randomAt = random.length;

export function encodeVersion(version: number): Version {
  return version.toString(36);
}

/**
 * The number behind a token, or `undefined` if the token did not come from this backend (a
 * condition on it can never hold).
 */
export function decodeVersion(token: Version): number | undefined {
  if (!/^[0-9a-z]{1,11}$/.test(token)) return undefined;
  const version = parseInt(token, 36);
  return Number.isSafeInteger(version) && version > 0 ? version : undefined;
}
