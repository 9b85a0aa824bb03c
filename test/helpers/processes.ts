/**
 * Finds processes by what their command line mentions, so that daemons a test started (and
 * whose PID it may have lost, e.g. after its worker was killed) can be ended.
 */
import { readdir, readFile } from 'node:fs/promises';

/** A process and its argument vector, read from /proc/PID/cmdline. */
export interface ProcessInfo {
  pid: number;
  argv: string[];
}

/**
 * Processes (other than this one) having an argument equal to `path` or starting with `path/`.
 * Processes that exit while being read are skipped.
 */
export async function processesMentioning(path: string): Promise<ProcessInfo[]> {
  const base = path.endsWith('/') ? path : `${path}/`;
  const found: ProcessInfo[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let raw: string;
    try {
      raw = await readFile(`/proc/${name}/cmdline`, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES') continue;
      throw err;
    }
    const argv = raw.split('\0').filter((a) => a !== '');
    if (argv.some((a) => a === path || a.startsWith(base))) found.push({ pid, argv });
  }
  return found;
}
