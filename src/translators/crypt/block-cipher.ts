import { randomFillSync } from 'node:crypto';
import { requireNativeAddon } from '../native-addon.js';
import { AEAD_OVERHEAD, KEY_BYTES, NONCE_BYTES, TAG_BYTES } from './aead.js';

/**
 * AES-256-GCM on large blocks, in aead.ts's format (`nonce || ciphertext || tag`), run on
 * libuv's threadpool by @ronomon/crypto-async. It calls the same OpenSSL as node:crypto, but
 * writes into memory it is given: a block is opened in place, where the store's bytes landed,
 * and sealed straight into the buffer the next translator encodes. node:crypto's `update`
 * returns new memory for every piece instead, which worker threads had to copy back, and
 * fresh workers (as on a fresh mount) fault that memory in page by page, several times the CPU
 * (docs/performance.md).
 */

const ALGORITHM = 'aes-256-gcm';

type Addon = typeof import('@ronomon/crypto-async');
let addon: Addon | undefined;

/**
 * The addon, loaded once. Crypt asks for it when it is set up, so that a volume cannot be
 * mounted without it rather than fail at its first large block.
 * @throws ConfigError when the addon is not built, saying how to build it
 */
export function loadAddon(): Addon {
  addon ??= requireNativeAddon<Addon>('@ronomon/crypto-async', 'crypt');
  return addon;
}

/**
 * Seals `plaintext` into the front of `out`, which needs `plaintext.length + AEAD_OVERHEAD`
 * bytes; returns that part of `out`. Neither buffer may change until it resolves.
 */
export async function sealInto(key: Buffer, aad: Buffer, plaintext: Buffer, out: Buffer): Promise<Buffer> {
  const length = plaintext.length + AEAD_OVERHEAD;
  if (out.length < length) throw new RangeError(`sealing ${plaintext.length} bytes needs ${length} bytes of room, not ${out.length}`);
  randomFillSync(out, 0, NONCE_BYTES);
  await run(1, key, out, plaintext, 0, plaintext.length, out, NONCE_BYTES, aad, out, NONCE_BYTES + plaintext.length);
  return out.subarray(0, length);
}

/**
 * Opens a block sealed by {@link sealInto} (or aead.ts `seal`) into `target` from
 * `targetOffset` on; `sealed` itself at NONCE_BYTES opens it in place. Returns the plaintext,
 * or undefined when it does not authenticate: the bytes written are zeroed then, so nothing
 * unauthenticated stays readable. Neither buffer may change until it resolves.
 */
export async function openInto(
  key: Buffer,
  aad: Buffer,
  sealed: Buffer,
  target: Buffer,
  targetOffset: number,
): Promise<Buffer | undefined> {
  const length = sealed.length - AEAD_OVERHEAD;
  if (length < 0) return undefined;
  try {
    await run(0, key, sealed, sealed, NONCE_BYTES, length, target, targetOffset, aad, sealed, NONCE_BYTES + length);
  } catch (err) {
    if ((err as Error).message !== loadAddon().E_CORRUPT) throw err;
    target.fill(0, targetOffset, targetOffset + length);
    return undefined;
  }
  return target.subarray(targetOffset, targetOffset + length);
}

function run(
  encrypt: 0 | 1,
  key: Buffer,
  nonce: Buffer,
  source: Buffer,
  sourceOffset: number,
  length: number,
  target: Buffer,
  targetOffset: number,
  aad: Buffer,
  tag: Buffer,
  tagOffset: number,
): Promise<void> {
  if (key.length !== KEY_BYTES) throw new RangeError(`an AES-256 key is ${KEY_BYTES} bytes, not ${key.length}`);
  const { cipher } = loadAddon();
  return new Promise((resolve, reject) => {
    cipher(
      ALGORITHM,
      encrypt,
      key,
      0,
      KEY_BYTES,
      nonce,
      0,
      NONCE_BYTES,
      ...nonEmpty(source, sourceOffset),
      length,
      ...nonEmpty(target, targetOffset),
      ...nonEmpty(aad, 0),
      aad.length,
      tag,
      tagOffset,
      TAG_BYTES,
      (error) => (error ? reject(error) : resolve()),
    );
  });
}

const SPARE = Buffer.alloc(1);

/**
 * The addon aborts the process on an empty buffer (its memory may be a null pointer) even
 * for zero bytes of work: such a buffer is passed as a spare byte, at offset 0.
 */
function nonEmpty(buffer: Buffer, offset: number): [Buffer, number] {
  return buffer.length > 0 ? [buffer, offset] : [SPARE, 0];
}
