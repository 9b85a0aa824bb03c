/**
 * The kernel's mount table (/proc/self/mountinfo), as the helpers ask it: whether, and with
 * which filesystem type, a directory is mounted. Parsed by the CLI's own reader.
 */
import { readFile } from 'node:fs/promises';
import { mountEntries, type MountEntry } from '../../src/cli/mountpoint.js';

export type { MountEntry };

/** The current mount table of this process's mount namespace. */
export async function readMounts(): Promise<MountEntry[]> {
  return mountEntries(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** True if `fstype` is a FUSE filesystem type (`fuse`, `fuse.NAME`, `fuseblk`). */
export function isFuseType(fstype: string): boolean {
  return fstype.startsWith('fuse');
}

/** The top-most mount entry at exactly `dir` (the last one wins when mounts are stacked). */
export async function mountAt(dir: string): Promise<MountEntry | undefined> {
  const all = await readMounts();
  return all.filter((m) => m.dir === dir).at(-1);
}

/** True if a FUSE filesystem is mounted at exactly `dir`. */
export async function isFuseMounted(dir: string): Promise<boolean> {
  const entry = await mountAt(dir);
  return entry !== undefined && isFuseType(entry.fstype);
}

/** Mount points at or below `prefix` (a directory path), deepest first, so they can be unmounted in order. */
export async function mountsUnder(prefix: string): Promise<MountEntry[]> {
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const all = await readMounts();
  return all.filter((m) => m.dir === prefix || m.dir.startsWith(base)).sort((a, b) => b.dir.length - a.dir.length);
}
