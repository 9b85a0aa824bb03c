// Mounting for the binding's tests: a fresh temp dir per mount, and an unmount that always
// leaves the machine clean (lazy fusermount as the last resort).
//
// The filesystem is served by this very process, so everything that touches the mount must be
// asynchronous: a synchronous call would block the thread that answers the kernel.
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Fuse from 'fuse-native';
import { MemoryFs } from './memory-fs.js';

const execFileAsync = promisify(execFile);

/** A live mount and how to take it down. */
export interface Mounted<F> {
  dir: string;
  fs: F;
  fuse: Fuse;
  /** Unmounts and removes the temp dir; safe to call twice. */
  close(): Promise<void>;
}

/** Runs a command to completion (in UTC); rejects with its stderr on a non-zero exit. */
export async function run(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 16 << 20, env: { ...process.env, TZ: 'UTC' } });
  return stdout;
}

/** True while something is mounted at dir (per /proc/self/mountinfo). */
export async function isMounted(dir: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === dir);
}

/** Mounts ops in a new temp dir that other users can reach (for allowOther tests). */
export async function mountOps<F>(fs: F, ops: Fuse.Operations, options: Fuse.Options = {}, attach?: (fuse: Fuse) => void): Promise<Mounted<F>> {
  const parent = await mkdtemp(join(tmpdir(), 'fuse-binding-'));
  await chmod(parent, 0o755);
  const dir = join(parent, 'mnt');
  await mkdir(dir);
  const fuse = new Fuse(dir, ops, options);
  attach?.(fuse);
  // Never remove the temp dir while something is still mounted on it.
  const cleanUp = async (): Promise<void> => {
    if (await isMounted(dir)) await run('fusermount', ['-uz', dir]);
    await rm(parent, { recursive: true, force: true });
  };
  try {
    await fuse.mount();
  } catch (err) {
    await cleanUp();
    throw err;
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    try {
      await fuse.unmount();
    } finally {
      await cleanUp();
    }
  };
  return { dir, fs, fuse, close };
}

/** Mounts a fresh MemoryFs. */
export async function mountMemoryFs(options: Fuse.Options = {}): Promise<Mounted<MemoryFs>> {
  const fs = new MemoryFs();
  return mountOps(fs, fs.ops, options, (fuse) => fs.attach(fuse));
}

/**
 * Waits until check() holds, polling every 10 ms; throws after timeoutMs. For requests the
 * kernel sends after the syscall returned (RELEASE follows close() asynchronously).
 */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
