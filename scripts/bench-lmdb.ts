/**
 * Throughput of the LMDB backend on the shapes the filesystem produces: 1 MiB blocks written
 * ifAbsent and read back, and small metadata records updated by CAS.
 *
 *   npx tsx scripts/bench-lmdb.ts [dir]
 *
 * Uses a fresh store in a temporary directory (or under `dir`) and removes it afterwards.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IF_ABSENT, ifVersion, type KvStore } from '../src/backends/kv-store.js';
import { LmdbStore } from '../src/backends/lmdb/index.js';

const MIB = 1024 * 1024;

async function inFlight<T>(count: number, limit: number, fn: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

function rate(label: string, units: number, unit: string, startedNs: bigint): void {
  const seconds = Number(process.hrtime.bigint() - startedNs) / 1e9;
  console.log(`${label.padEnd(44)} ${(units / seconds).toFixed(0).padStart(8)} ${unit}  (${seconds.toFixed(2)} s)`);
}

async function blocks(store: KvStore, concurrency: number): Promise<void> {
  const count = 1024;
  const block = Buffer.alloc(MIB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  let t = process.hrtime.bigint();
  await inFlight(count, concurrency, async (i) => {
    const r = await store.put(`b:${concurrency}:${i}`, block, IF_ABSENT);
    if (!r.ok) throw new Error(`block ${i} already present`);
  });
  rate(`put 1024 x 1 MiB ifAbsent, ${concurrency} in flight`, count, 'MiB/s', t);
  t = process.hrtime.bigint();
  await inFlight(count, concurrency, async (i) => {
    const got = await store.get(`b:${concurrency}:${i}`);
    if (got?.value.length !== MIB) throw new Error(`block ${i} lost`);
  });
  rate(`get 1024 x 1 MiB, ${concurrency} in flight`, count, 'MiB/s', t);
}

async function smallCas(store: KvStore, concurrency: number): Promise<void> {
  const count = 10_000;
  const keys = 256;
  const versions: string[] = [];
  for (let k = 0; k < keys; k++) {
    const r = await store.put(`m:${concurrency}:${k}`, Buffer.alloc(200, k));
    if (!r.ok) throw new Error('seed failed');
    versions[k] = r.version;
  }
  // Two calls in flight on one key conflict; retried, so every update lands.
  let conflicts = 0;
  const t = process.hrtime.bigint();
  await inFlight(count, concurrency, async (i) => {
    const k = i % keys;
    for (;;) {
      const r = await store.put(`m:${concurrency}:${k}`, Buffer.alloc(200, i), ifVersion(versions[k]));
      if (r.ok) {
        versions[k] = r.version;
        return;
      }
      conflicts++;
    }
  });
  rate(`10,000 x 200 B ifVersion puts, ${concurrency} in flight`, count, 'puts/s', t);
  if (conflicts > 0) console.log(`  (${conflicts} conflicts retried)`);
}

/** Runs `fn` on a fresh store, so earlier runs' data does not skew the figures. */
async function withStore(fn: (store: KvStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(process.argv[2] ?? tmpdir(), 'voldfs-lmdb-bench-'));
  const store = await LmdbStore.open({ path: dir });
  try {
    await fn(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

for (const c of [1, 4, 16]) await withStore((store) => blocks(store, c));
for (const c of [1, 64, 256]) await withStore((store) => smallCas(store, c));
