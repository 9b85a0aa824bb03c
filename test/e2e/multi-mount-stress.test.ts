// Three mounts of one volume, three worker processes per mount: creates, renames (also over
// existing names), links and unlinks in shared directories, writes of each worker's own range
// of shared files, appends, read-backs; meanwhile close-to-open checks across mounts.
// Afterwards, from a fresh mount, every completed operation must be visible, the store must
// hold its invariants and fsck must find nothing. On memcached (three servers) for
// VOLDFS_STRESS_SECONDS (default 20), on a Redis Cluster and on a 3-member etcd cluster for
// VOLDFS_STRESS_DISTRIBUTED_SECONDS (default 15), and likewise through twemproxy in front of 3
// memcached servers and on a kumofs cluster of 3 servers (text and binary port; needs ../shared/kumofs).
// Longer runs: scripts/stress --store S. `npm run build` first.
import { describe, expect, it } from 'vitest';
import { KUMOFS_MISSING, warnIfKumofsMissing } from '../helpers/kumofs-cluster.js';
import { runStress } from './stress/driver.js';
import type { StressStore } from './stress/stores.js';

const CASES: ReadonlyArray<{ store: StressStore; seconds: number }> = [
  { store: 'memcached', seconds: Number(process.env.VOLDFS_STRESS_SECONDS ?? 20) },
  { store: 'redis-cluster', seconds: Number(process.env.VOLDFS_STRESS_DISTRIBUTED_SECONDS ?? 15) },
  { store: 'etcd', seconds: Number(process.env.VOLDFS_STRESS_DISTRIBUTED_SECONDS ?? 15) },
  { store: 'twemproxy', seconds: Number(process.env.VOLDFS_STRESS_DISTRIBUTED_SECONDS ?? 15) },
  ...(KUMOFS_MISSING
    ? []
    : (['kumofs-text', 'kumofs-binary'] as const).map((store) => ({ store, seconds: Number(process.env.VOLDFS_STRESS_DISTRIBUTED_SECONDS ?? 15) }))),
];
warnIfKumofsMissing('multi-mount-stress.test.ts (the kumofs case)');

describe('multi-mount stress', () => {
  for (const { store, seconds } of CASES) {
    it(`on ${store}: loses no completed operation of 9 workers on 3 mounts over ${seconds} s, fsck clean`, async () => {
      const report = await runStress({ store, seconds, progress: (line) => console.log(`[stress ${store}] ${line}`) });
      console.log(`[stress ${store}] ${JSON.stringify({ ...report, problems: report.problems.length }, null, 1)}`);
      const completed = Object.entries(report.ops).filter(([op]) => op !== 'error').reduce((n, [, v]) => n + v, 0);
      expect(completed).toBeGreaterThan(seconds * 3);
      expect(report.closeToOpenRounds).toBeGreaterThan(2);
      // fsck ran (it is in this build) and its findings, if any, are among the problems.
      expect(report.notes.some((n) => n.startsWith('fsck:'))).toBe(true);
      expect(report.problems).toEqual([]);
    }, (seconds + 300) * 1000);
  }
});
