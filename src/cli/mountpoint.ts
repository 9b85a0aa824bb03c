import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface MountEntry {
  /** The mount point, octal escapes decoded. */
  readonly dir: string;
  /** Filesystem type, e.g. `fuse.voldfs`. */
  readonly fstype: string;
  /** `major:minor` of the mount's device, which names its backing-device entry in /sys/class/bdi. */
  readonly device: string;
  /** Mount source, octal escapes decoded (for FUSE, the fsname option). */
  readonly source: string;
}

/** Every line of a /proc/PID/mountinfo text, in order (stacked mounts of a directory included). */
export function mountEntries(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || dash + 2 >= fields.length) continue;
    out.push({ dir: unescapeField(fields[4]), fstype: fields[dash + 1], device: fields[2], source: unescapeField(fields[dash + 2]) });
  }
  return out;
}

/** The entries of a /proc/PID/mountinfo text by directory; the last mount of a directory wins. */
export function parseMountinfo(text: string): Map<string, MountEntry> {
  return new Map(mountEntries(text).map((entry) => [entry.dir, entry]));
}

function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points as the kernel lists them (/proc/self/mountinfo). */
export async function mountedDirs(): Promise<Map<string, MountEntry>> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

export async function isMounted(dir: string): Promise<boolean> {
  return (await mountedDirs()).has(resolve(dir));
}

/**
 * Refuses a mount point that is missing, not a directory, already a mount, or not empty, with
 * a message that says what to do.
 */
export async function checkMountpoint(dir: string): Promise<string> {
  const path = resolve(dir);
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UsageError(`mount point ${path} does not exist: create it with mkdir -p ${path}`);
    if (code === 'ENOTCONN') {
      throw new UsageError(`mount point ${path} is a dead FUSE mount: clear it with fusermount -uz ${path}`);
    }
    throw new UsageError(`mount point ${path} cannot be used: ${(err as Error).message}`);
  }
  if (!st.isDirectory()) throw new UsageError(`mount point ${path} is not a directory`);
  if (await isMounted(path)) {
    throw new UsageError(`mount point ${path} is in use by another mount: unmount it first (voldfs umount ${path})`);
  }
  if ((await readdir(path)).length > 0) {
    throw new UsageError(`mount point ${path} is not empty: voldfs would hide its files; use an empty directory`);
  }
  return path;
}

/** Where a background mount of `dir` keeps its pid and log. */
export function stateFiles(stateDir: string, dir: string): { pid: string; log: string; control: string } {
  const id = createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 16);
  return { pid: join(stateDir, `${id}.pid`), log: join(stateDir, `${id}.log`), control: join(stateDir, `${id}.sock`) };
}
