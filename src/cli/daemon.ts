import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Config } from './config.js';
import { stateFiles } from './mountpoint.js';

/** Environment variable telling a foreground mount to report readiness on fd 3. */
export const READY_FD_VARIABLE = 'VOLDFS_READY_FD';

/**
 * Node flags of the background mount process. V8 starts the old generation's limit small and
 * raises it slowly; the requests and worker replies in flight during a long write survive
 * young collections and fill it, so full collections ran every few tens of MB during large
 * writes (docs/performance.md has the figures). The limit is not a cap: the heap still grows
 * past it if it must.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];

/**
 * `voldfs mount DIR` without -f: starts `voldfs mount -f DIR` detached, with its logs in a
 * file, and returns once the child reports the mount ready (or fails, with its message).
 */
export async function mountInBackground(dir: string, config: Config, options: readonly string[] = []): Promise<{ pid: number; log: string }> {
  const files = stateFiles(config.stateDir, dir);
  await mkdir(dirname(files.log), { recursive: true });
  const logFile = await open(files.log, 'a');
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, main, 'mount', '-f', ...options.flatMap((o) => ['-o', o]), dir], {
    detached: true,
    stdio: ['ignore', logFile.fd, logFile.fd, 'pipe'],
    env: { ...process.env, [READY_FD_VARIABLE]: '3' },
  });
  await logFile.close();
  const channel = child.stdio[3] as Readable;
  let message = '';
  channel.setEncoding('utf8');
  const firstLine = new Promise<void>((resolve) => {
    channel.on('data', (chunk: string) => {
      message += chunk;
      if (message.includes('\n')) resolve();
    });
  });
  await Promise.race([firstLine, once(channel, 'end'), once(child, 'exit')]);
  if (message.startsWith('ready')) {
    channel.destroy();
    child.unref();
    return { pid: child.pid ?? 0, log: files.log };
  }
  if (child.exitCode === null) await once(child, 'exit');
  const detail = message.replace(/^error: /, '').trim() || (await tail(files.log));
  throw new Error(detail || `the mount process exited with code ${child.exitCode}`);
}

async function tail(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-5).join('\n');
}
