import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { mountedDirs } from './mountpoint.js';

/** Where the kernel keeps a mount's readahead window, by the mount's `major:minor`. */
export function readaheadFile(device: string, sysfs = '/sys'): string {
  return `${sysfs}/class/bdi/${device}/read_ahead_kb`;
}

/**
 * Sets how far ahead the kernel reads a file of the mount at `dir`, in KiB (0: leave it).
 *
 * The kernel gives a FUSE mount 128 KiB, and the max_readahead of FUSE's INIT reply can only
 * lower that (asking libfuse3 for 1 MiB leaves 128 KiB), so a sequential
 * reader has about one 128 KiB request in flight and waits a whole round trip through the
 * daemon for each. A wider window keeps several requests in flight, which reads faster
 * (docs/performance.md).
 * Only root may write the setting; anyone else keeps the kernel's window, which is only slower.
 */
export async function setMountReadahead(dir: string, kib: number, log: Logger, sysfs = '/sys'): Promise<void> {
  if (kib === 0) return;
  const entry = (await mountedDirs()).get(dir);
  if (!entry) {
    log.warn({ mountpoint: dir }, 'readahead not set: the mount is missing from /proc/self/mountinfo');
    return;
  }
  const file = readaheadFile(entry.device, sysfs);
  try {
    await writeFile(file, `${kib}\n`);
    const now = (await readFile(file, 'utf8')).trim();
    log.debug({ mountpoint: dir, readaheadKib: Number(now) }, 'kernel readahead set');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    log.info(
      { mountpoint: dir, file, code },
      `kernel readahead left at its default: cannot write ${file} (only root can); set VOLDFS_READAHEAD_KB=0 to skip this`,
    );
  }
}
