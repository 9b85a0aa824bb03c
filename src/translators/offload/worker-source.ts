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
 *   encode { k, m, size }         -> output = k data fragments (zero padded) || m parity fragments,
 *                                    each `size` bytes; sums = XXH64 of each fragment, 8 bytes BE.
 *                                    When `input` starts at offset 0 and has room for all of that,
 *                                    it is encoded in place and comes back as `output`.
 * Any other failure replies `{ id, error }` with a message.
 */
export const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { xxh64 } = require(workerData.xxhash);
const rs = require(workerData.reedSolomon);
const contexts = new Map();

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

const OPS = { encode };

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
        parentPort.postMessage({ id: t.id, input: back, output: result.output, sums: result.sums }, transfer);
      },
      (err) => parentPort.postMessage({ id: t.id, error: String((err && err.message) || err) }),
    );
});
`;
