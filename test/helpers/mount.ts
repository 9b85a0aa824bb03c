/**
 * Mounts voldfs for a test or a script through its command line, and takes it down again no
 * matter what state it is in.
 *
 * The CLI contract used here: `voldfs mkfs` formats the store named by the `VOLDFS_*` variables,
 * `voldfs mount -f DIR` serves in the foreground until SIGINT/SIGTERM or unmount, `voldfs mount DIR`
 * returns once mounted and leaves a daemon behind, `voldfs umount DIR` returns once the daemon
 * has flushed and exited.
 *
 * Teardown is layered, each layer running only if the previous one left something behind:
 * `voldfs umount`, then `fusermount -uz` (lazy detach), then SIGTERM and SIGKILL to the daemon's
 * process group. Every mount lives under a temp dir from {@link makeTempDir}, so the vitest
 * global teardown can still clean up after a worker that died.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFuseMounted, mountAt } from './mountinfo.js';
import { processesMentioning } from './processes.js';
import { killGroup, processExists, run, sleep, tail } from './run.js';
import { makeTempDir } from './temp-dir.js';

/** Options of {@link mountVoldfs}. */
export interface MountVoldfsOptions {
  /** Variables laid over `process.env` for every CLI call (`VOLDFS_DB`, `VOLDFS_LMDB_PATH`, ...). */
  env?: Record<string, string | undefined>;
  /** Where to mount (created if missing). Default: `<temp dir>/mnt`. */
  mountpoint?: string;
  /** Run `voldfs mkfs` before the first mount (default true; not repeated on remount). */
  mkfs?: boolean;
  /**
   * Mount with `voldfs mount DIR` (the daemon detaches) instead of a foreground `mount -f` child
   * (default false: foreground, so the daemon's PID and output are ours).
   */
  daemon?: boolean;
  /** Time limit for each of mkfs, mount and umount, in milliseconds (default 60,000). */
  timeoutMs?: number;
  /** The CLI to run, as argv prefix. Default: `[node, <repo>/bin/voldfs.js]`. */
  command?: readonly string[];
  /** How long unmount waits for the daemon to exit after `voldfs umount`, in ms (default 15,000). */
  exitWaitMs?: number;
  /** Extra arguments placed after `mount [-f]` and before the directory. */
  mountArgs?: readonly string[];
}

/** A mounted voldfs. */
export interface VoldfsMount {
  /** The mount point (absolute). */
  readonly dir: string;
  /** File collecting the daemon's stdout and stderr (appended across remounts). */
  readonly logFile: string;
  /** Full environment handed to the CLI. */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Unmounts and makes sure the daemon is gone. Safe to call twice or after a failed mount.
   * Throws (after cleaning up) if the clean path failed: `voldfs umount` exited non-zero, the
   * mount or the daemon survived it, or the daemon exited with an error.
   */
  unmount(): Promise<void>;
  /** {@link unmount} then mount again on the same directory and store (no mkfs). */
  remount(): Promise<void>;
}

/** Default argv prefix for the CLI: this Node binary running `<repo>/bin/voldfs.js`. */
export async function defaultVoldfsCommand(): Promise<string[]> {
  return [process.execPath, join(await findRepoRoot(), 'bin', 'voldfs.js')];
}

/**
 * The repository root: the nearest ancestor of this module holding the voldfs package.json
 * (works from test/helpers and from a compiled copy under dist/).
 */
export async function findRepoRoot(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'voldfs') return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the voldfs repository root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/**
 * Store settings for tests: the caller's `VOLDFS_*` variables if `VOLDFS_DB` is set (to run the
 * same tests against memcached, Redis, ...), else a fresh LMDB store in `storeDir`.
 */
export function defaultStoreEnv(storeDir: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const db = env.VOLDFS_DB;
  if (db !== undefined && db !== '') return {};
  return { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(storeDir, 'store.lmdb') };
}

/**
 * Formats (unless `mkfs: false`) and mounts voldfs, resolving once the kernel lists a FUSE mount
 * at the mount point (polled in /proc/self/mountinfo).
 *
 * @throws Error naming the CLI's exit status and the tail of its output if mkfs or mount fails,
 *   the daemon exits early, or the mount does not appear within `timeoutMs`. Anything started is
 *   cleaned up before it throws.
 */
export async function mountVoldfs(opts: MountVoldfsOptions = {}): Promise<VoldfsMount> {
  const command = opts.command ?? (await defaultVoldfsCommand());
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const exitWaitMs = opts.exitWaitMs ?? 15_000;
  const base = opts.mountpoint === undefined ? await makeTempDir('mount') : dirname(resolve(opts.mountpoint));
  const dir = opts.mountpoint === undefined ? join(base, 'mnt') : resolve(opts.mountpoint);
  await mkdir(dir, { recursive: true });
  const logFile = opts.mountpoint === undefined ? join(base, 'daemon.log') : `${dir}.voldfs.log`;
  const pidFile = logFile.replace(/\.log$/, '.pid');
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  const cli = (args: readonly string[]) => run(command[0], [...command.slice(1), ...args], { env, timeoutMs });

  if (opts.mkfs ?? true) {
    await checkCommandExists(command);
    const r = await cli(['mkfs']);
    if (r.code !== 0) {
      throw new Error(`voldfs mkfs failed (${describeExit(r.code, r.signal, r.timedOut)}):\n${tail(r.stdout + r.stderr)}`);
    }
  }

  let child: ChildProcess | undefined;
  let childExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  let daemonPids: number[] = [];
  let stopping = false;
  // A daemon that never mounted has nothing to flush: stop() kills it without waiting.
  let mounted = false;

  const start = async (): Promise<void> => {
    await checkCommandExists(command);
    if (await isFuseMounted(dir)) throw new Error(`${dir} is already a FUSE mount point; unmount it first`);
    const log = await open(logFile, 'a');
    try {
      if (opts.daemon ?? false) {
        const r = await cli(['mount', ...(opts.mountArgs ?? []), dir]);
        await log.write(r.stdout + r.stderr);
        if (r.code !== 0) {
          throw new Error(`voldfs mount ${dir} failed (${describeExit(r.code, r.signal, r.timedOut)}):\n${tail(r.stdout + r.stderr)}`);
        }
        await waitForMount(dir, timeoutMs, undefined, logFile);
        mounted = true;
        daemonPids = (await processesMentioning(dir)).map((p) => p.pid);
        await writeFile(pidFile, daemonPids.join('\n') + '\n');
        return;
      }
      const c = spawn(command[0], [...command.slice(1), 'mount', '-f', ...(opts.mountArgs ?? []), dir], {
        env,
        detached: true,
        stdio: ['ignore', log.fd, log.fd],
      });
      child = c;
      childExit = new Promise((res) => c.once('exit', (code, signal) => res({ code, signal })));
      const spawnError = new Promise<Error>((res) => c.once('error', res));
      if (c.pid !== undefined) await writeFile(pidFile, `${c.pid}\n`);
      await waitForMount(dir, timeoutMs, { exit: childExit, error: spawnError }, logFile);
      mounted = true;
    } finally {
      await log.close();
    }
  };

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const problems: string[] = [];
    try {
      if (await isFuseMounted(dir)) {
        const r = await cli(['umount', dir]);
        if (r.code !== 0) {
          problems.push(`voldfs umount ${dir} failed (${describeExit(r.code, r.signal, r.timedOut)}): ${tail(r.stdout + r.stderr, 500)}`);
        }
      }
      if (!mounted) {
        // Nothing to wait for: killHard below ends whatever was started.
      } else if (child !== undefined && childExit !== undefined) {
        const exited = await Promise.race([childExit, sleep(exitWaitMs).then(() => undefined)]);
        if (exited === undefined) problems.push(`daemon pid ${child.pid} still running ${exitWaitMs} ms after umount`);
        else if (exited.code !== 0 && exited.code !== null) problems.push(`daemon exited with code ${exited.code}`);
      } else {
        const deadline = Date.now() + exitWaitMs;
        while (daemonPids.some(processExists) && Date.now() < deadline) await sleep(100);
        if (daemonPids.some(processExists)) problems.push(`daemon pid(s) ${daemonPids.join(',')} still running ${exitWaitMs} ms after umount`);
      }
      if (await isFuseMounted(dir)) {
        problems.push(`${dir} still mounted after umount; detached with fusermount -uz`);
        await run('fusermount', ['-uz', dir], { timeoutMs: 15_000 });
      }
    } finally {
      // A background mount that failed half-way may have left a daemon we never learned about.
      const strays = (opts.daemon ?? false) && !mounted ? (await processesMentioning(dir)).map((p) => p.pid) : [];
      await killHard([...(child?.pid !== undefined ? [child.pid] : []), ...daemonPids, ...strays], childExit);
      child = undefined;
      childExit = undefined;
      daemonPids = [];
      mounted = false;
      stopping = false;
    }
    if (problems.length > 0) {
      throw new Error(`unmounting voldfs at ${dir}:\n- ${problems.join('\n- ')}\nlog: ${logFile}\n${tail(await readLog(logFile), 1500)}`);
    }
  };

  const handle: VoldfsMount = {
    dir,
    logFile,
    env,
    unmount: stop,
    remount: async () => {
      await stop();
      await startOrClean();
    },
  };

  const startOrClean = async (): Promise<void> => {
    try {
      await start();
    } catch (err) {
      await stop().catch(() => undefined); // the mount error is the one worth reporting
      throw err;
    }
  };
  await startOrClean();
  return handle;
}

/** Polls the mount table until a FUSE mount shows at `dir`; fails early if the daemon dies. */
async function waitForMount(
  dir: string,
  timeoutMs: number,
  daemon: { exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; error: Promise<Error> } | undefined,
  logFile: string,
): Promise<void> {
  let dead: string | undefined;
  void daemon?.exit.then((e) => {
    dead = `daemon exited before mounting (${describeExit(e.code, e.signal, false)})`;
  });
  void daemon?.error.then((e) => {
    dead = `cannot start the daemon: ${e.message}`;
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await isFuseMounted(dir)) return;
    if (dead !== undefined) throw new Error(`mounting voldfs at ${dir}: ${dead}\n${tail(await readLog(logFile))}`);
    if (Date.now() > deadline) {
      const other = await mountAt(dir);
      const what = other === undefined ? 'nothing is mounted there' : `found ${other.fstype} instead`;
      throw new Error(`mounting voldfs at ${dir}: no FUSE mount after ${timeoutMs} ms (${what})\n${tail(await readLog(logFile))}`);
    }
    await sleep(50);
  }
}

/** SIGTERM then SIGKILL to each process group still alive. */
async function killHard(pids: number[], childExit: Promise<unknown> | undefined): Promise<void> {
  const alive = pids.filter(processExists);
  if (alive.length === 0) return;
  for (const pid of alive) killGroup(pid, 'SIGTERM');
  const deadline = Date.now() + 3000;
  while (alive.some(processExists) && Date.now() < deadline) await sleep(50);
  for (const pid of alive.filter(processExists)) killGroup(pid, 'SIGKILL');
  if (childExit !== undefined) await Promise.race([childExit, sleep(3000)]);
}

async function checkCommandExists(command: readonly string[]): Promise<void> {
  const script = command[1];
  if (script === undefined || !script.endsWith('.js')) return;
  try {
    await access(script);
  } catch {
    throw new Error(`voldfs CLI not found at ${script}: build it with \`npm run build\` (bin/voldfs.js runs dist/cli/main.js)`);
  }
  const repoMain = join(dirname(dirname(script)), 'dist', 'cli', 'main.js');
  if (script.endsWith(join('bin', 'voldfs.js'))) {
    try {
      await access(repoMain);
    } catch {
      throw new Error(`${repoMain} is missing: run \`npm run build\` before mounting voldfs`);
    }
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null, timedOut: boolean): string {
  if (timedOut) return 'timed out';
  if (signal !== null) return `killed by ${signal}`;
  return `exit code ${code}`;
}

async function readLog(logFile: string): Promise<string> {
  try {
    return await readFile(logFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '(no daemon log)';
    throw err;
  }
}
