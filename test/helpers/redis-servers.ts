/**
 * Redis servers for tests, started with scripts/redis-start on free loopback ports in a temp
 * directory and stopped by the pids recorded there (scripts/redis-stop), including when a test
 * fails: call `stop()` in afterAll.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { findFreeBase, processGone } from './free-ports.js';
import { run, sleep, tail } from './run.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

const SCRIPTS = resolve(import.meta.dirname, '../../scripts');

/** One node of a running cluster as `CLUSTER NODES` describes it. */
export interface RedisNodeInfo {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'slave';
  readonly failed: boolean;
  /** For a replica: the id of its master. */
  readonly masterId?: string;
}

export interface RedisServers {
  readonly mode: 'single' | 'cluster';
  readonly dir: string;
  readonly ports: readonly number[];
  /** VOLDFS_DB and VOLDFS_REDIS_URL / VOLDFS_REDIS_CLUSTER as redis-start printed them. */
  readonly env: Readonly<Record<string, string>>;
  /** Pid of the server on `port`, from its pid file; undefined once stopped. */
  pidOf(port: number): Promise<number | undefined>;
  /** Kills the server on `port` with SIGKILL (by its pid) and waits until it is gone. */
  kill(port: number): Promise<void>;
  /** Nodes as seen by the server on `askPort` (default: the first live one). */
  nodes(askPort?: number): Promise<RedisNodeInfo[]>;
  /** Runs redis-cli against `port`; resolves with its standard output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** Stops every server by pid and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** cluster-node-timeout in ms (default 2000, so failover tests finish quickly). */
  readonly nodeTimeoutMs?: number;
}

/**
 * Starts one server or a 6-node cluster (3 masters, 3 replicas, every replica attached).
 * @throws Error with the script's output when it cannot start
 */
export async function startRedis(mode: 'single' | 'cluster', options: StartRedisOptions = {}): Promise<RedisServers> {
  const count = mode === 'single' ? 1 : 6;
  const offsets = Array.from({ length: count }, (_v, i) => i);
  if (mode === 'cluster') offsets.push(...offsets.map((o) => o + 10000));
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const base = await findFreeBase(offsets, 20000, mode === 'cluster' ? 30000 : 40000);
    const dir = await makeTempDir(`redis-${mode}`);
    const result = await run('bash', [join(SCRIPTS, 'redis-start'), mode, String(base), dir], {
      env: { ...process.env, VOLDFS_REDIS_NODE_TIMEOUT_MS: String(options.nodeTimeoutMs ?? 2000) },
      timeoutMs: 120_000,
    });
    if (result.code === 0) return handle(mode, dir, offsets.slice(0, count).map((o) => base + o), result.stdout);
    lastOutput = `${result.stdout}\n${result.stderr}`;
    await stopDir(dir);
    // A port taken between the check and the bind: try another range.
    if (!/in use/.test(lastOutput)) break;
  }
  throw new Error(`scripts/redis-start ${mode} failed:\n${tail(lastOutput)}`);
}

function handle(mode: 'single' | 'cluster', dir: string, ports: number[], stdout: string): RedisServers {
  const env: Record<string, string> = {};
  for (const match of stdout.matchAll(/^export (VOLDFS_\w+)=(.*)$/gm)) env[match[1]] = match[2];
  let stopped = false;
  const pidOf = async (port: number): Promise<number | undefined> => {
    try {
      const pid = Number((await readFile(join(dir, `redis-${port}.pid`), 'utf8')).trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  const cli = async (port: number, ...args: string[]): Promise<string> => {
    const r = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`redis-cli -p ${port} ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  };
  const alive = new Set(ports);
  return {
    mode,
    dir,
    ports,
    env,
    pidOf,
    cli,
    async kill(port) {
      const pid = await pidOf(port);
      if (pid === undefined) throw new Error(`no pid file for redis port ${port} in ${dir}`);
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 200 && !(await processGone(pid)); i++) await sleep(25);
      alive.delete(port);
    },
    async nodes(askPort) {
      const port = askPort ?? [...alive][0];
      const text = await cli(port, 'cluster', 'nodes');
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          const [id, addr, flags, master] = line.split(' ');
          const port = Number(/:(\d+)@/.exec(addr)?.[1]);
          const flagList = flags.split(',');
          return {
            id,
            port,
            role: flagList.includes('master') ? 'master' : 'slave',
            failed: flagList.some((f) => f === 'fail' || f === 'fail?'),
            masterId: master === '-' ? undefined : master,
          };
        });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopDir(dir);
    },
  };
}

/** redis-stop (SIGTERM, then SIGKILL, by the pid files in `dir`), then removes `dir`. */
async function stopDir(dir: string): Promise<void> {
  await run('bash', [join(SCRIPTS, 'redis-stop'), dir], { timeoutMs: 30_000 });
  await removeTempDir(dir);
}
