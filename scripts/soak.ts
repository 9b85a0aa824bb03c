/**
 * soak: two mounts of one volume under a mixed workload for a given time, with the daemons'
 * memory and descriptors sampled, then fsck and a verdict. The workload, in three loops:
 * - untar: a tarball of part of /usr/share/doc extracted on mount A, every file compared with
 *   a local extraction, then `rm -rf`;
 * - fsx: random sequences of file operations on mount B and on a local directory, results and
 *   trees compared after every step (test/e2e/fsx);
 * - cross: a file written on one mount, read back on the other (close-to-open), renamed there,
 *   read again on the first, unlinked; every tenth one of several MiB.
 * The verdict fails on any wrong answer, a daemon that died, fsck damage, memory past the
 * ceiling, memory still growing in the last quarter of the run, or descriptors that leak.
 *
 * Run through the wrapper: scripts/soak --help
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, readdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { runFsck } from '../test/e2e/crash/fsck.js';
import { opArb } from '../test/e2e/fsx/ops.js';
import { runSequence } from '../test/e2e/fsx/runner.js';
import { isStressStore, startStressStore, STRESS_STORES, type RunningStressStore } from '../test/e2e/stress/stores.js';
import { mountVoldfs, type VoldfsMount } from '../test/helpers/mount.js';
import { compareTrees, snapshotTree } from '../test/helpers/tree-snapshot.js';
import { makeTempDir } from '../test/helpers/temp-dir.js';

const exec = promisify(execFile);

const USAGE = `usage: scripts/soak [options]
  --store S            ${STRESS_STORES.join(', ')} (default memcached): servers started on
                       127.0.0.1, free ports, stopped by PID afterwards
  --minutes N          how long the workload runs (default 30)
  --sample-seconds N   how often memory and descriptors are sampled (default 10)
  --max-rss-mb N       the memory ceiling a daemon must stay under (default 1024)
  --tree DIR           what the untar loop extracts (default /usr/share/doc, its first 1,500 files)
  --out FILE           where the samples go, as CSV (default: soak-samples.csv in the run's temp dir)
  -h, --help`;

interface Sample {
  readonly seconds: number;
  readonly rssMb: number[];
  readonly fds: number[];
  readonly ops: Record<string, number>;
}

const problems: string[] = [];
const ops: Record<string, number> = { untar: 0, fsx: 0, cross: 0 };

function wholeNumber(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    console.error(`soak: --${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(text)}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

/** The daemon's resident memory (MiB) and open descriptors, from /proc; undefined once it is gone. */
async function measure(pid: number): Promise<{ rssMb: number; fds: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    const fds = (await readdir(`/proc/${pid}/fd`)).length;
    return { rssMb: rssKb / 1024, fds };
  } catch {
    return undefined;
  }
}

async function daemonPid(mount: VoldfsMount): Promise<number> {
  const pid = Number((await readFile(mount.logFile.replace(/\.log$/, '.pid'), 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no daemon pid for ${mount.dir}`);
  return pid;
}

/** Runs `body` again and again until `until`, recording the first failure of each kind. */
async function loop(name: string, until: number, body: (round: number) => Promise<void>): Promise<void> {
  for (let round = 0; Date.now() < until; round++) {
    try {
      await body(round);
      ops[name]++;
    } catch (err) {
      problems.push(`${name} round ${round}: ${(err as Error).message.slice(0, 2000)}`);
      return;
    }
  }
}

async function makeTarball(work: string, tree: string): Promise<{ tarball: string; reference: string }> {
  const { stdout } = await exec('bash', ['-c', `cd "${tree}" && find . -type f | sort | head -n 1500`], { maxBuffer: 64 << 20 });
  const list = join(work, 'tar-list');
  await writeFile(list, stdout);
  const tarball = join(work, 'tree.tar');
  await exec('tar', ['-cf', tarball, '-C', tree, '-T', list]);
  const reference = join(work, 'tree-reference');
  await mkdir(reference);
  await exec('tar', ['-xf', tarball, '-C', reference]);
  return { tarball, reference };
}

const pattern = (seed: number, bytes: number): Buffer => {
  const out = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      store: { type: 'string' },
      minutes: { type: 'string' },
      'sample-seconds': { type: 'string' },
      'max-rss-mb': { type: 'string' },
      tree: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const store = values.store ?? 'memcached';
  if (!isStressStore(store)) {
    console.error(`soak: --store must be one of ${STRESS_STORES.join(', ')}, got ${JSON.stringify(store)}\n${USAGE}`);
    return 2;
  }
  const minutes = wholeNumber('minutes', values.minutes, 30, 24 * 60);
  const sampleSeconds = wholeNumber('sample-seconds', values['sample-seconds'], 10, 3600);
  const maxRssMb = wholeNumber('max-rss-mb', values['max-rss-mb'], 1024, 1 << 20);
  const work = await makeTempDir('soak');
  const out = values.out ?? join(work, 'soak-samples.csv');
  let servers: RunningStressStore | undefined;
  const mounts: VoldfsMount[] = [];
  const samples: Sample[] = [];
  try {
    const { tarball, reference } = await makeTarball(work, values.tree ?? '/usr/share/doc');
    servers = await startStressStore(store, {});
    const env = { ...servers.env, VOLDFS_VOLUME: 'soak', VOLDFS_STATE_DIR: join(work, 'state') };
    mounts.push(await mountVoldfs({ env, mkfs: true, mountpoint: join(work, 'a') }));
    mounts.push(await mountVoldfs({ env, mkfs: false, mountpoint: join(work, 'b') }));
    const [a, b] = mounts;
    const pids = [await daemonPid(a), await daemonPid(b)];
    await mkdir(join(a.dir, 'untar'));
    await mkdir(join(a.dir, 'cross'));
    await mkdir(join(b.dir, 'fsx'));
    const fsxReference = join(work, 'fsx-reference');
    await mkdir(fsxReference);
    await writeFile(out, 'seconds,rss_mb_a,rss_mb_b,fds_a,fds_b,untar,fsx,cross\n');
    const started = Date.now();
    const until = started + minutes * 60_000;
    console.log(`soak: ${servers.description}, mounts ${a.dir} (pid ${pids[0]}) and ${b.dir} (pid ${pids[1]}), ${minutes} min; samples in ${out}`);

    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const seen = await Promise.all(pids.map(measure));
        const seconds = Math.round((Date.now() - started) / 1000);
        if (seen.some((s) => s === undefined)) {
          problems.push(`a daemon died after ${seconds} s: ${a.logFile}, ${b.logFile}`);
          return;
        }
        const sample = { seconds, rssMb: seen.map((s) => s!.rssMb), fds: seen.map((s) => s!.fds), ops: { ...ops } };
        samples.push(sample);
        const line = [seconds, ...sample.rssMb.map((m) => m.toFixed(1)), ...sample.fds, ops.untar, ops.fsx, ops.cross].join(',');
        await appendFile(out, `${line}\n`);
        console.log(`soak: ${seconds} s  rss ${sample.rssMb.map((m) => `${m.toFixed(0)} MB`).join(' / ')}  fds ${sample.fds.join(' / ')}  rounds ${JSON.stringify(ops)}`);
        await new Promise((r) => setTimeout(r, sampleSeconds * 1000));
      }
    })();

    const expected = await snapshotTree(reference);
    await Promise.all([
      loop('untar', until, async (round) => {
        const dir = join(a.dir, 'untar', `r${round}`);
        await mkdir(dir);
        await exec('tar', ['-xf', tarball, '-C', dir], { maxBuffer: 16 << 20 });
        const diffs = compareTrees(expected, await snapshotTree(dir), { mtime: false, owner: false });
        if (diffs.length > 0) throw new Error(`the extracted tree differs from the local one:\n${diffs.slice(0, 20).join('\n')}`);
        await exec('rm', ['-rf', dir]);
      }),
      loop('fsx', until, async (round) => {
        const [sequence] = fc.sample(fc.array(opArb, { minLength: 20, maxLength: 80 }), { numRuns: 1, seed: round * 7919 + 1 });
        const name = `s${round}`;
        await runSequence(sequence, { root: fsxReference }, { root: join(b.dir, 'fsx') }, name);
        await rm(join(fsxReference, name), { recursive: true, force: true });
        await rm(join(b.dir, 'fsx', name), { recursive: true, force: true });
      }),
      loop('cross', until, async (round) => {
        const bytes = round % 10 === 9 ? 5 << 20 : 1 + ((round * 2654435761) % 65536);
        const data = pattern(round + 1, bytes + ((4 - (bytes % 4)) % 4)).subarray(0, bytes);
        const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
        const name = `f${round}`;
        await writeFile(join(first.dir, 'cross', name), data);
        const seenOnSecond = await readFile(join(second.dir, 'cross', name));
        if (sha(seenOnSecond) !== sha(data)) throw new Error(`${name}: the other mount read ${seenOnSecond.length} bytes that differ from the ${bytes} written`);
        await rename(join(second.dir, 'cross', name), join(second.dir, 'cross', `${name}.moved`));
        const seenAfterRename = await readFile(join(first.dir, 'cross', `${name}.moved`));
        if (sha(seenAfterRename) !== sha(data)) throw new Error(`${name}.moved: contents changed by a rename on the other mount`);
        await unlink(join(first.dir, 'cross', `${name}.moved`));
      }),
    ]);
    sampling = false;
    await sampler;
    for (const m of mounts.splice(0)) await m.unmount().catch((err: unknown) => problems.push(`unmount: ${(err as Error).message}`));
    const fsck = await runFsck(env);
    if (fsck) {
      console.log(`soak: fsck\n${fsck.output}`);
      problems.push(...fsck.problems);
    }
  } catch (err) {
    problems.push(`soak could not run to the end: ${(err as Error).stack ?? String(err)}`);
  } finally {
    for (const m of mounts) await m.unmount().catch(() => undefined);
    await servers?.stop();
  }
  problems.push(...memoryVerdict(samples, maxRssMb));
  console.log(`soak: rounds completed ${JSON.stringify(ops)}`);
  if (problems.length === 0) {
    console.log('soak: PASSED');
    return 0;
  }
  console.log(`soak: FAILED, ${problems.length} problem(s):`);
  for (const p of problems) console.log(`  - ${p}`);
  return 1;
}

/**
 * Memory past the ceiling, memory still growing (the last quarter's mean more than 25% and
 * 32 MiB above the second quarter's), descriptors that keep rising (the last sample 32 above
 * the most seen in the first half).
 */
function memoryVerdict(samples: readonly Sample[], maxRssMb: number): string[] {
  const found: string[] = [];
  if (samples.length < 8) return [`only ${samples.length} samples: run longer to judge memory`];
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const q = Math.floor(samples.length / 4);
  for (const d of [0, 1]) {
    const label = d === 0 ? 'mount A' : 'mount B';
    const rss = samples.map((s) => s.rssMb[d]);
    const peak = Math.max(...rss);
    if (peak > maxRssMb) found.push(`${label}: the daemon reached ${peak.toFixed(0)} MB, above the ${maxRssMb} MB ceiling`);
    const second = mean(rss.slice(q, 2 * q));
    const last = mean(rss.slice(3 * q));
    if (last > second * 1.25 && last - second > 32) {
      found.push(`${label}: memory still growing: mean ${second.toFixed(0)} MB in the second quarter, ${last.toFixed(0)} MB in the last`);
    }
    const fds = samples.map((s) => s.fds[d]);
    const firstHalfMax = Math.max(...fds.slice(0, 2 * q));
    if (fds[fds.length - 1] > firstHalfMax + 32) found.push(`${label}: descriptors rising: ${firstHalfMax} at most in the first half, ${fds[fds.length - 1]} at the end`);
  }
  return found;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`soak: ${(err as Error).stack ?? String(err)}`);
    process.exit(2);
  },
);
