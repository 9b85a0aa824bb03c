// voldfs dump and load moving a volume between stores, piped as an operator would
// (`voldfs dump - | voldfs load -` with each side's VOLDFS_* settings): a tree with what real
// trees rarely hold (sparse files, hard-link groups, symlinks, odd modes, nanosecond mtimes,
// a FIFO, a deep path, a wide directory) copied into LMDB through a mount, moved LMDB -> Redis
// Cluster, then memcached -> LMDB, and each result mounted and compared with the source, owners
// and mtimes included; fsck clean on each target. An encrypted volume on LMDB dumped as
// ciphertext (no byte of a known file in it) loads into memcached with its passphrase, and
// with a wrong one is refused before the target store is touched. Needs `npm run build`.
import { existsSync } from 'node:fs';
import { lstat, readFile, readdir, writeFile } from 'node:fs/promises';
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

  it('dumps an encrypted volume as ciphertext and loads it into memcached with its passphrase, and no other', async () => {
    const cli = join(await findRepoRoot(), 'bin', 'voldfs.js');
    const work = await makeTempDir('dump-crypt');
    const passFile = join(work, 'passphrase');
    await writeFile(passFile, 'dump test passphrase\n', { mode: 0o600 });
    const wrongFile = join(work, 'wrong');
    await writeFile(wrongFile, 'not the passphrase\n', { mode: 0o600 });
    const encrypted = { ...defaultStoreEnv(join(work, 'lmdb')), VOLDFS_VOLUME: 'sealed', VOLDFS_TRANSLATORS: 'crypt', VOLDFS_PASSPHRASE_FILE: passFile };
    const mount = await mountVoldfs({ env: encrypted });
    try {
      const cp = await run('cp', ['-a', `${source}/.`, mount.dir], { timeoutMs: TIMEOUT_MS });
      expect(cp.code, cp.stderr).toBe(0);
    } finally {
      await mount.unmount();
    }
    const voldfs = (args: string[], env: Record<string, string>) => run('node', [cli, ...args], { env: { ...process.env, ...env }, timeoutMs: TIMEOUT_MS });

    const sealedDump = join(work, 'sealed.dump');
    const dumped = await voldfs(['dump', '--ciphertext', sealedDump], encrypted);
    expect(dumped.code, dumped.stderr).toBe(0);
    expect(dumped.stderr).toMatch(/dumped volume sealed \(ciphertext\)/);
    const plainDump = join(work, 'plain.dump');
    const plain = await voldfs(['dump', '--plaintext', plainDump], encrypted);
    expect(plain.code, plain.stderr).toBe(0);
    // 64 bytes from the middle of the tree's largest file with data there (not a hole) are in
    // the plaintext dump, and not in the ciphertext one.
    const files = (await readdir(source, { recursive: true })).map((f) => join(source, f));
    const sizes = await Promise.all(files.map(async (f) => ((await lstat(f)).isFile() ? (await lstat(f)).size : 0)));
    let needle = Buffer.alloc(0);
    for (const i of sizes.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a])) {
      const content = await readFile(files[i]);
      needle = content.subarray(content.length >> 1, (content.length >> 1) + 64);
      if (needle.length === 64 && needle.some((b) => b !== 0)) break;
    }
    expect(needle.some((b) => b !== 0)).toBe(true);
    expect((await readFile(plainDump)).includes(needle)).toBe(true);
    const sealedBytes = await readFile(sealedDump);
    expect(sealedBytes.includes(needle)).toBe(false);
    expect(sealedBytes.includes(Buffer.from('dump test passphrase'))).toBe(false);

    // A wrong passphrase: refused before the target store is opened (its LMDB directory never made).
    const untouched: Record<string, string> = { ...defaultStoreEnv(join(work, 'never-made')), VOLDFS_VOLUME: 'sealed', VOLDFS_PASSPHRASE_FILE: wrongFile };
    const wrong = await voldfs(['load', sealedDump], untouched);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/the passphrase does not unlock this volume: check VOLDFS_PASSPHRASE_FILE/);
    expect(existsSync(untouched.VOLDFS_LMDB_PATH)).toBe(false);
    // Not into a volume without crypt.
    const plainTarget = await voldfs(['load', sealedDump], { ...defaultStoreEnv(join(work, 'plain-target')), VOLDFS_VOLUME: 'sealed', VOLDFS_TRANSLATORS: 'none', VOLDFS_PASSPHRASE_FILE: passFile });
    expect(plainTarget.code).toBe(2);
    expect(plainTarget.stderr).toMatch(/this dump is ciphertext, and VOLDFS_TRANSLATORS=none has no crypt: load it into an encrypted volume/);

    const onMemcached = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: memcached.serversValue, VOLDFS_VOLUME: 'sealed', VOLDFS_PASSPHRASE_FILE: passFile };
    const loaded = await run('bash', ['-c', `node ${cli} load - < ${sealedDump}`], { env: { ...process.env, ...onMemcached }, timeoutMs: TIMEOUT_MS });
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stderr).toMatch(/loaded volume sealed from ciphertext, every frame authenticated: \d+ entries/);
    const status = await voldfs(['status', '--json', '--no-usage'], onMemcached);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { volume: { translators: string } }).volume.translators).toBe('crypt');
    expect(compareTrees(expected, await mountedTree(onMemcached), SAME)).toEqual([]);
    expect((await runFsck(onMemcached))?.problems).toEqual([]);
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
