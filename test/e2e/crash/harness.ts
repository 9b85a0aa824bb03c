/**
 * Running a real mount to a crash point and back: tracing which store calls an operation makes
 * (VOLDFS_CRASH_TRACE), choosing the calls worth crashing before, mounting with
 * VOLDFS_CRASH_AT, and clearing the dead mount (fusermount -uz) afterwards.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mountVoldfs, type VoldfsMount } from '../../helpers/mount.js';
import { run } from '../../helpers/run.js';

/**
 * Points whose store state differs from the one before: every write of a commit, and the
 * first read of each commit (a crash before anything was written). Reads inside a commit leave
 * the store as the write before them did, so crashing there adds nothing.
 */
const COMMIT_POINTS = new Set([
  'precheck.read',
  'intent.create',
  'lock.write',
  'intent.commit',
  'apply.write',
  'intent.delete',
  'abort.intent',
  'rollback.write',
  'resolve.abort',
  'resolve.write',
  'finish.write',
  'finish.delete',
  'store.commit',
]);

/** One line of a trace: the names a store call matched, each with its running count. */
type TraceLine = [name: string, count: number][];

function parseTrace(text: string): TraceLine[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) =>
      line.split(' ').map((item): [string, number] => {
        const at = item.lastIndexOf('#');
        return [item.slice(0, at), Number(item.slice(at + 1))];
      }),
    );
}

/**
 * The crash points (`name#n`, counted from a fresh process) of the store calls in
 * `lines[from, to)` of a trace, where earlier lines came from other operations of the same
 * process. Single-key writes are named by record kind (`chunk.put#2`); writes of garbage
 * records are left out, as background batches make their count depend on timing.
 */
export function crashPointsIn(lines: readonly TraceLine[], from: number, to: number): string[] {
  // Calls issued together (a commit's envelope replacements) may append their lines out of
  // order: what came before is the highest count, not the last one.
  const before = new Map<string, number>();
  for (const line of lines.slice(0, from)) for (const [name, n] of line) before.set(name, Math.max(n, before.get(name) ?? 0));
  const points: string[] = [];
  for (const line of lines.slice(from, to)) {
    const relative = (name: string, n: number) => `${name}#${n - (before.get(name) ?? 0)}`;
    const [[point, n], , alias] = line;
    if (alias !== undefined) {
      if (!alias[0].startsWith('garbage.')) points.push(relative(alias[0], alias[1]));
    } else if (COMMIT_POINTS.has(point)) {
      points.push(relative(point, n));
    }
  }
  return points;
}

/** Reads a trace file; missing means no store call was traced yet. */
export async function readTrace(file: string): Promise<TraceLine[]> {
  try {
    return parseTrace(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Number of complete lines in a trace file now. */
export async function traceLength(file: string): Promise<number> {
  return (await readTrace(file)).length;
}

/** What happened when a mount was run into a crash point. */
export interface CrashRun {
  /** The error the operation got (ENOTCONN, ECONNABORTED), or undefined if it completed. */
  readonly error: string | undefined;
  /** The crash line of the daemon's log, if it wrote one: which call and key kind it died at. */
  readonly crashed: { point: string; kind: string } | undefined;
  /** Milliseconds from mount to the operation's return. */
  readonly ms: number;
}

/**
 * Mounts the volume with VOLDFS_CRASH_AT=`crashAt`, runs `operation` on the mount, then clears
 * the mount (fusermount -uz if it died) and waits for the daemon to be gone.
 * @param env the store's VOLDFS_* variables (no mkfs is run)
 */
export async function runToCrash(
  env: Record<string, string>,
  crashAt: string,
  operation: (mountDir: string) => Promise<void>,
): Promise<CrashRun> {
  const mount = await mountVoldfs({ env: { ...env, VOLDFS_CRASH_AT: crashAt }, mkfs: false, exitWaitMs: 10_000 });
  const started = Date.now();
  let error: string | undefined;
  try {
    await operation(mount.dir);
  } catch (err) {
    error = (err as NodeJS.ErrnoException).code ?? String(err);
  }
  const ms = Date.now() - started;
  await clearDeadMount(mount);
  return { error, crashed: await crashLine(mount.logFile), ms };
}

/** fusermount -uz when the mount is dead (its daemon killed), then the helper's own teardown. */
export async function clearDeadMount(mount: VoldfsMount): Promise<void> {
  const dead = await stat(mount.dir).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ENOTCONN' || err.code === 'ECONNABORTED',
  );
  if (dead) {
    const r = await run('fusermount', ['-uz', mount.dir], { timeoutMs: 15_000 });
    if (r.code !== 0) throw new Error(`fusermount -uz ${mount.dir} failed: ${r.stderr.trim()}`);
  }
  await mount.unmount();
}

async function crashLine(logFile: string): Promise<{ point: string; kind: string } | undefined> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    if (!line.includes('VOLDFS_CRASH_AT reached')) continue;
    const parsed = JSON.parse(line) as { crashAt: string; occurrence: number; point: string; kind: string };
    return { point: `${parsed.crashAt}#${parsed.occurrence} (${parsed.point})`, kind: parsed.kind };
  }
  return undefined;
}

/** A directory inside the mount for case `i` of operation `id`. */
export function caseDir(root: string, id: string, i: number): string {
  return join(root, `${id}-${i}`);
}
