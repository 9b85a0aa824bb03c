// scripts/copy-remount-checksum through a real mount on the distributed stores: a Redis Cluster
// (3 masters + 3 replicas) and a 3-member etcd cluster. The script reads the store from the
// VOLDFS_* variables, as `voldfs mount` does; the tree is small (60 files of up to 300 KB plus
// the generated extras with a 4 MiB large file and a wide directory of 300 files) so that each
// backend takes a minute or two. Afterwards the
// records of the volume must be on every Redis master (the volume is not pinned to one slot),
// on every etcd member, and fsck must find the volume clean. Needs `npm run build`.
// Bigger trees: run the script by hand (docs/redis.md, docs/kv-http.md).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServers } from '../helpers/etcd-servers.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';
import type { RunResult } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { expectFsckClean, makeProofSource, runProof } from './proof-run.js';

const SCRIPT_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = SCRIPT_TIMEOUT_MS + 120_000;

function proof(env: Record<string, string>, source: string): Promise<RunResult> {
  return runProof({ env, source, store: '(redis|http)', timeoutMs: SCRIPT_TIMEOUT_MS, label: String(env.VOLDFS_DB) });
}

let source = '';

beforeAll(async () => {
  source = join(await makeTempDir('dist-proof-src'), 'src');
  await mkdir(source);
  await makeProofSource(source);
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

    await expectFsckClean(env, 'redis');
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

    await expectFsckClean(env, 'etcd');
  }, TEST_TIMEOUT_MS);
});
