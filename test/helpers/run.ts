/**
 * Runs a command to completion with a hard time limit, capturing its output.
 *
 * The child gets its own process group so that a timeout kills it together with anything it
 * started (a shell pipeline, a daemon it forked but did not detach).
 */
import { spawn } from 'node:child_process';

/** Outcome of {@link run}. A non-zero exit is a result, not an exception. */
export interface RunResult {
  /** Exit code, or null if the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True if the time limit ended the process. */
  timedOut: boolean;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Full environment of the child (default: this process's environment). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Time limit in milliseconds after which the process group is killed (default 60,000). */
  timeoutMs?: number;
  /** Written to the child's standard input, which is then closed. */
  input?: string | Buffer;
}

/**
 * Runs `cmd args` and resolves when it has exited (or was killed at the time limit).
 * Rejects only if the command cannot be started (e.g. ENOENT for a missing binary).
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    // A child that exits without reading its input makes the write fail with EPIPE: not our error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Sends `signal` to the process group led by `pid` (falls back to the process alone).
 * Returns false if no such process exists any more.
 */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch (groupErr) {
    if ((groupErr as NodeJS.ErrnoException).code !== 'ESRCH') throw groupErr;
  }
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** True if a process with this PID exists (zombies included). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: it exists but belongs to someone else.
    return true;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Last `maxChars` characters of a text, for error messages that quote a log. */
export function tail(text: string, maxChars = 2000): string {
  return text.length <= maxChars ? text : `...${text.slice(-maxChars)}`;
}
