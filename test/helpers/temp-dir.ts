/**
 * Temporary directories for tests and scripts.
 *
 * Every directory is created under one root so that a crashed run can be cleaned up by looking
 * under that root alone: the vitest global setup makes a per-run root and exports it as
 * `VOLDFS_TEST_ROOT`; without it (scripts, a single file run outside vitest) directories go
 * straight under `os.tmpdir()`. Names always start with `voldfs-test-`.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Environment variable naming the per-run temp root (set by the vitest global setup). */
export const TEST_ROOT_ENV = 'VOLDFS_TEST_ROOT';

/** Prefix of every directory made by {@link makeTempDir}. */
export const TEMP_PREFIX = 'voldfs-test-';

/** The directory temp dirs go under: `$VOLDFS_TEST_ROOT` if set, else `os.tmpdir()`. */
export function tempParent(env: NodeJS.ProcessEnv = process.env): string {
  const root = env[TEST_ROOT_ENV];
  return root !== undefined && root !== '' ? root : tmpdir();
}

/**
 * Creates a fresh directory `<parent>/voldfs-test-<label>-XXXXXX` and returns its absolute path.
 *
 * The directory is made world-searchable (0755) so that checks running as an unprivileged user
 * (uid 65534) can reach what lies below it; mkdtemp alone would give 0700.
 *
 * @param label short word that ends up in the name, to tell directories apart when debugging.
 */
export async function makeTempDir(label = 'tmp'): Promise<string> {
  const dir = await mkdtemp(join(tempParent(), `${TEMP_PREFIX}${label}-`));
  await chmod(dir, 0o755);
  return dir;
}

/** Removes a directory made by {@link makeTempDir}; a missing directory is not an error. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
