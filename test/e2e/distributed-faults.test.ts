// Faults of the distributed stores during a copy through a mount:
// - a Redis Cluster master killed (SIGKILL by PID): its replica takes over
//   (cluster-node-timeout 2 s here);
// - one etcd member of three killed (SIGKILL by PID), the one the adapter talks to first
//   (VOLDFS_HTTP_URLS lists all three).
// Each copy either completes or fails with EIO within a bounded time; the copy goes on past the
// fault, the files that failed are copied again, and then: `voldfs fsck` finds no damage (and
// nothing at all after --repair), and every file, read from a fresh mount, is identical to its
// source, among them every file whose copy had reported success.
// Needs `npm run build`.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServers } from '../helpers/etcd-servers.js';
import { defaultVoldfsCommand, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';
import { run, sleep } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { runFsck } from './crash/fsck.js';
import { copyWithFault, differingFiles, makeSourceTree, recopyFailed, summarizeCopy, type CopyReport, type SourceFile } from './faults/copy-under-fault.js';

const FILES = 240;
const TEST_TIMEOUT_MS = 420_000;

let work = '';
let src = '';
let files: SourceFile[] = [];

beforeAll(async () => {
  work = await makeTempDir('dist-faults');
  src = join(work, 'src');
  files = await makeSourceTree(src, FILES);
});

/** `voldfs fsck --offline --json` (no repair): the damage it finds and the problems it lists. */
async function fsckCheck(env: Record<string, string>): Promise<{ damageLeft: number; problems: number; kinds: string }> {
  const [node, ...cli] = await defaultVoldfsCommand();
  const r = await run(node, [...cli, 'fsck', '--offline', '--json'], { env: { ...process.env, ...env }, timeoutMs: 300_000 });
  let report: { summary: { damageLeft: number; problems: number }; problems: { kind: string; severity: string; path?: string; key?: string }[] };
  try {
    report = JSON.parse(r.stdout) as typeof report;
  } catch {
    throw new Error(`voldfs fsck gave no JSON report (exit ${r.code}): ${(r.stdout + r.stderr).slice(-2000)}`);
  }
  const kinds = report.problems.map((p) => `${p.severity} ${p.kind} ${p.path ?? p.key ?? ''}`).join('; ');
  return { damageLeft: report.summary.damageLeft, problems: report.summary.problems, kinds };
}

/**
 * The checks after the fault, common to both stores: bounded copies failing only with EIO, the
 * failed ones copied again, fsck, and the whole tree read back from a fresh mount.
 */
async function checkAfterFault(label: string, mount: VoldfsMount, env: Record<string, string>, report: CopyReport, boundMs: number): Promise<void> {
  const dest = join(mount.dir, 'copy');
  const { outcomes } = report;
  console.log(`[${label}] fault injected in ${report.faultMs} ms; copies: ${summarizeCopy(outcomes)}; after the fault: ${summarizeCopy(outcomes.filter((o) => o.afterFault))}`);
  expect(outcomes).toHaveLength(files.length);
  for (const o of outcomes) {
    expect(o.ms, `${o.path} took ${o.ms} ms`).toBeLessThan(boundMs);
    if (o.error !== undefined) expect(o.error, `${o.path} failed`).toBe('EIO');
  }
  // The store came back: most of the copies after the fault completed.
  const after = outcomes.filter((o) => o.afterFault);
  expect(after.filter((o) => o.error === undefined).length).toBeGreaterThan(after.length / 2);

  // A copy that failed did so with a log line saying which store call failed and why.
  const errorLines = (await readFile(mount.logFile, 'utf8')).split('\n').filter((l) => /"level":(40|50|60)/.test(l));
  console.log(`[${label}] daemon warnings and errors (${errorLines.length}):\n${errorLines.slice(0, 8).map((l) => l.slice(0, 600)).join('\n')}`);
  if (outcomes.some((o) => o.error !== undefined)) expect(errorLines.length).toBeGreaterThan(0);

  expect(await recopyFailed(src, dest, outcomes)).toEqual([]);
  await mount.unmount();

  const check = await fsckCheck(env);
  console.log(`[${label}] fsck after the fault: ${check.problems} problems, ${check.damageLeft} damage${check.kinds ? `: ${check.kinds}` : ''}`);
  expect(check.damageLeft, check.kinds).toBe(0);
  const fsck = await runFsck(env);
  console.log(`[${label}] fsck --repair then fsck:\n${fsck?.output}`);
  expect(fsck?.problems).toEqual([]);

  await mount.remount();
  const completed = outcomes.filter((o) => o.error === undefined).map((o) => o.path);
  expect(await differingFiles(src, dest, completed)).toEqual([]);
  expect(await differingFiles(src, dest, files.map((f) => f.path))).toEqual([]);
  await mount.unmount();
}

describe('a Redis Cluster master killed during a copy through a mount', () => {
  let servers: RedisServers | undefined;
  let mount: VoldfsMount | undefined;
  beforeAll(async () => {
    servers = await startRedis('cluster', { nodeTimeoutMs: 2000 });
  });
  afterAll(async () => {
    try {
      await mount?.unmount();
    } finally {
      await servers?.stop();
    }
  });

  it('its replica takes over, the copy goes on, fsck is clean and completed files read back identical', async () => {
    if (servers === undefined) throw new Error('the cluster did not start');
    const s = servers;
    const env: Record<string, string> = { ...s.env, VOLDFS_VOLUME: 'faultrc' };
    mount = await mountVoldfs({ env });
    const masters = (await s.nodes()).filter((n) => n.role === 'master');
    const victim = masters[1];
    const replica = (await s.nodes()).find((n) => n.masterId === victim.id);
    if (replica === undefined) throw new Error(`master ${victim.port} has no replica`);

    const report = await copyWithFault(src, join(mount.dir, 'copy'), files, { faultAfter: 0.3, fault: () => s.kill(victim.port) });

    // The replica took over (the cluster is whole again without the dead master).
    let promoted = false;
    for (let i = 0; i < 100 && !promoted; i++) {
      promoted = (await s.nodes(replica.port)).some((n) => n.port === replica.port && n.role === 'master');
      if (!promoted) await sleep(200);
    }
    expect(promoted, `replica ${replica.port} of killed master ${victim.port} was not promoted`).toBe(true);
    // The retry window (VOLDFS_REDIS_RETRY_MS, 30 s for a cluster) plus two command timeouts.
    await checkAfterFault('redis', mount, env, report, 45_000);
  }, TEST_TIMEOUT_MS);
});

describe('an etcd member killed during a copy through a mount', () => {
  let servers: EtcdServers | undefined;
  let mount: VoldfsMount | undefined;
  beforeAll(async () => {
    servers = await startEtcd('cluster');
  });
  afterAll(async () => {
    try {
      await mount?.unmount();
    } finally {
      await servers?.stop();
    }
  });

  it('the adapter fails over to another member, fsck is clean and completed files read back identical', async () => {
    if (servers === undefined) throw new Error('the cluster did not start');
    const s = servers;
    const env: Record<string, string> = { ...s.env, VOLDFS_VOLUME: 'faultetcd' };
    expect(env.VOLDFS_HTTP_URLS.split(',')).toHaveLength(3);
    mount = await mountVoldfs({ env });
    const leader = await s.leader();
    // Member 0 is first in VOLDFS_HTTP_URLS: the one the adapter talks to.
    const report = await copyWithFault(src, join(mount.dir, 'copy'), files, { faultAfter: 0.3, fault: () => s.kill(0) });
    console.log(`[etcd] killed member 0 (the leader was member ${leader}); leader now member ${await s.leader()}`);
    // VOLDFS_HTTP_RETRY_MS (5 s) plus a few request timeouts (5 s each).
    await checkAfterFault('etcd', mount, env, report, 30_000);
  }, TEST_TIMEOUT_MS);
});
