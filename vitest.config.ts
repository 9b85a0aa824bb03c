import { defineConfig } from 'vitest/config';

/**
 * Tests by tier, run in this order by `npm test` (every tier) or one at a time with
 * `npm run test:unit`, `test:contract`, `test:e2e`, `test:long`:
 * - unit: the layers on the in-memory store (its script runs the files in parallel and a fifth
 *   of the randomized runs, see test/helpers/property-runs.ts);
 * - contract: the store contract and each backend's own behaviour against real servers started
 *   on loopback;
 * - e2e: real FUSE mounts compared with a local directory;
 * - long: crash matrices, multi-mount stress, distributed faults and proofs (minutes each).
 */
const LONG = [
  'test/unit/inode/large-directory.test.ts',
  'test/e2e/huge-sparse-files.test.ts',
  'test/e2e/crash.test.ts',
  'test/e2e/crash-leftover-past-eof.test.ts',
  'test/e2e/multi-mount-stress.test.ts',
  'test/e2e/distributed-faults.test.ts',
  'test/e2e/distributed-proof.test.ts',
  'test/e2e/translators-proof.test.ts',
  'test/e2e/erasure-servers.test.ts',
  'test/e2e/memcached-full-and-lost.test.ts',
  'test/e2e/memcached-family.test.ts',
  'test/e2e/big-file.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Servers and FUSE mounts are shared machine resources: one file at a time, each starting
    // and stopping what it needs. `npm run test:unit` runs the unit files in parallel.
    fileParallelism: false,
    // One temp root per run; its teardown unmounts whatever a failed test left mounted.
    globalSetup: ['test/helpers/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], exclude: LONG, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'contract', include: ['test/contract/**/*.test.ts'], sequence: { groupOrder: 1 } },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'test/fuse-binding/**/*.test.ts'],
          exclude: LONG,
          sequence: { groupOrder: 2 },
        },
      },
      {
        extends: true,
        test: { name: 'long', include: LONG, sequence: { groupOrder: 3 } },
      },
    ],
  },
});
