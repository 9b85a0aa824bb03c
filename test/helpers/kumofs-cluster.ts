/**
 * A real kumofs cluster for tests, built and run by the scripts in ../shared/kumofs (kumofs is
 * not packaged by Debian): one manager, N servers and a gateway with a text and a binary port,
 * on free 127.0.0.1 ports, stopped by the pids stop-cluster.sh recorded.
 *
 * Where ../shared/kumofs is absent the tests that need it do not run, and say so loudly on
 * stderr and as skipped tests: see {@link KUMOFS_MISSING} and {@link describeOnKumofs}.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreeBase } from './free-ports.js';
import { run } from './run.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

const SHARED_KUMOFS = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/kumofs');
export const START_TIMEOUT_MS = 20 * 60_000;

/** Why kumofs tests cannot run here, or undefined when they can. */
export const KUMOFS_MISSING: string | undefined = existsSync(join(SHARED_KUMOFS, 'start-cluster.sh'))
  ? undefined
  : `${SHARED_KUMOFS} is absent, so the tests against a real kumofs cluster DID NOT RUN; ` +
    'only the kumofs stand-in (test/helpers/kumofs-stand-in.ts) checked the dialect';

/** Prints the loud notice once per test file that needed kumofs. */
export function warnIfKumofsMissing(what: string): void {
  if (KUMOFS_MISSING) process.stderr.write(`\n*** ${what}: ${KUMOFS_MISSING} ***\n\n`);
}

export interface KumofsClusterOptions {
  /** kumo-servers, 1 to 9. Default 3. */
  readonly servers?: number;
  /** Extra kumo-server arguments, e.g. `-gN 1 -gX 2` (tombstone collection). */
  readonly serverArgs?: string;
}

export class KumofsCluster {
  private constructor(
    readonly dir: string,
    readonly text: string,
    readonly binary: string,
  ) {}

  /** Builds kumofs if needed (minutes, once) and starts a cluster on free ports. */
  static async start(options: KumofsClusterOptions = {}): Promise<KumofsCluster> {
    if (KUMOFS_MISSING) throw new Error(KUMOFS_MISSING);
    const servers = options.servers ?? 3;
    const offsets = [0, 1, 2, ...Array.from({ length: servers }, (_v, i) => [11 + i, 31 + i]).flat()];
    for (let attempt = 0; ; attempt++) {
      const dir = await makeTempDir('kumofs');
      const base = await findFreeBase(offsets, 20000, 40000);
      const r = await run('bash', [join(SHARED_KUMOFS, 'start-cluster.sh'), dir, String(base), String(servers)], {
        timeoutMs: START_TIMEOUT_MS,
        env: { ...process.env, KUMOFS_SERVER_ARGS: options.serverArgs ?? '' },
      });
      const last = r.stdout.trim().split('\n').pop() ?? '';
      const match = /^text (\S+) binary (\S+)$/.exec(last);
      if (r.code === 0 && match) return new KumofsCluster(dir, match[1], match[2]);
      await run('bash', [join(SHARED_KUMOFS, 'stop-cluster.sh'), dir], { timeoutMs: 60_000 });
      await removeTempDir(dir);
      if (attempt >= 2) throw new Error(`kumofs cluster did not start: ${r.stderr.slice(-2000)}`);
    }
  }

  /** Kills kumo-server `n` (1-based) with SIGKILL, as a crashed machine. */
  async killServer(n: number): Promise<void> {
    const pid = Number((await readFile(join(this.dir, 'pids', `server${n}.pid`), 'utf8')).trim());
    process.kill(pid, 'SIGKILL');
  }

  async stop(): Promise<void> {
    await run('bash', [join(SHARED_KUMOFS, 'stop-cluster.sh'), this.dir], { timeoutMs: 60_000 });
    await removeTempDir(this.dir);
  }
}
