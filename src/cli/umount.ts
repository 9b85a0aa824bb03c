import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { UsageError, isMounted, stateFiles } from './mountpoint.js';

const run = promisify(execFile);

/**
 * Unmounts like umount(8): refuses while files are open (the kernel says busy), then waits
 * until the serving process has written everything out and exited.
 */
export async function unmount(dir: string, stateDir: string, timeoutMs = 120_000): Promise<void> {
  const path = resolve(dir);
  if (!(await isMounted(path))) throw new UsageError(`${path} is not mounted`);
  try {
    await run('fusermount', ['-u', path]);
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new UsageError(`cannot unmount ${path}: ${stderr || (err as Error).message} (close the files open there and retry)`);
  }
  const pid = await readPid(stateFiles(stateDir, path).pid);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return;
    await sleep(50);
  }
  throw new Error(`the voldfs process ${pid} serving ${path} did not exit within ${timeoutMs / 1000} s`);
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
