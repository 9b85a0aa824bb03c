/**
 * Throughput of the memcached backend against running servers:
 *
 *   export VOLDFS_MC_SERVERS=$(scripts/memcached-start 1)
 *   npx vite-node scripts/bench-memcached.ts [values]      (default 128 large values per row)
 *   scripts/memcached-stop
 *
 * Rows: puts and gets of the largest value the servers take (1 MiB-ish: maxValueBytes), and
 * small (100-byte) ifVersion puts, each with 1 and 16 requests in flight, best of 3 runs.
 * MB/s = 10^6 bytes/s of value data. Keys live under a random prefix and are deleted after.
 */
import { randomBytes } from 'node:crypto';
import { ifVersion, type KvStore, type Version } from '../src/backends/kv-store.js';
import { memcachedBackend } from '../src/backends/memcached/index.js';

const REPEATS = 3;
const CONCURRENCY = [1, 16];
const SMALL_BYTES = 100;
const SMALL_KEYS = 64;
const SMALL_ROUNDS = 40;

async function main(): Promise<void> {
  const values = Number(process.argv[2] ?? 128);
  const store = await memcachedBackend.create(memcachedBackend.parseOptions(process.env));
  const prefix = `bench:${randomBytes(4).toString('hex')}:`;
  try {
    const size = store.capabilities.maxValueBytes;
    const value = randomBytes(size);
    const keys = Array.from({ length: values }, (_v, i) => `${prefix}big:${i}`);
    console.log(`memcached ${process.env.VOLDFS_MC_SERVERS ?? '127.0.0.1:11211'}, values of ${size} bytes, best of ${REPEATS}`);
    console.log(['in flight', 'put MB/s', 'get MB/s', 'small CAS puts/s'].map((c) => c.padStart(18)).join(''));
    for (const streams of CONCURRENCY) {
      const put = await best(() => timed(() => forEach(keys, streams, async (key) => void (await store.put(key, value)))));
      const get = await best(() =>
        timed(() =>
          forEach(keys, streams, async (key) => {
            if ((await store.get(key))?.value.length !== size) throw new Error(`${key} did not round-trip`);
          }),
        ),
      );
      const cas = await best(() => timed(() => casRounds(store, `${prefix}small:`, streams)));
      const mb = (seconds: number) => ((values * size) / 1e6 / seconds).toFixed(0);
      const ops = (seconds: number) => ((SMALL_KEYS * SMALL_ROUNDS) / seconds).toFixed(0);
      console.log([String(streams), mb(put), mb(get), ops(cas)].map((c) => c.padStart(18)).join(''));
    }
    await forEach(keys, 16, async (key) => void (await store.delete(key)));
    await forEach(Array.from({ length: SMALL_KEYS }, (_v, i) => `${prefix}small:${i}`), 16, async (key) => void (await store.delete(key)));
  } finally {
    await store.close();
  }
}

/** SMALL_KEYS records, each updated SMALL_ROUNDS times by ifVersion puts chained on the returned version. */
async function casRounds(store: KvStore, prefix: string, streams: number): Promise<void> {
  const keys = Array.from({ length: SMALL_KEYS }, (_v, i) => `${prefix}${i}`);
  const small = randomBytes(SMALL_BYTES);
  const versions = new Map<string, Version>();
  for (const key of keys) {
    const result = await store.put(key, small);
    if (!result.ok) throw new Error('unconditional put failed');
    versions.set(key, result.version);
  }
  // Round by round, so that no two streams update the same key at once.
  for (let round = 0; round < SMALL_ROUNDS; round++) {
    await forEach(keys, streams, async (key) => {
      const result = await store.put(key, small, ifVersion(versions.get(key) ?? ''));
      if (!result.ok) throw new Error(`CAS conflict on ${key} with a single writer`);
      versions.set(key, result.version);
    });
  }
}

async function forEach<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function best(run: () => Promise<number>): Promise<number> {
  let fastest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < REPEATS; i++) fastest = Math.min(fastest, await run());
  return fastest;
}

await main();
