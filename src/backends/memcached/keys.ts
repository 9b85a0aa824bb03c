import { StoreError } from '../errors.js';

/**
 * memcached's own key limit. Callers build keys of at most MAX_KEY_BYTES (240); the rest is
 * room for the suffix that placement appends.
 */
export const MEMCACHED_MAX_KEY_BYTES = 250;

/** A key memcached cannot hold: too long, empty, or with spaces, control or non-ASCII characters. */
export class InvalidKey extends StoreError {}

/**
 * The key as bytes, after checking that memcached accepts it (1 to 250 printable ASCII bytes,
 * no space). The text protocol, which scan uses, would split a key at a space.
 * @throws InvalidKey
 */
export function encodeKey(key: string): Buffer {
  if (key.length === 0) throw new InvalidKey('memcached keys cannot be empty');
  if (key.length > MEMCACHED_MAX_KEY_BYTES) {
    throw new InvalidKey(
      `key of ${key.length} bytes is longer than memcached's limit of ${MEMCACHED_MAX_KEY_BYTES} bytes: ` +
        `${JSON.stringify(key.slice(0, 40))}...`,
    );
  }
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code <= 0x20 || code >= 0x7f) {
      throw new InvalidKey(
        `key ${JSON.stringify(key)} has a character memcached cannot take at offset ${i} ` +
          `(keys must be printable ASCII without spaces)`,
      );
    }
  }
  return Buffer.from(key, 'latin1');
}
