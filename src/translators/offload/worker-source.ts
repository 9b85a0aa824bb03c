/**
 * The body of an offload worker, as CommonJS source run with `new Worker(source, { eval: true })`.
 * A string rather than a module file so the same worker runs from `dist/` and from the TypeScript
 * sources under the test runner; it is kept small and has no imports of our own. It requires the
 * native modules by the absolute paths the pool resolves (`workerData.xxhash`,
 * `workerData.reedSolomon`).
 *
 * Protocol: each message is one task `{ id, op, ... , input, offset, length }` where `input` is
 * an ArrayBuffer transferred to the worker; the reply `{ id, input, ... }` transfers `input` back
 * (so the pool can reuse it) together with an `output` ArrayBuffer, which is `input` itself for
 * work done in place (then sent once):
 *   seal   { key, aad, capacity, out } -> output = nonce (12) || ciphertext || tag (16) (aead.ts
 *                                    format), `outputLength` bytes at the front of `out` (a transferred
 *                                    ArrayBuffer, reused when it holds `capacity` bytes) or of a new one
 *   open   { key, aad }           -> plaintext written over the input from `offset` on, which comes
 *                                    back as `output` (`outputLength` bytes at `outputOffset`); `failed: true` (and
 *                                    no output) when it does not authenticate
 *   encode { k, m, size }         -> output = k data fragments (zero padded) || m parity fragments,
 *                                    each `size` bytes; sums = XXH64 of each fragment, 8 bytes BE.
 *                                    When `input` starts at offset 0 and has room for all of that,
 *                                    it is encoded in place and comes back as `output`.
 * Any other failure replies `{ id, error }` with a message.
 */
export const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const { xxh64 } = require(workerData.xxhash);
const rs = require(workerData.reedSolomon);

const NONCE = 12;
const TAG = 16;
// Cipher update returns new memory for its output. 1 MiB of it per block is a fresh mapping,
// faulted in page by page: sealing 512 MiB cost the workers 143,000 page faults and 0.72 s of
// CPU. Output in 64 KiB pieces comes from the allocator's reused heap: 31,000-35,000 faults,
// 0.51-0.55 s.
const SLICE = 64 * 1024;
const contexts = new Map();

function seal(t, input) {
  const nonce = crypto.randomBytes(NONCE);
  const cipher = crypto.createCipheriv('aes-256-gcm', t.key, nonce, { authTagLength: TAG });
  cipher.setAAD(t.aad);
  const length = input.length + NONCE + TAG;
  const room = Math.max(length, t.capacity || 0);
  const out = t.out && t.out.byteLength >= room ? Buffer.from(t.out, 0, room) : Buffer.allocUnsafeSlow(room);
  nonce.copy(out, 0);
  let at = NONCE;
  for (let i = 0; i < input.length; i += SLICE) at += cipher.update(input.subarray(i, i + SLICE)).copy(out, at);
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
  // A scratch buffer sent along but too small is dropped.
  return { output: out.buffer, outputLength: length };
}

function open(t, input) {
  const decipher = crypto.createDecipheriv('aes-256-gcm', t.key, input.subarray(0, NONCE), { authTagLength: TAG });
  decipher.setAAD(t.aad);
  decipher.setAuthTag(input.subarray(input.length - TAG));
  // Over the ciphertext, so the plaintext goes back in memory the main thread already has:
  // each slice lands NONCE bytes before where its ciphertext was, already read.
  const length = input.length - NONCE - TAG;
  for (let i = 0; i < length; i += SLICE) decipher.update(input.subarray(NONCE + i, NONCE + Math.min(i + SLICE, length))).copy(input, i);
  try {
    decipher.final();
  } catch {
    input.fill(0, 0, length);
    return { failed: true };
  }
  return { inPlace: true, output: t.input, outputOffset: t.offset, outputLength: length };
}

function encode(t, input) {
  const { k, m, size } = t;
  const key = k + '+' + m;
  let context = contexts.get(key);
  if (!context) contexts.set(key, (context = rs.create(k, m)));
  const inPlace = t.offset === 0 && t.input.byteLength >= (k + m) * size;
  const out = inPlace ? Buffer.from(t.input, 0, (k + m) * size) : Buffer.allocUnsafeSlow((k + m) * size);
  if (!inPlace) input.copy(out, 0);
  out.fill(0, input.length, k * size);
  let sources = 0;
  let targets = 0;
  for (let i = 0; i < k; i++) sources |= 1 << i;
  for (let i = k; i < k + m; i++) targets |= 1 << i;
  return new Promise((resolve, reject) => {
    rs.encode(context, sources, targets, out, 0, k * size, out, k * size, m * size, (err) => {
      if (err) return reject(err);
      const sums = Buffer.alloc(8 * (k + m));
      for (let i = 0; i < k + m; i++) sums.writeBigUInt64BE(xxh64(out.subarray(i * size, (i + 1) * size)), 8 * i);
      resolve({ output: out.buffer, sums, inPlace });
    });
  });
}

const OPS = { seal, open, encode };

parentPort.on('message', (t) => {
  const input = Buffer.from(t.input, t.offset, t.length);
  Promise.resolve()
    .then(() => OPS[t.op](t, input))
    .then(
      (result) => {
        // Done in place: the input is the output, sent back once.
        const back = result.inPlace ? undefined : t.input;
        const transfer = back ? [back] : [];
        if (result.output) transfer.push(result.output);
        parentPort.postMessage({ id: t.id, input: back, output: result.output, outputLength: result.outputLength, outputOffset: result.outputOffset, sums: result.sums, failed: result.failed }, transfer);
      },
      (err) => parentPort.postMessage({ id: t.id, error: String((err && err.message) || err) }),
    );
});
`;
