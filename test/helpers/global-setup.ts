/**
 * Vitest global setup: one temp root per test run, exported to the workers as VOLDFS_TEST_ROOT
 * (see temp-dir.ts), and a teardown that unmounts and kills whatever is left below it, even if
 * a worker died or a test timed out before its own afterAll ran.
 *
 * A run that was killed never reaches its teardown, so setup first cleans the roots of earlier
 * runs whose vitest process is gone (each root records its owner's PID).
 */
import { chmod, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupTree } from './cleanup.js';
import { processExists } from './run.js';
import { TEMP_PREFIX, TEST_ROOT_ENV } from './temp-dir.js';

const RUN_PREFIX = `${TEMP_PREFIX}run-`;
const OWNER_FILE = 'owner.pid';

function reportLeftovers(what: string, report: { mounts: string[]; pids: number[] }): void {
  if (report.mounts.length === 0 && report.pids.length === 0) return;
  // Cleaned now, but say so: a leak hides a teardown bug.
  process.stderr.write(
    `voldfs test ${what}: detached ${report.mounts.join(', ') || 'no mounts'}; ended pids ${report.pids.join(', ') || 'none'}\n`,
  );
}

/** Cleans the run roots of earlier test runs whose owning process no longer exists. */
export async function cleanAbandonedRuns(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(RUN_PREFIX)) continue;
    const root = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number((await readFile(join(root, OWNER_FILE), 'utf8')).trim());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw err;
    }
    if (!Number.isInteger(owner) || owner <= 0 || processExists(owner)) continue;
    reportLeftovers(`setup (abandoned run ${root})`, await cleanupTree(root));
  }
}

export default async function setup(): Promise<() => Promise<void>> {
  await cleanAbandonedRuns();
  const root = await mkdtemp(join(tmpdir(), RUN_PREFIX));
  await chmod(root, 0o755);
  await writeFile(join(root, OWNER_FILE), `${process.pid}\n`);
  process.env[TEST_ROOT_ENV] = root;
  return async () => {
    reportLeftovers('teardown', await cleanupTree(root));
  };
}
