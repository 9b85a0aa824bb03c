/**
 * Reads the kernel's mount table (/proc/self/mountinfo) to tell whether, and with which
 * filesystem type, a directory is mounted.
 */
import { readFile } from 'node:fs/promises';

/** One line of /proc/self/mountinfo, reduced to what the helpers need. */
export interface MountEntry {
  /** Absolute mount point, with the kernel's octal escapes (`\040` etc.) decoded. */
  mountPoint: string;
  /** Filesystem type, e.g. `fuse`, `fuse.voldfs`, `tmpfs`. */
  fsType: string;
  /** Mount source (for FUSE, the fsname option). */
  source: string;
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses the text of a mountinfo file; malformed lines are skipped (the format is fixed). */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (fields.length < 10 || sep < 0 || sep + 2 >= fields.length) continue;
    entries.push({
      mountPoint: unescapeMountField(fields[4]),
      fsType: fields[sep + 1],
      source: unescapeMountField(fields[sep + 2]),
    });
  }
  return entries;
}

/** The current mount table of this process's mount namespace. */
export async function readMounts(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** True if `fsType` is a FUSE filesystem type (`fuse`, `fuse.NAME`, `fuseblk`). */
export function isFuseType(fsType: string): boolean {
  return fsType.startsWith('fuse');
}

/** The top-most mount entry at exactly `dir` (the last one wins when mounts are stacked). */
export async function mountAt(dir: string): Promise<MountEntry | undefined> {
  const all = await readMounts();
  return all.filter((m) => m.mountPoint === dir).at(-1);
}

/** True if a FUSE filesystem is mounted at exactly `dir`. */
export async function isFuseMounted(dir: string): Promise<boolean> {
  const entry = await mountAt(dir);
  return entry !== undefined && isFuseType(entry.fsType);
}

/** Mount points at or below `prefix` (a directory path), deepest first, so they can be unmounted in order. */
export async function mountsUnder(prefix: string): Promise<MountEntry[]> {
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  const all = await readMounts();
  return all
    .filter((m) => m.mountPoint === prefix || m.mountPoint.startsWith(base))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}
