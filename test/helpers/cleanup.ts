/**
 * Last-resort cleanup of a temp root: detaches every mount below it, ends every process whose
 * command line names a path below it (daemons a dead test worker left behind), then deletes it.
 */
import { isFuseType, mountsUnder } from './mountinfo.js';
import { processesMentioning } from './processes.js';
import { killGroup, processExists, run, sleep } from './run.js';
import { removeTempDir } from './temp-dir.js';

/** What {@link cleanupTree} had to clean up; all empty when the tests tidied up after themselves. */
export interface CleanupReport {
  mounts: string[];
  pids: number[];
}

/**
 * Cleans everything under `root` and removes it.
 * @throws Error if a mount cannot be detached (then `root` is left in place, not deleted).
 */
export async function cleanupTree(root: string): Promise<CleanupReport> {
  const report: CleanupReport = { mounts: [], pids: [] };
  for (const m of await mountsUnder(root)) {
    report.mounts.push(`${m.dir} (${m.fstype})`);
    const r = isFuseType(m.fstype)
      ? await run('fusermount', ['-uz', m.dir], { timeoutMs: 15_000 })
      : await run('umount', ['-l', m.dir], { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`cannot detach ${m.dir}: ${r.stderr.trim()}`);
  }
  const procs = await processesMentioning(root);
  for (const p of procs) {
    report.pids.push(p.pid);
    killGroup(p.pid, 'SIGTERM');
  }
  const deadline = Date.now() + 3000;
  while (procs.some((p) => processExists(p.pid)) && Date.now() < deadline) await sleep(50);
  for (const p of procs) if (processExists(p.pid)) killGroup(p.pid, 'SIGKILL');
  const left = await mountsUnder(root);
  if (left.length > 0) throw new Error(`still mounted under ${root}: ${left.map((m) => m.dir).join(', ')}`);
  await removeTempDir(root);
  return report;
}
