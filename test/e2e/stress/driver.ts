/**
 * Multi-mount stress on one volume: a store (memcached pool, Redis Cluster or 3-member etcd,
 * stores.ts), M mounts of the volume, W worker
 * processes per mount running random operations for a bounded time (worker.ts), and the driver
 * itself checking close-to-open consistency across mounts meanwhile. Afterwards, from a fresh
 * mount, every operation a worker logged as completed must be visible (model.ts), the tree's
 * link counts must add up, and the store must hold the volume's invariants (volume-check.ts,
 * and `voldfs fsck` once the build has it).
 *
 * Used by test/e2e/multi-mount-stress.test.ts (20 s) and scripts/stress (60 s by default).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { lstat, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRepoRoot, mountVoldfs, type VoldfsMount } from '../../helpers/mount.js';
import { patternBytes } from '../../helpers/pattern.js';
import { seededRandom } from '../../helpers/seeded-random.js';
import { makeTempDir } from '../../helpers/temp-dir.js';
import { checkMountedTree, checkVolumeStore } from '../../helpers/volume-check.js';
import { runFsck } from '../crash/fsck.js';
import { LAYOUT, appendLine, fileBytes, rangeBytes, replay, type Expected, type LogEntry } from './model.js';
import { startStressStore, type RunningStressStore, type StressStore } from './stores.js';
import type { WorkerArgs } from './worker.js';

export interface StressOptions {
  /** How long workers run, seconds. */
  readonly seconds: number;
  /** Where the volume lives. Default memcached. */
  readonly store?: StressStore;
  /** memcached only: servers in the pool. Default 3. */
  readonly servers?: number;
  /** Mounts of the one volume. Default 3. */
  readonly mounts?: number;
  /** Worker processes per mount. Default 3. */
  readonly workersPerMount?: number;
  /**
   * memcached only: memory per server, MiB (-m; servers run with -M). Default 1024. A small pool
   * fills up: operations then fail with ENOSPC, and those that completed must still be there.
   */
  readonly memoryMb?: number;
  /** Seed of everything random. Default: from the clock (printed). */
  readonly seed?: number;
  /** Progress lines. Default: none. */
  readonly progress?: (line: string) => void;
}

export interface StressReport {
  readonly seed: number;
  readonly store: StressStore;
  /** Operations completed, by kind, summed over workers. */
  readonly ops: Record<string, number>;
  /** Operations that failed, by error code. */
  readonly errors: Record<string, number>;
  /** Slowest completed operation of each kind, ms. */
  readonly slowestMs: Record<string, number>;
  /** Close-to-open rounds (write and close on one mount, open and read on another). */
  readonly closeToOpenRounds: number;
  /** Everything that broke: lost updates, wrong contents or link counts, hangs, damage. */
  readonly problems: string[];
  readonly notes: string[];
  readonly seconds: { readonly workers: number; readonly total: number };
}

/** Files the close-to-open loop rewrites in turn. */
const C2O_FILES = 3;
/** Extra time workers get to finish their last operation before they count as hung, ms. */
const EXIT_GRACE_MS = 90_000;

export async function runStress(options: StressOptions): Promise<StressReport> {
  const mountCount = options.mounts ?? 3;
  const perMount = options.workersPerMount ?? 3;
  const seed = options.seed ?? Date.now() % 1_000_000;
  const progress = options.progress ?? (() => undefined);
  const started = Date.now();
  const problems: string[] = [];
  const notes: string[] = [];
  const work = await makeTempDir('stress');
  let servers: RunningStressStore | undefined;
  const mounts: VoldfsMount[] = [];
  const workers: ChildProcess[] = [];
  try {
    servers = await startStressStore(options.store ?? 'memcached', { servers: options.servers, memoryMb: options.memoryMb });
    const env = { ...servers.env, VOLDFS_VOLUME: 'stress', VOLDFS_STATE_DIR: join(work, 'state') };
    for (let m = 0; m < mountCount; m++) mounts.push(await mountVoldfs({ env, mkfs: m === 0 }));
    const first = mounts[0].dir;
    await mkdir(join(first, 'shared'));
    for (const d of LAYOUT.dirs) await mkdir(join(first, d));
    for (const f of LAYOUT.rangeFiles) await writeFile(join(first, f), '');
    // Names created on one mount and opened on another at once are another test's subject
    // (close-to-open-new-name.test.ts): here the names exist before, the contents change.
    for (let i = 0; i < C2O_FILES; i++) await writeFile(join(first, `shared/c2o-${i}`), '');
    progress(`seed ${seed}: ${servers.description}, ${mountCount} mounts, ${mountCount * perMount} workers for ${options.seconds} s`);

    const until = Date.now() + options.seconds * 1000;
    const workerScript = fileURLToPath(new URL('./worker.ts', import.meta.url));
    const root = await findRepoRoot();
    const exits: Promise<string | undefined>[] = [];
    for (let m = 0; m < mountCount; m++) {
      for (let k = 0; k < perMount; k++) {
        const id = m * perMount + k;
        const args: WorkerArgs = { mount: mounts[m].dir, worker: id, seed: seed * 100 + id, until, log: join(work, `worker-${id}.jsonl`) };
        const child = spawn(process.execPath, ['--import', 'tsx', workerScript, JSON.stringify(args)], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
        workers.push(child);
        let stderr = '';
        child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
        exits.push(
          once(child, 'exit').then(([code, signal]) => (code === 0 ? undefined : `worker ${id} exited with ${code ?? signal}: ${stderr.trim()}`)),
        );
      }
    }
    const rounds = await closeToOpen(mounts, until, seed, problems);
    const deadline = sleepFor(until - Date.now() + EXIT_GRACE_MS);
    const settled = await Promise.race([Promise.all(exits), deadline.then(() => 'timeout' as const)]);
    deadline.cancel();
    if (settled === 'timeout') {
      const hung = workers.filter((w) => w.exitCode === null && w.signalCode === null);
      problems.push(`${hung.length} worker(s) still running ${EXIT_GRACE_MS / 1000} s after the deadline: an operation hung`);
      for (const w of hung) w.kill('SIGKILL');
    } else {
      for (const failure of settled) if (failure) problems.push(failure);
    }
    const workersDone = (Date.now() - started) / 1000;
    progress(`workers done after ${workersDone.toFixed(1)} s; ${rounds} close-to-open rounds`);

    for (const m of mounts.splice(0)) {
      await m.unmount().catch((err: unknown) => problems.push(`unmounting after the stress: ${(err as Error).message}`));
    }
    const expected: Expected[] = [];
    for (let id = 0; id < mountCount * perMount; id++) expected.push(replay(await readLog(join(work, `worker-${id}.jsonl`))));

    const fresh = await mountVoldfs({ env, mkfs: false });
    mounts.push(fresh);
    for (let id = 0; id < expected.length; id++) problems.push(...(await verifyWorker(fresh.dir, id, expected[id])));
    const tree = await checkMountedTree(join(fresh.dir, 'shared'));
    problems.push(...tree.problems.map((p) => `tree: ${p}`));
    progress(`verified ${tree.entries.size} entries from a fresh mount`);
    await mounts.splice(0)[0].unmount();

    const store = await checkVolumeStore(env, false);
    problems.push(...store.problems.map((p) => `store: ${p}`));
    notes.push(`store: ${JSON.stringify(store.counts)}${store.notes.length ? `; ${store.notes.join('; ')}` : ''}`);
    const fsck = await runFsck(env);
    if (fsck) {
      notes.push(`fsck:\n${fsck.output}`);
      problems.push(...fsck.problems);
    } else {
      notes.push('voldfs fsck: not in this build yet; the store check above stands in for it');
    }

    const sum = (pick: (e: Expected) => Record<string, number>) => {
      const out: Record<string, number> = {};
      for (const e of expected) for (const [k, v] of Object.entries(pick(e))) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    const slowestMs: Record<string, number> = {};
    for (const e of expected) for (const [k, v] of Object.entries(e.slowest)) slowestMs[k] = Math.max(slowestMs[k] ?? 0, v);
    return {
      seed,
      store: options.store ?? 'memcached',
      ops: sum((e) => e.counts),
      errors: sum((e) => e.errors),
      slowestMs,
      closeToOpenRounds: rounds,
      problems,
      notes,
      seconds: { workers: workersDone, total: (Date.now() - started) / 1000 },
    };
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    for (const m of mounts) await m.unmount().catch(() => undefined);
    await servers?.stop();
  }
}

/**
 * Until `until`: write a file on one mount and close it, then open it on the next mount and
 * read it whole; the content must be exactly what was written (close-to-open consistency).
 * Sizes vary up and down, so a stale size on the reading mount shows too.
 */
async function closeToOpen(mounts: readonly VoldfsMount[], until: number, seed: number, problems: string[]): Promise<number> {
  const random = seededRandom(seed);
  let round = 0;
  while (Date.now() < until) {
    const writer = mounts[round % mounts.length].dir;
    const reader = mounts[(round + 1) % mounts.length].dir;
    const name = `shared/c2o-${round % C2O_FILES}`;
    const data = patternBytes(Math.floor(random() * 1.2 * 1024 * 1024), seed + round);
    try {
      try {
        await writeFile(join(writer, name), data);
      } catch (err) {
        // A full store refuses the write (a small --memory-mb pool): nothing to compare.
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
          round++;
          continue;
        }
        throw err;
      }
      const got = await readFile(join(reader, name));
      if (!got.equals(data)) {
        problems.push(`close-to-open round ${round}: wrote ${data.length} bytes on mount ${round % mounts.length}, mount ${(round + 1) % mounts.length} read ${got.length} bytes${got.length === data.length ? ' that differ' : ''}`);
      }
    } catch (err) {
      problems.push(`close-to-open round ${round}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    round++;
  }
  return round;
}

/** Checks that everything worker `id` completed is in the volume. */
async function verifyWorker(root: string, id: number, e: Expected): Promise<string[]> {
  const problems = e.verifyFailures.map((f) => `w${id} read back its own file wrong during the run: ${f}`);
  const byFile = new Map<number, string[]>();
  for (const [path, file] of e.names) {
    byFile.set(file.id, [...(byFile.get(file.id) ?? []), path]);
    try {
      const got = await readFile(join(root, path));
      if (!got.equals(fileBytes(file.seed, file.len))) problems.push(`w${id}: ${path} holds ${got.length} bytes, not the ${file.len} it was created with`);
    } catch (err) {
      problems.push(`w${id}: ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (the log says it exists)`);
    }
  }
  for (const [fileId, paths] of byFile) {
    if (e.tainted.has(fileId)) continue;
    const stats = await Promise.all(paths.map((p) => lstat(join(root, p)).catch(() => undefined)));
    const inos = new Set(stats.map((s) => s?.ino));
    if (inos.size !== 1) problems.push(`w${id}: names ${paths.join(', ')} should be one file, are inodes ${[...inos].join(', ')}`);
    for (const [i, s] of stats.entries()) {
      if (s && s.nlink !== paths.length) problems.push(`w${id}: ${paths[i]} has nlink ${s.nlink}, expected ${paths.length} (${paths.join(', ')})`);
    }
  }
  const prefix = `w${id}-`;
  for (const dir of LAYOUT.dirs) {
    for (const name of await readdir(join(root, dir))) {
      const path = `${dir}/${name}`;
      if (name.startsWith(prefix) && !e.names.has(path) && !e.uncertain.has(path)) problems.push(`w${id}: ${path} exists, but the log unlinked or renamed it away`);
    }
  }
  for (const [file, seedOf] of e.ranges) {
    if (seedOf === undefined) continue;
    const offset = LAYOUT.rangeBase + id * LAYOUT.rangeBytes;
    const data = await readFile(join(root, file));
    const got = data.subarray(offset, offset + LAYOUT.rangeBytes);
    if (!got.equals(rangeBytes(seedOf))) {
      problems.push(`w${id}: ${file} [${offset}, ${offset + LAYOUT.rangeBytes}) does not hold its last completed write (file is ${data.length} bytes): lost update`);
    }
  }
  if (e.appends !== undefined && e.appends > 0) {
    const want = Array.from({ length: e.appends }, (_v, seq) => appendLine(id, seq)).join('');
    const got = await readFile(join(root, LAYOUT.appendFile(id)), 'utf8').catch((err: NodeJS.ErrnoException) => `(${err.code})`);
    if (got !== want) problems.push(`w${id}: append file holds ${got.length} bytes, expected ${e.appends} lines (${want.length} bytes)`);
  }
  return problems;
}

async function readLog(path: string): Promise<LogEntry[]> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const lines = text.split('\n').filter((l) => l.length > 0);
  // A worker killed while logging leaves half a line: that operation counts as not completed.
  if (lines.length > 0 && !text.endsWith('\n')) lines.pop();
  return lines.map((l) => JSON.parse(l) as LogEntry);
}

function sleepFor(ms: number): Promise<void> & { cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  return Object.assign(promise, { cancel: () => clearTimeout(timer) });
}
