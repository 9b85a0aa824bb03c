/**
 * The table of named POSIX checks, run unchanged against a plain local directory (which
 * validates the checks themselves) and against a voldfs mount.
 *
 * Each check gets a fresh empty directory of its own (see {@link prepareCheckDir}) and throws
 * an AssertionError naming what differed from Linux's behaviour on a local filesystem.
 * Checks run as root; the permission check drops to uid/gid 65534 with setpriv, so the
 * directories above the check directory must be searchable by others (0755).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { attrChecks } from './posix/attr-checks.js';
import { dirChecks } from './posix/dir-checks.js';
import { fileChecks } from './posix/file-checks.js';
import { linkChecks } from './posix/link-checks.js';
import { lockSpaceChecks } from './posix/lock-space-checks.js';
import { renameChecks } from './posix/rename-checks.js';
import { specialChecks } from './posix/special-checks.js';
import type { PosixCheck } from './posix/util.js';

export type { PosixCheck } from './posix/util.js';

/** Every check, in a stable order. Names are unique. */
export const POSIX_CHECKS: readonly PosixCheck[] = [
  ...fileChecks,
  ...renameChecks,
  ...dirChecks,
  ...linkChecks,
  ...attrChecks,
  ...specialChecks,
  ...lockSpaceChecks,
];

/** Default time limit of one check, in milliseconds. */
export const DEFAULT_CHECK_TIMEOUT_MS = 60_000;

/** Creates (mode 0755) and returns the directory `check` runs in: `<root>/<slug of its name>`. */
export async function prepareCheckDir(root: string, check: PosixCheck): Promise<string> {
  const slug = check.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
  const dir = join(root, slug);
  await mkdir(dir, { mode: 0o755 });
  return dir;
}
