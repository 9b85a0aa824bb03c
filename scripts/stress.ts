/**
 * stress: several mounts of one volume on a store (a memcached pool, a Redis Cluster or a
 * 3-member etcd cluster, started here on 127.0.0.1 and stopped by PID), worker processes per
 * mount running creates, renames, links, unlinks, range writes of shared files and appends,
 * then a check from a fresh mount that every completed operation is there and the store is
 * intact (test/e2e/stress/driver.ts). Prints the figures and every problem found.
 * Exit status: 0 nothing broke, 1 problems found, 2 could not run.
 *
 * Run through the wrapper: scripts/stress --help
 */
import { parseArgs } from 'node:util';
import { runStress } from '../test/e2e/stress/driver.js';
import { isStressStore, STRESS_STORES } from '../test/e2e/stress/stores.js';

const USAGE = `usage: scripts/stress [options]
  --store S              ${STRESS_STORES.join(', ')} (default memcached): servers
                         started on 127.0.0.1, free ports, stopped by PID afterwards
  --seconds N            how long the workers run (default 60)
  --servers N            memcached servers in the pool (default 3)
  --mounts N             mounts of the one volume (default 3)
  --workers-per-mount N  worker processes per mount (default 3)
  --memory-mb N          memcached memory per server in MiB (default 1024; small fills up:
                         operations then fail with ENOSPC, completed ones must survive)
  --seed N               replay a run (printed at the start)
  -h, --help`;

function count(name: string, text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    console.error(`stress: --${name} must be a whole number from 1 to ${max}, got ${JSON.stringify(text)}\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      store: { type: 'string' },
      seconds: { type: 'string' },
      servers: { type: 'string' },
      mounts: { type: 'string' },
      'workers-per-mount': { type: 'string' },
      'memory-mb': { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const store = values.store ?? 'memcached';
  if (!isStressStore(store)) {
    console.error(`stress: --store must be one of ${STRESS_STORES.join(', ')}, got ${JSON.stringify(store)}\n${USAGE}`);
    return 2;
  }
  if (store !== 'memcached' && (values.servers !== undefined || values['memory-mb'] !== undefined)) {
    console.error(`stress: --servers and --memory-mb apply to --store memcached only\n${USAGE}`);
    return 2;
  }
  const report = await runStress({
    store,
    seconds: count('seconds', values.seconds, 60, 3600),
    servers: count('servers', values.servers, 3, 16),
    mounts: count('mounts', values.mounts, 3, 8),
    workersPerMount: count('workers-per-mount', values['workers-per-mount'], 3, 16),
    memoryMb: count('memory-mb', values['memory-mb'], 1024, 65536),
    seed: values.seed === undefined ? undefined : count('seed', values.seed, 0, 2 ** 31),
    progress: (line) => console.log(`stress: ${line}`),
  });
  console.log(`store:                ${report.store}`);
  console.log(`operations completed: ${JSON.stringify(report.ops)}`);
  console.log(`operations failed:    ${JSON.stringify(report.errors)}`);
  console.log(`slowest, ms:          ${JSON.stringify(report.slowestMs)}`);
  console.log(`close-to-open rounds: ${report.closeToOpenRounds}`);
  console.log(`time: workers ${report.seconds.workers.toFixed(1)} s, total ${report.seconds.total.toFixed(1)} s`);
  for (const note of report.notes) console.log(note);
  if (report.problems.length === 0) {
    console.log('result: nothing lost, nothing damaged');
    return 0;
  }
  console.log(`result: ${report.problems.length} problem(s) (seed ${report.seed}):`);
  for (const p of report.problems) console.log(`  ${p}`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('stress: could not run:', err);
    process.exit(2);
  },
);
