/**
 * Child process of the LMDB multi-process test: increments a counter record by CAS `count`
 * times, retrying conflicts, then prints how many conflicts it saw. It writes `<key>:ready`
 * once the store is open.
 *
 *   node --import tsx lmdb-cas-worker.ts <store dir> <key> <count>
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ifVersion, type KvStore } from '../../src/backends/kv-store.js';
import { LmdbStore } from '../../src/backends/lmdb/index.js';

/** Adds one to the decimal counter under `key`; returns the number of conflicts retried. */
export async function increment(store: KvStore, key: string): Promise<number> {
  for (let conflicts = 0; conflicts < 10_000; conflicts++) {
    const current = await store.get(key);
    if (!current) throw new Error(`counter ${key} is missing`);
    const next = Buffer.from(String(Number(current.value.toString()) + 1));
    if ((await store.put(key, next, ifVersion(current.version))).ok) return conflicts;
    await sleep(Math.random() * 2);
  }
  throw new Error(`counter ${key}: no CAS succeeded in 10000 attempts`);
}

async function main(): Promise<void> {
  const [dir, key, count] = process.argv.slice(2);
  const store = await LmdbStore.open({ path: dir });
  let conflicts = 0;
  try {
    // Tells the parent to start its own increments, so both run at once.
    await store.put(`${key}:ready`, Buffer.from('1'));
    for (let i = 0; i < Number(count); i++) conflicts += await increment(store, key);
  } finally {
    await store.close();
  }
  process.stdout.write(JSON.stringify({ conflicts }) + '\n');
}

if (process.argv[1]?.endsWith('lmdb-cas-worker.ts')) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exitCode = 1;
  });
}
