/**
 * Vitest global setup: one temp root per test run, exported to the workers as VOLDFS_TEST_ROOT
 * (see temp-dir.ts), and a teardown that unmounts and kills whatever is left below it, even if
 * a worker died or a test timed out before its own afterAll ran.
 */
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupTree } from './cleanup.js';
import { TEMP_PREFIX, TEST_ROOT_ENV } from './temp-dir.js';

export default async function setup(): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), `${TEMP_PREFIX}run-`));
  await chmod(root, 0o755);
  process.env[TEST_ROOT_ENV] = root;
  return async () => {
    const report = await cleanupTree(root);
    if (report.mounts.length > 0 || report.pids.length > 0) {
      // A test leaked a mount or a daemon: cleaned now, but say so, it hides a teardown bug.
      process.stderr.write(
        `voldfs test teardown: detached ${report.mounts.join(', ') || 'no mounts'}; ended pids ${report.pids.join(', ') || 'none'}\n`,
      );
    }
  };
}
