// Mounting example/memory-ll.js (the low-level binding's reference filesystem) for the
// lowlevel-*.test.ts files, in a temp dir below the run's temp root.
//
// The filesystem is served by this very process: everything that touches the mount must be
// asynchronous (fs/promises, child processes), never a synchronous call.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LowLevelOptions } from 'fuse-native/lowlevel';
import { MemoryFs } from 'fuse-native/example/memory-ll.js';
import { isFuseMounted } from '../helpers/mountinfo.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const execFileAsync = promisify(execFile);

export const SYSCALLS = join(import.meta.dirname, 'lowlevel-syscalls.py');

export interface LowLevelMount {
  dir: string;
  fs: MemoryFs;
  /** Unmounts (lazily from outside as a last resort) and removes the temp dir; safe twice. */
  close(): Promise<void>;
}

/** Mounts a fresh MemoryFs; prepare() may add handlers first (the ops table is fixed at mount). */
export async function mountMemoryLL(options: LowLevelOptions = {}, prepare?: (fs: MemoryFs) => void): Promise<LowLevelMount> {
  const parent = await makeTempDir('lowlevel');
  const dir = join(parent, 'mnt');
  await mkdir(dir);
  const fs = new MemoryFs({ entryTimeout: options.entryTimeout ?? 1, attrTimeout: options.attrTimeout ?? 1 });
  prepare?.(fs);
  const cleanUp = async (): Promise<void> => {
    if (await isFuseMounted(dir)) await execFileAsync('umount', ['-l', dir]);
    await removeTempDir(parent);
  };
  try {
    await fs.mount(dir, options);
  } catch (err) {
    await cleanUp();
    throw err;
  }
  let closed = false;
  return {
    dir,
    fs,
    async close() {
      if (closed) return;
      closed = true;
      try {
        await fs.unmount();
      } finally {
        await cleanUp();
      }
    },
  };
}

/** Runs a command; resolves with its stdout, rejects with its stderr on failure. */
export async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 16 << 20 });
  return stdout;
}

/** Runs lowlevel-syscalls.py and parses its JSON answer. */
export async function syscall(...args: Array<string | number>): Promise<{ ok: boolean; value?: number; errno?: string }> {
  return JSON.parse(await sh('/usr/bin/python3', [SYSCALLS, ...args.map(String)])) as { ok: boolean; value?: number; errno?: string };
}

/** Polls check() every 10 ms until it holds; throws after timeoutMs. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
