/**
 * Erasure coding 4+2 on a pool of six memcached servers: any two servers may go, every byte
 * still reads back; servers that come back empty are refilled by repair, byte for byte; then
 * two other servers may go.
 *
 * Each scenario: write, stop a pair of servers, read everything (identical), start them again
 * EMPTY, repair, check that every fragment is back (each server's item count, the exact
 * fragment keys, and a second check or fsck finding no damage), stop two OTHER servers, read
 * everything again. One pair is fixed, the other drawn at random (printed).
 *
 * Metadata is not erasure-coded: with servers down, the inode, directory and chunk-map records
 * placed on them are unreachable, and the product's `voldfs mount` keeps metadata and blocks
 * in one store (measured: with 2 of 6 servers down, 0 of 40 files of a mounted crypt+erasure
 * volume could be read, and a new mount is refused because the memcached backend connects to
 * every server at start). So:
 *  - the first describe runs the scenario on the block stack itself (crypt+erasure and erasure
 *    alone), repairing with BlockStore.check, and also shows that a third server down gives a
 *    store error, never wrong bytes;
 *  - the second mounts a real volume (FUSE, in this process: test/e2e/translators/
 *    split-volume-mount.ts) whose metadata lives on a seventh, separate memcached server and
 *    whose blocks live on the pool of six, reads files through the kernel with child
 *    processes, and repairs with fsckVolume (what `voldfs fsck --repair` runs) on the two
 *    stores. Fresh mounts are taken only while every server runs, for the reason above;
 *  - the third is the product as it is, through the CLI only (mkfs, mount, `voldfs fsck
 *    --repair`): metadata and blocks on the one pool, and a server's loss simulated by deleting
 *    the block records it holds (its metadata records stay), which the CLI can survive.
 * Needs `npm run build` (the third describe runs the CLI from dist/).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreTimeout, StoreUnavailable } from '../../src/backends/errors.js';
import type { KvStore } from '../../src/backends/kv-store.js';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import { withAtomicCommit } from '../../src/cas/intent-store.js';
import { fsckVolume } from '../../src/inode/fsck/index.js';
import { unlock, type OpenedVolume, type VolumeStores } from '../../src/inode/volume.js';
import type { BlockContext, BlockRef, BlockStore } from '../../src/translators/block-store.js';
import { createKeyring, type KdfSettings } from '../../src/translators/crypt/keyring.js';
import { RONOMON_CODEC_ID } from '../../src/translators/erasure/codec.js';
import { buildBlockStack, type TranslatorSettings } from '../../src/translators/stack.js';
import { silentLog } from '../helpers/intent-fixture.js';
import { MemcachedServer, startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { defaultVoldfsCommand, mountVoldfs } from '../helpers/mount.js';
import { run } from '../helpers/run.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { checkBlocks, fragmentKeys, fragmentsPerDomain, referencedBlocks } from './translators/block-census.js';
import { buildSmallTree } from './translators/small-tree.js';
import { mountSplitVolume, SPLIT_PREFIX, type SplitMount } from './translators/split-volume-mount.js';
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

describe('erasure 4+2 on six memcached servers: a mounted volume, metadata on a seventh server', () => {
  const scenarios: Array<[string, () => { first: Pair; second: Pair }]> = [
    ['servers 0,1 then 4,5', () => ({ first: [0, 1], second: [4, 5] })],
    ['a random pair then two others', randomPairs],
  ];
  for (const [name, pairs] of scenarios) {
    it(
      `crypt+erasure 4+2, ${name}: every file reads back identical through loss, empty restart, repair and a second loss`,
      async () => {
        const { first, second } = pairs();
        console.info(`mounted volume: losing servers ${first.join(',')} then ${second.join(',')}`);
        const pool = await startPool();
        const metaServer = await MemcachedServer.start({ memoryMb: 64 });
        cleanups.push(() => metaServer.dispose());
        const work = await makeTempDir('erasure-servers');
        cleanups.push(() => removeTempDir(work));
        const source = join(work, 'source');
        await buildSmallTree(source, { files: 80, bigBytes: 3 * 1024 * 1024 + 5 });
        const expected = await digestTree(source);

        const dir = join(work, 'mnt');
        await mkdir(dir);
        const mountOpts = {
          dir,
          openMeta: () => memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: metaServer.address })),
          openData: () => openPool(pool),
          translators: { crypt: true, erasure: { k: K, m: M } },
          passphrase: PASSPHRASE,
          kdf: CHEAP_KDF,
        };
        const mountFresh = async (): Promise<SplitMount> => {
          const m = await mountSplitVolume(mountOpts);
          cleanups.push(() => m.unmount());
          return m;
        };

        let mount = await mountFresh();
        const cp = await run('cp', ['-a', `${source}/.`, dir], { timeoutMs: 240_000 });
        expect(cp.code, cp.stderr).toBe(0);
        await mount.unmount();

        // Ground truth: the fragments the chunk maps reference, per server.
        const inspect = await openInspector(metaServer, pool);
        cleanups.push(() => inspect.close());
        const referenced = await referencedBlocks(inspect.volume);
        expect(referenced.length).toBeGreaterThan(80);
        const perServer = fragmentsPerDomain(inspect.volume, inspect.data, referenced);
        const baseline = await itemCounts(pool);
        for (let i = 0; i < SERVERS; i++) expect(baseline[i], `server ${i}`).toBeGreaterThanOrEqual(perServer[i]);

        mount = await mountFresh();
        await stopServers(pool, first);
        await expectTree(dir, expected, `servers ${first.join(',')} down`, pool, referenced.length);
        await mount.unmount();

        await restartEmpty(pool, first);
        mount = await mountFresh();
        await expectTree(dir, expected, `fresh mount, servers ${first.join(',')} back empty`, pool, referenced.length);
        await mount.unmount();

        // fsck --repair, as `voldfs fsck --repair` runs it, but on the volume's two stores.
        const repair = await openInspector(metaServer, pool);
        cleanups.push(() => repair.close());
        const lostFragments = perServer[first[0]] + perServer[first[1]];
        const report = await fsckVolume(repair.stores, { repair: true });
        expect(report.exitCode, JSON.stringify(report.problems.slice(0, 3))).toBe(0);
        expect(report.summary.damageLeft).toBe(0);
        expect(report.summary.blocksChecked).toBe(referenced.length);
        expect(report.summary.fragmentsRewritten).toBe(lostFragments);
        expect(report.summary.byKind['block-damaged']).toBe(
          referenced.filter(({ ref }) => fragmentKeys(repair.volume, ref).some((key) => first.includes(repair.data.capabilities.placement.domainOf(key)))).length,
        );
        const again = await fsckVolume(repair.stores, {});
        expect(again.exitCode).toBe(0);
        expect(again.summary.byKind['block-damaged'] ?? 0, 'a second fsck finds damaged blocks').toBe(0);
        expect(again.summary.fragmentsRewritten).toBe(0);
        const present = await repair.data.getMany(referenced.flatMap(({ ref }) => fragmentKeys(repair.volume, ref)));
        expect(present.filter((p) => p === undefined).length, 'fragments still missing').toBe(0);
        const after = await itemCounts(pool);
        for (const i of first) expect(after[i], `items on restarted server ${i}`).toBe(perServer[i]);
        expect(await checkBlocks(repair.volume, referenced, false)).toEqual({
          blocks: referenced.length,
          unreadable: 0,
          damaged: 0,
          repaired: 0,
        });

        mount = await mountFresh();
        await stopServers(pool, second);
        await expectTree(dir, expected, `servers ${second.join(',')} down after the repair`, pool, referenced.length);

        await mount.unmount();
      },
      SCENARIO_MS,
    );
  }
});

describe('erasure 4+2 through the CLI: metadata and blocks on one pool of six, `voldfs fsck --repair`', () => {
  it(
    'crypt+erasure 4+2: the block records of two servers lost, then rewritten by fsck --repair, then two others lost: files identical throughout',
    async () => {
      const { first, second } = randomPairs();
      console.info(`CLI: block records of servers ${first.join(',')} lost, then ${second.join(',')}`);
      const pool = await startPool();
      const work = await makeTempDir('erasure-cli');
      cleanups.push(() => removeTempDir(work));
      const source = join(work, 'source');
      await buildSmallTree(source, { files: 80, bigBytes: 3 * 1024 * 1024 + 5 });
      const expected = await digestTree(source);
      const passFile = join(work, 'passphrase');
      await writeFile(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
      const env = {
        VOLDFS_DB: 'mc',
        VOLDFS_MC_SERVERS: pool.serversValue,
        VOLDFS_TRANSLATORS: 'crypt,erasure:4+2',
        VOLDFS_PASSPHRASE_FILE: passFile,
        VOLDFS_STATE_DIR: join(work, 'state'),
        VOLDFS_LOG_LEVEL: 'warn',
      };
      const m = await mountVoldfs({ env, mountpoint: join(work, 'mnt') });
      cleanups.push(() => m.unmount());
      const cp = await run('cp', ['-a', `${source}/.`, m.dir], { timeoutMs: 240_000 });
      expect(cp.code, cp.stderr).toBe(0);
      await m.unmount();

      const raw = await openPool(pool);
      cleanups.push(() => raw.close());
      const blocksPerServer = async (): Promise<string[][]> => {
        const out: string[][] = Array.from({ length: SERVERS }, () => []);
        for await (const key of raw.scan?.('voldfs:b:') ?? []) out[raw.capabilities.placement.domainOf(key)].push(key);
        return out;
      };
      /** What a server restarted empty loses, minus the metadata records the product cannot yet lose. */
      const loseBlocks = async (pair: Pair): Promise<number> => {
        const keys = (await blocksPerServer()).filter((_k, i) => pair.includes(i)).flat();
        for (const key of keys) expect(await raw.delete(key), key).toBe(true);
        return keys.length;
      };
      const before = (await blocksPerServer()).map((keys) => keys.length);
      expect(before.every((n) => n > 0), before.join(',')).toBe(true);

      const lost = await loseBlocks(first);
      expect(lost).toBe(before[first[0]] + before[first[1]]);
      await m.remount();
      await expectTree(m.dir, expected, `block records of servers ${first.join(',')} lost`, pool, 100);
      await m.unmount();

      const fsck = async (args: string[]): Promise<{ code: number | null; report: FsckJson }> => {
        const [cmd, ...pre] = await defaultVoldfsCommand();
        const r = await run(cmd, [...pre, 'fsck', '--json', ...args], { env: { ...process.env, ...env }, timeoutMs: 120_000 });
        if (!r.stdout.trim().startsWith('{')) throw new Error(`voldfs fsck ${args.join(' ')} printed no report (exit ${r.code}): ${r.stderr.slice(-2000)}`);
        return { code: r.code, report: JSON.parse(r.stdout) as FsckJson };
      };
      const repaired = await fsck(['--repair']);
      expect(repaired.code, JSON.stringify(repaired.report.problems.slice(0, 3))).toBe(0);
      expect(repaired.report.summary.fragmentsRewritten).toBe(lost);
      expect(repaired.report.summary.damageLeft).toBe(0);
      expect(repaired.report.summary.byKind['block-damaged']).toBeGreaterThan(0);
      const again = await fsck([]);
      expect(again.code).toBe(0);
      expect(again.report.summary.byKind['block-damaged'] ?? 0).toBe(0);
      expect(again.report.summary.fragmentsRewritten).toBe(0);
      expect((await blocksPerServer()).map((keys) => keys.length)).toEqual(before);

      await loseBlocks(second);
      await m.remount();
      await expectTree(m.dir, expected, `block records of servers ${second.join(',')} lost after the repair`, pool, 100);
      await m.unmount();
    },
    SCENARIO_MS,
  );
});

/** The part of `voldfs fsck --json` this file reads. */
interface FsckJson {
  readonly summary: { fragmentsRewritten: number; damageLeft: number; byKind: Record<string, number | undefined> };
  readonly problems: readonly unknown[];
}

/**
 * Digests the mounted tree and compares it with `expected`; `minBlockReads` proves the reads
 * reached the pool (not a cache): the running servers must have served at least that many gets.
 */
async function expectTree(dir: string, expected: TreeDigest, when: string, pool: MemcachedPool, minBlockReads: number): Promise<void> {
  const before = await getHits(pool);
  const actual = await digestTree(dir);
  expect(digestDiff(expected, actual), when).toEqual([]);
  expect((await getHits(pool)) - before, `${when}: gets served by the pool`).toBeGreaterThanOrEqual(minBlockReads);
}

/** Gets that found their key, summed over the running servers of the pool. */
async function getHits(pool: MemcachedPool): Promise<number> {
  const running = pool.servers.filter((s) => s.running);
  const stats = await Promise.all(running.map((s) => s.stats()));
  return stats.reduce((sum, st) => sum + Number(st.get('get_hits')), 0);
}

interface Inspector {
  readonly volume: OpenedVolume;
  readonly data: KvStore;
  /** The volume's stores as fsck takes them. */
  readonly stores: VolumeStores;
  close(): Promise<void>;
}

/** The volume opened directly (no mount) with its translators, from its two stores. */
async function openInspector(metaServer: MemcachedServer, pool: MemcachedPool): Promise<Inspector> {
  const meta = await memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: metaServer.address }));
  const data = await openPool(pool);
  const stores: VolumeStores = {
    store: withAtomicCommit(meta, { log: silentLog }),
    dataStore: data,
    prefix: SPLIT_PREFIX,
    passphrase: async () => PASSPHRASE,
  };
  const volume = await unlock(stores);
  if (!volume) throw new Error('no volume on the metadata server');
  return {
    volume,
    data,
    stores,
    close: async () => {
      await meta.close();
      await data.close();
    },
  };
}
