/**
 * Shared pieces of the POSIX check table: the check type, errno assertions, and running an
 * operation as an unprivileged user or through a helper program.
 */
import assert from 'node:assert/strict';
import { lstat, stat } from 'node:fs/promises';
import { run, type RunResult } from '../../helpers/run.js';

/** One named POSIX check. `run` gets a fresh, empty directory of its own and throws on failure. */
export interface PosixCheck {
  readonly name: string;
  run(dir: string): Promise<void>;
  /** Time limit in milliseconds when the default (60 s) is too short. */
  readonly timeoutMs?: number;
}

/** Uid/gid the permission checks run as (Debian's `nobody`/`nogroup`). */
export const NOBODY = 65534;

/** Asserts that `p` rejects with one of the given errno codes (e.g. 'ENOENT'). */
export async function expectErrno(p: Promise<unknown>, codes: string | readonly string[], what: string): Promise<void> {
  const want = typeof codes === 'string' ? [codes] : codes;
  let result: unknown;
  try {
    result = await p;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    assert.ok(code !== undefined && want.includes(code), `${what}: expected ${want.join('|')}, got ${code ?? String(err)}`);
    return;
  }
  assert.fail(`${what}: expected ${want.join('|')}, but it succeeded (${JSON.stringify(result) ?? 'undefined'})`);
}

/** Asserts that nothing exists at `path` (lstat gives ENOENT). */
export async function expectMissing(path: string, what = path): Promise<void> {
  await expectErrno(lstat(path), 'ENOENT', `${what} should not exist`);
}

/** Permission bits (incl. setuid/setgid/sticky) of `path`, not following a final symlink. */
export async function modeOf(path: string): Promise<number> {
  return (await lstat(path)).mode & 0o7777;
}

/** Nanosecond mtime and ctime of `path`. */
export async function timesNs(path: string): Promise<{ atime: bigint; mtime: bigint; ctime: bigint }> {
  const s = await stat(path, { bigint: true });
  return { atime: s.atimeNs, mtime: s.mtimeNs, ctime: s.ctimeNs };
}

/** Runs a command and asserts it exited 0; returns its stdout. */
export async function mustRun(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 30_000, ...opts });
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Runs a command expected to fail; returns the result for the caller to inspect. */
export async function mustFail(cmd: string, args: readonly string[]): Promise<RunResult> {
  const r = await run(cmd, args, { timeoutMs: 30_000 });
  assert.notEqual(r.code, 0, `${cmd} ${args.join(' ')} should have failed but exited 0`);
  return r;
}

/** Filesystem operations {@link asNobody} can run. */
export type NobodyOp = 'readdir' | 'readFile' | 'writeFile' | 'appendFile' | 'mkdir' | 'unlink' | 'stat' | 'rmdir';

/**
 * Runs one fs operation as uid/gid 65534 with no supplementary groups (via setpriv) and returns
 * 'OK' or the errno code it failed with.
 */
export async function asNobody(op: NobodyOp, path: string): Promise<string> {
  const script = `
    const fs = require('node:fs/promises');
    const [op, p] = process.argv.slice(1);
    const call = { readdir: () => fs.readdir(p), readFile: () => fs.readFile(p), writeFile: () => fs.writeFile(p, 'x'),
      appendFile: () => fs.appendFile(p, 'x'), mkdir: () => fs.mkdir(p), unlink: () => fs.unlink(p),
      stat: () => fs.stat(p), rmdir: () => fs.rmdir(p) }[op];
    call().then(() => console.log('OK'), (e) => console.log(e.code || String(e)));`;
  const r = await run(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', script, op, path],
    { timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, `setpriv node (${op} ${path}) exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * Runs a Python snippet (for syscalls node does not expose, e.g. setxattr flags) with the given
 * arguments in sys.argv[1:]; returns its stdout trimmed. The snippet prints its result.
 */
export async function python(code: string, args: readonly string[]): Promise<string> {
  return (await mustRun('python3', ['-c', code, ...args])).trim();
}

/** Waits long enough for the kernel's coarse clock to tick, so timestamps before and after differ. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 30));
}

export { patternBytes } from '../../helpers/pattern.js';
