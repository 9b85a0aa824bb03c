import { createCipheriv, createDecipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { IntegrityError } from '../../backends/errors.js';

/**
 * AES-256-GCM sealing with a fresh random 96-bit nonce per message. A sealed message is
 * `nonce (12) || ciphertext (same length as plaintext) || tag (16)`.
 *
 * These run on the calling thread: crypt uses them for blocks under 64 KiB and for metadata
 * records. Larger blocks go to libuv's threadpool in the same format (block-cipher.ts), which
 * costs the main thread a fraction of node:crypto or WebCrypto (scripts/bench-offload.ts;
 * figures in docs/performance.md).
 */

/** Bytes of the random nonce at the front of a sealed message. */
export const NONCE_BYTES = 12;
/** Bytes of the GCM authentication tag at the end of a sealed message. */
export const TAG_BYTES = 16;
/** Bytes a sealed message is longer than its plaintext. */
export const AEAD_OVERHEAD = NONCE_BYTES + TAG_BYTES;
/** AES-256 key length in bytes. */
export const KEY_BYTES = 32;

const CIPHER = 'aes-256-gcm';

/** Encrypts and authenticates `plaintext`, binding `aad` (authenticated, not stored). */
export function seal(key: KeyObject, plaintext: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([nonce, body, tail, cipher.getAuthTag()]);
}

/**
 * Decrypts a message made by {@link seal} with the same key and `aad`.
 * @throws IntegrityError if the message is too short or does not authenticate (wrong key,
 *   wrong aad, any flipped bit); no plaintext is returned in that case.
 */
export function open(key: KeyObject, sealed: Buffer, aad: Buffer, what: string): Buffer {
  if (sealed.length < AEAD_OVERHEAD) {
    throw new IntegrityError(`${what} is ${sealed.length} bytes, too short to be encrypted data`);
  }
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  const decipher = createDecipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(body);
  try {
    decipher.final();
  } catch (err) {
    // Wipe what was decrypted so unauthenticated bytes cannot leak out by accident.
    plaintext.fill(0);
    throw authenticationFailed(what, err);
  }
  return plaintext;
}

/** The error for a message that does not authenticate; `what` names it, e.g. `block <id>`. */
export function authenticationFailed(what: string, cause?: unknown): IntegrityError {
  return new IntegrityError(`${what} failed authentication (tampered, corrupt or misplaced)`, { cause });
}
