/**
 * What the translators cost the thread that answers FUSE: `npx tsx scripts/bench-offload.ts
 * [blocks]` (default 512 blocks of 1 MiB per row, 16 in flight, two rounds).
 *
 * First table: AES-256-GCM sealing and opening done three ways: node:crypto on the event loop,
 * WebCrypto (subtle.encrypt/decrypt, which run in libuv's threadpool), and OpenSSL through
 * @ronomon/crypto-async into memory it is given, also in the threadpool (what crypt uses for
 * large blocks, src/translators/crypt/block-cipher.ts). Second table: the crypt+erasure 4+2
 * block stack on the in-memory store with and without the translators' pool.
 *
 * "main thread" is the CPU time of the main thread alone (from /proc/self/task/<pid>/stat, so
 * a busy machine inflates it far less than wall time), "process" the CPU time of every thread,
 * both per MiB of block data. Prints tables to stdout; data and keys are synthetic.
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MemoryStore } from '../src/backends/memory/index.js';
import type { BlockRef } from '../src/translators/block-store.js';
import { AEAD_OVERHEAD, open, seal } from '../src/translators/crypt/aead.js';
import { openInto, sealInto } from '../src/translators/crypt/block-cipher.js';
import { createKeyring } from '../src/translators/crypt/keyring.js';
import { RONOMON_CODEC_ID } from '../src/translators/erasure/codec.js';
import { OffloadPool } from '../src/translators/offload/offload-pool.js';
import { buildBlockStack } from '../src/translators/stack.js';

const MiB = 1 << 20;
const INFLIGHT = 16;
const ROUNDS = 2;

/** CPU milliseconds the main thread has used (clock ticks of 10 ms on Linux). */
function mainThreadCpuMs(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function measure(label: string, blocks: number, op: (i: number) => Promise<unknown>): Promise<void> {
  const m0 = mainThreadCpuMs();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < blocks) await op(next++);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const main = mainThreadCpuMs() - m0;
  const mbs = ((blocks * MiB) / 1e6 / seconds).toFixed(0);
  const proc = ((cpu.user + cpu.system) / 1000 / blocks).toFixed(2);
  console.log(`${label.padEnd(44)} ${mbs.padStart(6)} ${(main / blocks).toFixed(2).padStart(12)} ${proc.padStart(9)}`);
}

async function main(): Promise<void> {
  const blocks = Number(process.argv[2] ?? 512);
  const { keyring, settings: crypt } = await createKeyring('bench passphrase');
  const key = keyring.blockKey;
  const subtleKey = await webcrypto.subtle.importKey('raw', key.export(), 'AES-GCM', false, ['encrypt', 'decrypt']);
  const aad = randomBytes(64);
  const data = randomBytes(MiB);
  const sealed = seal(key, data, aad);
  const rawKey = key.export();
  // One output buffer per request in flight (they must not change while the threadpool works).
  const outs = Array.from({ length: INFLIGHT }, () => Buffer.allocUnsafeSlow(MiB + AEAD_OVERHEAD));
  let slot = 0;
  const out = () => outs[slot++ % INFLIGHT];
  const webSeal = async () => {
    const nonce = randomBytes(12);
    const body = await webcrypto.subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad }, subtleKey, data);
    return Buffer.concat([nonce, Buffer.from(body)]);
  };
  const webOpen = async () =>
    Buffer.from(
      await webcrypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.subarray(0, 12), additionalData: aad }, subtleKey, sealed.subarray(12)),
    );
  const header = `${' '.padEnd(44)} ${'MB/s'.padStart(6)} ${'main ms/MiB'.padStart(12)} ${'proc ms/MiB'.padStart(9)}`;

  console.log(`AES-256-GCM, 1 MiB messages, ${blocks} per row, ${INFLIGHT} in flight`);
  console.log(header);
  const cases: [string, () => Promise<unknown>][] = [
    ['seal: node:crypto on the event loop', async () => seal(key, data, aad)],
    ['seal: WebCrypto (threadpool)', webSeal],
    ['seal: crypto-async into given memory', () => sealInto(rawKey, aad, data, out())],
    ['open: node:crypto on the event loop', async () => open(key, sealed, aad, 'bench')],
    ['open: WebCrypto (threadpool)', webOpen],
    ['open: crypto-async into given memory', () => openInto(rawKey, aad, sealed, out(), 0)],
  ];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [label, op] of cases) {
      for (let i = 0; i < 16; i++) await op(); // warm-up
      await measure(`${round} ${label}`, blocks, op);
    }
  }

  console.log(`\ncrypt+erasure 4+2 block stack, memory store, 1 MiB blocks, ${blocks} per row, ${INFLIGHT} in flight`);
  console.log(header);
  const ctx = { volumeId: 'bench', ino: 2, chunkIndex: 0 };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const mode of ['without the pool', 'with the pool'] as const) {
      const store = new MemoryStore({ maxValueBytes: 2 * MiB });
      const settings = { crypt, erasure: { k: 4, m: 2, codec: RONOMON_CODEC_ID } };
      const stack = buildBlockStack(settings, keyring, store, 'bench:b:', mode === 'with the pool' ? new OffloadPool() : false);
      const refs: BlockRef[] = [];
      await measure(`${round} put, ${mode}`, blocks, async (i) => {
        refs[i] = await stack.put(`b${i}`, data, ctx);
      });
      await measure(`${round} get, ${mode}`, blocks, (i) => stack.get(refs[i], ctx));
    }
  }
}

await main();
