/**
 * etcd members for tests, started with scripts/etcd-start on free loopback ports in a temp
 * directory and stopped by the pids recorded there (scripts/etcd-stop), including when a test
 * fails: call `stop()` in afterAll. Member command lines name their data directory under the
 * test temp root, so the vitest global teardown also ends members a dead worker left behind.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { findFreeBase, processGone } from './free-ports.js';
import { run, sleep, tail } from './run.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

const SCRIPTS = resolve(import.meta.dirname, '../../scripts');

export interface EtcdServers {
  readonly mode: 'single' | 'cluster';
  readonly dir: string;
  /** Client URLs, member 0 first. */
  readonly urls: readonly string[];
  /** VOLDFS_DB, VOLDFS_HTTP_DIALECT and VOLDFS_HTTP_URLS as etcd-start printed them. */
  readonly env: Readonly<Record<string, string>>;
  /** Pid of member `index`, from its pid file; undefined once stopped. */
  pidOf(index: number): Promise<number | undefined>;
  /** Kills member `index` with SIGKILL (by its pid) and waits until it is gone. */
  kill(index: number): Promise<void>;
  /** Index of the member that is leader now, as the members report it. */
  leader(): Promise<number>;
  /** Stops every member by pid and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startEtcd}. */
export interface StartEtcdOptions {
  /** --quota-backend-bytes (default: the script's 4 GiB). */
  readonly quotaBytes?: number;
}

/**
 * Starts one member or three, and waits until every member is healthy.
 * @throws Error with the script's output when they cannot start
 */
export async function startEtcd(mode: 'single' | 'cluster', options: StartEtcdOptions = {}): Promise<EtcdServers> {
  const members = mode === 'single' ? 1 : 3;
  const offsets = Array.from({ length: members * 2 }, (_v, i) => i);
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const base = await findFreeBase(offsets);
    const dir = await makeTempDir(`etcd-${mode}`);
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (options.quotaBytes !== undefined) env.VOLDFS_ETCD_QUOTA_BYTES = String(options.quotaBytes);
    const result = await run('bash', [join(SCRIPTS, 'etcd-start'), mode, String(base), dir], { env, timeoutMs: 90_000 });
    if (result.code === 0) {
      return handle(
        mode,
        dir,
        Array.from({ length: members }, (_v, i) => `http://127.0.0.1:${base + 2 * i}`),
        result.stdout,
      );
    }
    lastOutput = `${result.stdout}\n${result.stderr}`;
    await stopDir(dir);
    if (!/in use|exited/.test(lastOutput)) break;
  }
  throw new Error(`scripts/etcd-start ${mode} failed:\n${tail(lastOutput)}`);
}

function handle(mode: 'single' | 'cluster', dir: string, urls: string[], stdout: string): EtcdServers {
  const env: Record<string, string> = {};
  for (const match of stdout.matchAll(/^export (VOLDFS_\w+)=(.*)$/gm)) env[match[1]] = match[2];
  let stopped = false;
  const killed = new Set<number>();
  const pidOf = async (index: number): Promise<number | undefined> => {
    try {
      const pid = Number((await readFile(join(dir, `etcd-m${index}.pid`), 'utf8')).trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return {
    mode,
    dir,
    urls,
    env,
    pidOf,
    async kill(index) {
      const pid = await pidOf(index);
      if (pid === undefined) throw new Error(`no pid file for etcd member ${index} in ${dir}`);
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 200 && !(await processGone(pid)); i++) await sleep(25);
      killed.add(index);
    },
    async leader() {
      for (let i = 0; i < urls.length; i++) {
        if (killed.has(i)) continue;
        const status = await fetch(`${urls[i]}/v3/maintenance/status`, { method: 'POST', body: '{}' });
        const body = (await status.json()) as { header?: { member_id?: string }; leader?: string };
        if (body.leader !== undefined && body.leader === body.header?.member_id) return i;
      }
      throw new Error('no live etcd member reports itself as leader');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopDir(dir);
    },
  };
}

/** etcd-stop (SIGTERM, then SIGKILL, by the pid files in `dir`), then removes `dir`. */
async function stopDir(dir: string): Promise<void> {
  await run('bash', [join(SCRIPTS, 'etcd-stop'), dir], { timeoutMs: 30_000 });
  await removeTempDir(dir);
}
