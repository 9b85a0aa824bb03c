/**
 * Erasure coding 4+2 on a pool of six memcached servers: any two servers may go, every byte
 * still reads back; servers that come back empty are refilled by repair, byte for byte; then
 * two other servers may go.
 *
 *  - The first describe runs the scenario on the block stack itself (crypt+erasure and erasure
 *    alone), repairing with BlockStore.check, and also shows that a third server down gives a
 *    store error, never wrong bytes.
 *  - The second is the product, through the CLI only: `voldfs mkfs --erasure 4+2 [--crypt]`,
 *    a FUSE mount of bin/voldfs.js, `voldfs fsck [--repair]`. Metadata records are kept in 3
 *    copies on distinct servers (src/backends/wrappers/replicated-store.ts) and the memcached store starts
 *    with servers down, so: two servers killed (SIGKILL) under a mount, it and a fresh mount
 *    read every file, and files written meanwhile are stored without the fragments and copies
 *    those servers would hold; they restart empty, `voldfs fsck --repair` rewrites fragments and
 *    metadata copies (every restarted server holds more than before, a second fsck is
 *    clean); two other servers hung (SIGSTOP), a fresh mount reads every file; fsck clean at
 *    the end. A third scenario hangs two servers while names change and the mount exits: they
 *    come back with stale records, which a fresh mount must not serve (missed-write markers),
 *    then fsck --repair, then two others killed. Pairs are drawn at random (printed).
 * Needs `npm run build` (the second describe runs the CLI from dist/).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreTimeout, StoreUnavailable } from '../../src/backends/errors.js';
import type { KvStore } from '../../src/backends/kv-store.js';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import type { BlockContext, BlockRef, BlockStore } from '../../src/translators/block-store.js';
import { createKeyring, type KdfSettings } from '../../src/translators/crypt/keyring.js';
import { RONOMON_CODEC_ID } from '../../src/translators/erasure/codec.js';
import { buildBlockStack, type TranslatorSettings } from '../../src/translators/stack.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { defaultVoldfsCommand, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { run } from '../helpers/run.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { buildSmallTree } from './translators/small-tree.js';
import { digestDiff, digestTree, type TreeDigest } from './translators/tree-digest.js';

const SERVERS = 6;
const K = 4;
const M = 2;
const CHEAP_KDF: KdfSettings = { id: 'argon2id', memoryKiB: 64, passes: 1, parallelism: 1 };
const PASSPHRASE = 'erasure servers test';
const MC_TIMEOUT_MS = 1500;
const SCENARIO_MS = 300_000;

type Pair = readonly [number, number];

/** Two distinct servers at random, and two others distinct from them. */
function randomPairs(): { first: Pair; second: Pair } {
  const order = Array.from({ length: SERVERS }, (_v, i) => i).sort(() => Math.random() - 0.5);
  return { first: [order[0], order[1]], second: [order[2], order[3]] };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  // Mounts first, then servers: an unmount may still flush to them.
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startPool(): Promise<MemcachedPool> {
  const pool = await startMemcachedServers(SERVERS, { memoryMb: 128 });
  cleanups.push(() => pool.stop());
  return pool;
}

function openPool(pool: MemcachedPool): Promise<KvStore> {
  return memcachedBackend.create(
    memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_MC_TIMEOUT_MS: String(MC_TIMEOUT_MS) }),
  );
}

async function stopServers(pool: MemcachedPool, pair: Pair): Promise<void> {
  await Promise.all(pair.map((i) => pool.servers[i].stop()));
}

/** Starts the servers again on their ports, empty, as a restarted memcached is. */
async function restartEmpty(pool: MemcachedPool, pair: Pair): Promise<void> {
  await Promise.all(pair.map((i) => pool.servers[i].restart()));
  for (const i of pair) expect(await pool.servers[i].itemCount(), `server ${i} after restart`).toBe(0);
}

async function itemCounts(pool: MemcachedPool): Promise<number[]> {
  return Promise.all(pool.servers.map((s) => s.itemCount()));
}

describe('erasure 4+2 on six memcached servers: the block stack', () => {
  for (const stack of ['crypt+erasure 4+2', 'erasure 4+2'] as const) {
    const scenarios: Array<[string, () => { first: Pair; second: Pair }]> = [
      ['servers 0,1 then 2,3', () => ({ first: [0, 1], second: [2, 3] })],
      ['a random pair then two others', randomPairs],
    ];
    for (const [name, pairs] of scenarios) {
      it(
        `${stack}, ${name}: every block reads back through loss, empty restart, repair and a second loss`,
        async () => {
          const { first, second } = pairs();
          console.info(`${stack}: losing servers ${first.join(',')} then ${second.join(',')}`);
          const pool = await startPool();
          const store = await openPool(pool);
          cleanups.push(() => store.close());
          let settings: TranslatorSettings = { erasure: { k: K, m: M, codec: RONOMON_CODEC_ID } };
          let keyring;
          if (stack.startsWith('crypt')) {
            const made = await createKeyring(PASSPHRASE, { kdf: CHEAP_KDF });
            keyring = made.keyring;
            settings = { ...settings, crypt: made.settings };
          }
          const blocks = buildBlockStack(settings, keyring, store, 'es:b:');
          const written = await writeBlocks(blocks);
          const baseline = await itemCounts(pool);
          expect(baseline.every((n) => n > 0), `items per server ${baseline.join(',')}`).toBe(true);

          await stopServers(pool, first);
          await expectAllIdentical(blocks, written, `servers ${first.join(',')} down`);

          await restartEmpty(pool, first);
          await expectAllIdentical(blocks, written, `servers ${first.join(',')} back empty`);
          let repaired = 0;
          for (const w of written) {
            const health = await blocks.check(w.ref, w.context, true);
            expect(health.readable).toBe(true);
            repaired += health.repaired;
          }
          expect(repaired).toBe(baseline[first[0]] + baseline[first[1]]);
          expect(await itemCounts(pool)).toEqual(baseline);
          for (const w of written) expect(await blocks.check(w.ref, w.context, false)).toEqual({ readable: true, damaged: 0, repaired: 0 });

          await stopServers(pool, second);
          await expectAllIdentical(blocks, written, `servers ${second.join(',')} down after the repair`);

          // A third server down: blocks with three fragments there cannot be read, and say so.
          const third = [0, 1, 2, 3, 4, 5].find((i) => !second.includes(i)) as number;
          await pool.servers[third].stop();
          let failed = 0;
          for (const w of written) {
            try {
              expect((await blocks.get(w.ref, w.context)).equals(w.data), `block ${w.ref.id}`).toBe(true);
            } catch (err) {
              if (!(err instanceof StoreUnavailable || err instanceof StoreTimeout)) throw err;
              failed++;
            }
          }
          expect(failed).toBeGreaterThan(0);
        },
        SCENARIO_MS,
      );
    }
  }
});

interface Written {
  readonly ref: BlockRef;
  readonly context: BlockContext;
  readonly data: Buffer;
}

/** 40 blocks: small ones (stored as copies) and striped ones up to a full chunk. */
async function writeBlocks(blocks: BlockStore): Promise<Written[]> {
  const out: Written[] = [];
  for (let i = 0; i < 40; i++) {
    const length = i % 4 === 0 ? 100 + i * 50 : Math.min(blocks.maxBlockBytes, 1024 * 1024 - i * 20_011);
    const data = randomBytes(length);
    const context = { volumeId: 'es', ino: 100 + (i % 5), chunkIndex: i };
    const ref = await blocks.put(`blk${i}-${randomBytes(4).toString('hex')}`, data, context);
    out.push({ ref, context, data });
  }
  return out;
}

async function expectAllIdentical(blocks: BlockStore, written: readonly Written[], when: string): Promise<void> {
  for (const w of written) {
    const got = await blocks.get(w.ref, w.context);
    expect(got.equals(w.data), `${when}: block ${w.ref.id}`).toBe(true);
  }
}

/** The part of a CLI volume the scenarios share. */
interface CliVolume {
  readonly pool: MemcachedPool;
  readonly work: string;
  readonly m: VoldfsMount;
  /** The source tree's digest, as copied onto the volume. */
  readonly expected: TreeDigest;
  fsck(args: string[]): Promise<{ code: number | null; report: FsckJson }>;
}

/**
 * Six servers, `voldfs mkfs --erasure 4+2 [--crypt]`, a mount (then unmounted) of a small tree
 * copied with cp -a.
 */
async function cliVolume(crypt: boolean): Promise<CliVolume> {
  const pool = await startPool();
  const work = await makeTempDir('erasure-cli');
  cleanups.push(() => removeTempDir(work));
  const source = join(work, 'source');
  await buildSmallTree(source, { files: 80, bigBytes: 3 * 1024 * 1024 + 5 });
  const expected = await digestTree(source);
  const env: Record<string, string> = {
    VOLDFS_DB: 'mc',
    VOLDFS_MC_SERVERS: pool.serversValue,
    VOLDFS_MC_TIMEOUT_MS: String(MC_TIMEOUT_MS),
    VOLDFS_STATE_DIR: join(work, 'state'),
    VOLDFS_LOG_LEVEL: 'warn',
  };
  if (crypt) {
    const passFile = join(work, 'passphrase');
    await writeFile(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    env.VOLDFS_PASSPHRASE_FILE = passFile;
  }
  const voldfs = async (args: string[]) => {
    const [cmd, ...pre] = await defaultVoldfsCommand();
    return run(cmd, [...pre, ...args], { env: { ...process.env, ...env }, timeoutMs: 120_000 });
  };
  const mk = await voldfs(['mkfs', '--erasure', '4+2', ...(crypt ? ['--crypt'] : [])]);
  expect(mk.code, mk.stderr).toBe(0);
  const m = await mountVoldfs({ env, mountpoint: join(work, 'mnt'), mkfs: false });
  cleanups.push(() => m.unmount());
  const cp = await run('cp', ['-a', `${source}/.`, m.dir], { timeoutMs: 240_000 });
  expect(cp.code, cp.stderr).toBe(0);
  await m.unmount();
  return {
    pool,
    work,
    m,
    expected,
    fsck: async (args) => {
      const r = await voldfs(['fsck', '--json', ...args]);
      if (!r.stdout.trim().startsWith('{')) throw new Error(`voldfs fsck ${args.join(' ')} printed no report (exit ${r.code}): ${r.stderr.slice(-2000)}`);
      return { code: r.code, report: JSON.parse(r.stdout) as FsckJson };
    },
  };
}

describe('erasure 4+2 through the CLI on six memcached servers: metadata copies, `voldfs fsck --repair`', () => {
  for (const stack of ['erasure 4+2', 'crypt+erasure 4+2'] as const) {
    it(
      `${stack}: two servers killed, the mount reads every file and takes new ones, a fresh mount reads them all; restarted empty and repaired; two others hung: every file identical, fsck clean`,
      async () => {
        const { first, second } = randomPairs();
        console.info(`CLI ${stack}: servers ${first.join(',')} killed, then ${second.join(',')} hung`);
        const { pool, work, m, fsck, expected } = await cliVolume(stack.startsWith('crypt'));
        const baseline = await itemCounts(pool);
        expect(baseline.every((n) => n > 0), baseline.join(',')).toBe(true);
        const clean = await fsck([]);
        expect(clean.code, JSON.stringify(clean.report.problems.slice(0, 3))).toBe(0);
        expect(clean.report.summary.problems).toBe(0);

        // Killed under a running mount: what they held is gone for good. Then a fresh mount
        // starts without them.
        await m.remount();
        await Promise.all(first.map((i) => pool.servers[i].stop('SIGKILL')));
        await expectTree(m.dir, expected, `servers ${first.join(',')} killed under the mount`, pool, 100);
        // Writes go on: blocks are stored without their fragments on the two servers, metadata
        // without its copies there, until the repair below.
        const extra = join(work, 'written-while-down');
        await buildSmallTree(extra, { files: 12, bigBytes: 2 * 1024 * 1024 + 3 });
        const cpDown = await run('cp', ['-a', extra, m.dir], { timeoutMs: 120_000 });
        expect(cpDown.code, cpDown.stderr).toBe(0);
        for (const [path, what] of await digestTree(extra)) expected.set(`./written-while-down${path.slice(1)}`, what);
        expected.set('./written-while-down', 'dir');
        await m.unmount();
        await m.remount();
        await expectTree(m.dir, expected, `servers ${first.join(',')} killed, fresh mount`, pool, 100);
        await m.unmount();

        // Back empty: the mount is refused nothing, but redundancy is gone until the repair.
        await Promise.all(first.map((i) => pool.servers[i].restart()));
        for (const i of first) expect(await pool.servers[i].itemCount(), `server ${i} after restart`).toBe(0);
        const repaired = await fsck(['--repair']);
        expect(repaired.code, JSON.stringify(repaired.report.problems.slice(0, 5))).toBe(0);
        expect(repaired.report.summary.damageLeft).toBe(0);
        expect(repaired.report.summary.byKind['store-lost-data']).toBe(1);
        expect(repaired.report.summary.byKind['metadata-copies']).toBe(1);
        expect(repaired.report.summary.metadataCopiesRewritten).toBeGreaterThan(0);
        expect(repaired.report.summary.fragmentsRewritten).toBeGreaterThan(0);
        expect(repaired.report.summary.byKind['block-damaged']).toBeGreaterThan(0);
        const again = await fsck([]);
        expect(again.code, JSON.stringify(again.report.problems.slice(0, 5))).toBe(0);
        expect(again.report.summary.problems).toBe(0);
        // A restarted server holds at least what it held before the files written meanwhile.
        const refilled = await itemCounts(pool);
        for (const i of first) expect(refilled[i], `server ${i} after the repair`).toBeGreaterThan(baseline[i]);

        // Two other servers hung (SIGSTOP): a fresh mount starts and reads without them.
        await Promise.all(second.map((i) => pool.servers[i].pause()));
        try {
          await m.remount();
          await expectTree(m.dir, expected, `servers ${second.join(',')} hung after the repair, fresh mount`, pool, 100, second);
          await m.unmount();
        } finally {
          for (const i of second) pool.servers[i].resume();
        }
        const final = await fsck([]);
        expect(final.code, JSON.stringify(final.report.problems.slice(0, 5))).toBe(0);
        expect(final.report.summary.problems).toBe(0);
      },
      SCENARIO_MS,
    );
  }

  it(
    'erasure 4+2: two servers hung while names change and the mount exits; back with stale records, they are never read; fsck --repair; two others killed: the tree as changed',
    async () => {
      const { first, second } = randomPairs();
      console.info(`CLI stale: servers ${first.join(',')} hung during changes, then ${second.join(',')} killed`);
      const { pool, m, fsck, expected } = await cliVolume(false);
      const files = [...expected].filter(([, what]) => what.startsWith('file ')).map(([path]) => path);
      const [moved, removed] = [files[0], files[1]];
      await m.remount();
      await Promise.all(first.map((i) => pool.servers[i].pause()));
      let changed: TreeDigest;
      try {
        // Metadata only (blocks are written whole on every server, so new data waits for them):
        // new directory, empty files, a symlink, a rename and an unlink.
        await mkdir(join(m.dir, 'late'));
        for (let i = 0; i < 20; i++) await writeFile(join(m.dir, 'late', `empty-${i}`), '');
        await symlink('../late/empty-0', join(m.dir, 'late', 'link'));
        await rename(join(m.dir, moved), join(m.dir, 'late', 'moved'));
        await unlink(join(m.dir, removed));
        changed = await digestTree(m.dir);
        await m.unmount();
      } finally {
        for (const i of first) pool.servers[i].resume();
      }
      expect(changed.get('./late/moved')).toBe(expected.get(moved));
      expect(changed.has(moved) || changed.has(removed)).toBe(false);
      expect(changed.get('./late/link')).toBe('link ../late/empty-0');
      // Resumed with their old records: a fresh mount (a new client) must not serve them.
      await m.remount();
      expect(digestDiff(changed, await digestTree(m.dir)), `servers ${first.join(',')} resumed with stale records`).toEqual([]);
      await m.unmount();
      const repaired = await fsck(['--repair']);
      expect(repaired.code, JSON.stringify(repaired.report.problems.slice(0, 5))).toBe(0);
      expect(repaired.report.summary.byKind['store-lost-data']).toBe(1);
      expect(repaired.report.summary.metadataCopiesRewritten).toBeGreaterThan(0);
      const again = await fsck([]);
      expect(again.code, JSON.stringify(again.report.problems.slice(0, 5))).toBe(0);
      expect(again.report.summary.byKind['metadata-copies'] ?? 0).toBe(0);
      expect(again.report.summary.byKind['store-lost-data'] ?? 0).toBe(0);
      await Promise.all(second.map((i) => pool.servers[i].stop('SIGKILL')));
      await m.remount();
      expect(digestDiff(changed, await digestTree(m.dir)), `after the repair, servers ${second.join(',')} killed`).toEqual([]);
      await m.unmount();
    },
    SCENARIO_MS,
  );
});

/** The part of `voldfs fsck --json` this file reads. */
interface FsckJson {
  readonly summary: {
    fragmentsRewritten: number;
    metadataCopiesRewritten: number;
    damageLeft: number;
    problems: number;
    byKind: Record<string, number | undefined>;
  };
  readonly problems: readonly unknown[];
}

/**
 * Digests the mounted tree and compares it with `expected`; `minBlockReads` proves the reads
 * reached the pool (not a cache): the running servers must have served at least that many gets.
 */
async function expectTree(
  dir: string,
  expected: TreeDigest,
  when: string,
  pool: MemcachedPool,
  minBlockReads: number,
  hung: readonly number[] = [],
): Promise<void> {
  const before = await getHits(pool, hung);
  const actual = await digestTree(dir);
  expect(digestDiff(expected, actual), when).toEqual([]);
  expect((await getHits(pool, hung)) - before, `${when}: gets served by the pool`).toBeGreaterThanOrEqual(minBlockReads);
}

/** Gets that found their key, summed over the servers of the pool that run and are not `hung`. */
async function getHits(pool: MemcachedPool, hung: readonly number[]): Promise<number> {
  const running = pool.servers.filter((s, i) => s.running && !hung.includes(i));
  const stats = await Promise.all(running.map((s) => s.stats()));
  return stats.reduce((sum, st) => sum + Number(st.get('get_hits')), 0);
}
