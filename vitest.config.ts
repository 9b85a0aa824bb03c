import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // FUSE mounts and real servers are shared machine resources: keep test files from
    // fighting over two cores, and let each file start and stop what it needs.
    fileParallelism: false,
    pool: 'forks',
    // One temp root per run; its teardown unmounts whatever a failed test left mounted.
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
