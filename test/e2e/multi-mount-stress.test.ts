// Three mounts of one volume on three memcached servers, three worker processes per mount, for
// VOLDFS_STRESS_SECONDS (default 20): creates, renames (also over existing names), links and
// unlinks in shared directories, writes of each worker's own range of shared files, appends,
// read-backs; meanwhile close-to-open checks across mounts. Afterwards, from a fresh mount,
// every completed operation must be visible and the store must hold its invariants.
// Longer runs: scripts/stress. `npm run build` first.
import { describe, expect, it } from 'vitest';
import { runStress } from './stress/driver.js';

const SECONDS = Number(process.env.VOLDFS_STRESS_SECONDS ?? 20);

describe('multi-mount stress on memcached', () => {
  it(`loses no completed operation of 9 workers on 3 mounts over ${SECONDS} s`, async () => {
    const report = await runStress({ seconds: SECONDS, progress: (line) => console.log(`[stress] ${line}`) });
    console.log(`[stress] ${JSON.stringify({ ...report, problems: report.problems.length }, null, 1)}`);
    const completed = Object.entries(report.ops).filter(([op]) => op !== 'error').reduce((n, [, v]) => n + v, 0);
    expect(completed).toBeGreaterThan(SECONDS * 3);
    expect(report.closeToOpenRounds).toBeGreaterThan(2);
    expect(report.problems).toEqual([]);
  }, (SECONDS + 300) * 1000);
});
