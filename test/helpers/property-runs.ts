/**
 * How many runs (or rounds) a randomized test makes. `npm test` and a plain `vitest run` make
 * them all; `npm run test:unit`, the quick answer after a change, sets
 * VOLDFS_TEST_RUNS=quick and makes a fifth of them (at least `least`), so the unit tier answers
 * in about a minute while the full count still runs in CI.
 */
export function testRuns(full: number, least = 3): number {
  const quick = process.env.VOLDFS_TEST_RUNS === 'quick';
  return quick ? Math.max(least, Math.ceil(full / 5)) : full;
}
