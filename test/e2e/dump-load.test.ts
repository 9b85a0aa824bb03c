// voldfs dump and load moving a volume between stores, piped as an operator would
// (`voldfs dump - | voldfs load -` with each side's VOLDFS_* settings): a tree with what real
// trees rarely hold (sparse files, hard-link groups, symlinks, odd modes, nanosecond mtimes,
// a FIFO, a deep path, a wide directory) copied into LMDB through a mount, moved LMDB -> Redis
// Cluster, then memcached -> LMDB, and each result mounted and compared with the source, owners
// and mtimes included; fsck clean on each target. Needs `npm run build`.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { defaultStoreEnv, findRepoRoot, mountVoldfs } from '../helpers/mount.js';
import { buildFixture } from '../helpers/proof-fixture.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';
import { run } from '../helpers/run.js';
import { compareTrees, snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { runFsck } from './crash/fsck.js';

const TIMEOUT_MS = 600_000;
const SAME = { owner: true, mtime: true, nlink: true, hardLinks: true } as const;

/** `voldfs dump -` on one store piped into `voldfs load -` on another, through sh. */
async function move(from: Record<string, string>, to: Record<string, string>): Promise<string> {
  const cli = join(await findRepoRoot(), 'bin', 'voldfs.js');
  const assign = (env: Record<string, string>) => Object.entries(env).map(([k, v]) => `${k}='${v}'`).join(' ');
  const line = `set -o pipefail; env ${assign(from)} node ${cli} dump - | env ${assign(to)} node ${cli} load -`;
  const r = await run('bash', ['-c', line], { timeoutMs: TIMEOUT_MS });
  expect(r.code, r.stderr).toBe(0);
  return r.stderr;
}

async function mountedTree(env: Record<string, string>): Promise<TreeSnapshot> {
  const mount = await mountVoldfs({ env, mkfs: false });
  try {
    return await snapshotTree(mount.dir);
  } finally {
    await mount.unmount();
  }
}

describe('voldfs dump | voldfs load between stores', () => {
  let redis: RedisServers;
  let memcached: MemcachedPool;
  let source: string;
  let expected: TreeSnapshot;
  let lmdb: Record<string, string>;

  beforeAll(async () => {
    source = join(await makeTempDir('dump-source'), 'tree');
    await buildFixture(source, { sources: ['/usr/share/doc/bash'], bigMiB: 4, wideFiles: 300 });
    expected = await snapshotTree(source);
    lmdb = { ...defaultStoreEnv(await makeTempDir('dump-lmdb')), VOLDFS_VOLUME: 'moved' };
    const mount = await mountVoldfs({ env: lmdb });
    try {
      const cp = await run('cp', ['-a', `${source}/.`, mount.dir], { timeoutMs: TIMEOUT_MS });
      expect(cp.code, cp.stderr).toBe(0);
    } finally {
      await mount.unmount();
    }
    [redis, memcached] = await Promise.all([startRedis('cluster'), startMemcachedServers(3, { memoryMb: 1024 })]);
  }, TIMEOUT_MS);
  afterAll(async () => {
    await Promise.all([redis?.stop(), memcached?.stop()]);
  });

  it('moves a volume from LMDB to a Redis Cluster, and from memcached back to LMDB, with nothing lost', async () => {
    const onRedis = { ...redis.env, VOLDFS_VOLUME: 'moved' };
    const said = await move(lmdb, onRedis);
    expect(said).toMatch(/loaded volume moved: \d+ entries, [\d.]+ MB of data, every file checked/);
    expect(compareTrees(expected, await mountedTree(onRedis), SAME)).toEqual([]);

    const onMemcached = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: memcached.serversValue, VOLDFS_VOLUME: 'moved' };
    await move(onRedis, onMemcached);
    const back = { ...defaultStoreEnv(await makeTempDir('dump-lmdb-back')), VOLDFS_VOLUME: 'moved' };
    await move(onMemcached, back);
    expect(compareTrees(expected, await mountedTree(back), SAME)).toEqual([]);

    for (const env of [onRedis, back]) {
      const fsck = await runFsck(env);
      expect(fsck?.problems).toEqual([]);
    }
  }, TIMEOUT_MS);

  it('refuses to load into a volume that has files, and a dump that was cut short', async () => {
    const cli = join(await findRepoRoot(), 'bin', 'voldfs.js');
    const dumpFile = join(await makeTempDir('dump-file'), 'volume.dump');
    const dumped = await run('node', [cli, 'dump', dumpFile], { env: { ...process.env, ...lmdb } });
    expect(dumped.code, dumped.stderr).toBe(0);
    const full = await run('node', [cli, 'load', dumpFile], { env: { ...process.env, ...lmdb } });
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(/load needs an empty volume/);
    const cut = await run('bash', ['-c', `head -c 100000 ${dumpFile} | node ${cli} load -`], {
      env: { ...process.env, ...defaultStoreEnv(await makeTempDir('dump-cut')) },
    });
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(/the dump is cut short/);
  }, TIMEOUT_MS);
});
