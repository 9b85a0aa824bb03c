// scripts/copy-remount-checksum through a real mount on the distributed stores: a Redis Cluster
// (3 masters + 3 replicas) and a 3-member etcd cluster. The script reads the store from the
// VOLDFS_* variables, as `voldfs mount` does; the tree is small (60 files of up to 300 KB plus
// the generated extras with a 4 MiB large file and a wide directory of 300 files) so that each
// backend takes a minute or two. Afterwards the
// records of the volume must be on every Redis master (the volume is not pinned to one slot),
// on every etcd member, and fsck must find the volume clean. Needs `npm run build`.
// Bigger trees: run the script by hand (docs/redis.md, docs/kv-http.md).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServers } from '../helpers/etcd-servers.js';
import { findRepoRoot } from '../helpers/mount.js';
import { patternBytes } from '../helpers/pattern.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';
import { run, type RunResult } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { runFsck } from './crash/fsck.js';

const SCRIPT_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = SCRIPT_TIMEOUT_MS + 120_000;

/** A small real-looking source tree: nested directories, text and binary files of mixed sizes. */
async function makeSource(dir: string): Promise<void> {
  for (let d = 0; d < 4; d++) {
    const sub = join(dir, `dir-${d}`, 'nested');
    await mkdir(sub, { recursive: true });
    for (let f = 0; f < 15; f++) {
      const size = (f * 7919 + d * 104_729) % 300_000;
      await writeFile(join(sub, `file-${f}.bin`), patternBytes(size, d * 100 + f + 1));
      await writeFile(join(dir, `dir-${d}`, `note-${f}.txt`), `directory ${d}, note ${f}\n`.repeat(f + 1));
    }
  }
}

async function proof(env: Record<string, string>, source: string): Promise<RunResult> {
  const script = join(await findRepoRoot(), 'scripts', 'copy-remount-checksum');
  const r = await run(script, ['--source', source, '--big-mib', '4', '--wide-files', '300'], { env: { ...process.env, ...env }, timeoutMs: SCRIPT_TIMEOUT_MS });
  console.log(`[proof ${env.VOLDFS_DB}]\n${r.stdout}`);
  expect(r.timedOut, 'copy-remount-checksum timed out').toBe(false);
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-3000)}`).toBe(0);
  expect(r.stdout).toMatch(/^differences {2}0$/m);
  expect(r.stdout).toMatch(/^RESULT identical$/m);
  // The copy really went through voldfs, not into a plain directory.
  expect(r.stdout).toMatch(/^target +voldfs at .* \(store (redis|http)\)$/m);
  return r;
}

async function expectFsckClean(env: Record<string, string>): Promise<void> {
  const fsck = await runFsck(env);
  expect(fsck, 'this build has no voldfs fsck').toBeDefined();
  console.log(`[fsck ${env.VOLDFS_DB}]\n${fsck?.output}`);
  expect(fsck?.problems).toEqual([]);
}

let source = '';

beforeAll(async () => {
  source = join(await makeTempDir('dist-proof-src'), 'src');
  await mkdir(source);
  await makeSource(source);
});

describe('copy-remount-checksum on a Redis Cluster (3 masters + 3 replicas)', () => {
  let servers: RedisServers | undefined;
  beforeAll(async () => {
    servers = await startRedis('cluster');
  });
  afterAll(async () => {
    await servers?.stop();
  });

  it('copies, remounts and finds no difference; the volume is on every master; fsck is clean', async () => {
    if (servers === undefined) throw new Error('the cluster did not start');
    const env = { ...servers.env, VOLDFS_VOLUME: 'proofrc' };
    const r = await proof(env, source);
    const entries = Number(/^entries +(\d+)/m.exec(r.stdout)?.[1]);

    const masters = (await servers.nodes()).filter((n) => n.role === 'master' && !n.failed);
    expect(masters).toHaveLength(3);
    const perMaster: number[] = [];
    for (const m of masters) {
      const keys = (await servers.cli(m.port, '--scan', '--pattern', 'proofrc:*')).split('\n').filter(Boolean);
      perMaster.push(keys.length);
      // Inodes, directory nodes and chunk maps alike are spread, not only blocks.
      for (const kind of ['i', 'd', 'c']) expect(keys.some((k) => k.startsWith(`proofrc:${kind}:`)), `master ${m.port} holds no ${kind}: record`).toBe(true);
    }
    console.log(`[proof redis] ${entries} entries; keys per master ${perMaster.join(', ')}`);
    const total = perMaster.reduce((a, b) => a + b, 0);
    // Slots are split evenly over three masters, so each holds about a third; a sixth is far
    // from that and far from zero.
    for (const n of perMaster) expect(n).toBeGreaterThan(total / 6);
    expect(total).toBeGreaterThan(entries);

    await expectFsckClean(env);
  }, TEST_TIMEOUT_MS);
});

describe('copy-remount-checksum on a 3-member etcd cluster', () => {
  let servers: EtcdServers | undefined;
  beforeAll(async () => {
    servers = await startEtcd('cluster');
  });
  afterAll(async () => {
    await servers?.stop();
  });

  it('copies, remounts and finds no difference; every member holds the volume; fsck is clean', async () => {
    if (servers === undefined) throw new Error('the cluster did not start');
    const env: Record<string, string> = { ...servers.env, VOLDFS_VOLUME: 'proofetcd' };
    expect(env.VOLDFS_HTTP_URLS?.split(',')).toHaveLength(3);
    const r = await proof(env, source);
    const entries = Number(/^entries +(\d+)/m.exec(r.stdout)?.[1]);

    // Each member answers from its own copy (serializable reads are not forwarded to the leader).
    const counts: number[] = [];
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    for (const url of servers.urls) {
      const res = await fetch(`${url}/v3/kv/range`, {
        method: 'POST',
        body: JSON.stringify({ key: b64('proofetcd:'), range_end: b64('proofetcd;'), count_only: true, serializable: true }),
      });
      counts.push(Number(((await res.json()) as { count?: string }).count ?? 0));
    }
    console.log(`[proof etcd] ${entries} entries; keys per member ${counts.join(', ')}`);
    for (const n of counts) expect(n).toBeGreaterThan(entries);

    await expectFsckClean(env);
  }, TEST_TIMEOUT_MS);
});
