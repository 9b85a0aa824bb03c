/**
 * A copy through a mount that a fault interrupts: a source tree of files in a few directories,
 * copied file by file with a few copies in flight, each copy's outcome (done, or the errno it
 * failed with) and duration recorded, and a fault injected once a share of the files is done.
 * Then the files that failed are copied again, and everything that completed must read back
 * identical. Used by test/e2e/distributed-faults.test.ts.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { patternBytes } from '../../helpers/pattern.js';

/** One file of the source tree, relative to its root. */
export interface SourceFile {
  readonly path: string;
  readonly size: number;
}

/** Outcome of one file copy. */
export interface CopyOutcome {
  readonly path: string;
  /** undefined: the copy (open, write, close) completed. */
  readonly error?: string;
  /** Wall time of the copy, ms. */
  readonly ms: number;
  /** Started after the fault was injected. */
  readonly afterFault: boolean;
}

/**
 * Writes `count` files under `root` in `dirs` directories: mostly small, every seventh up to
 * 2 MiB so that chunked data is copied too. Deterministic for a given count.
 */
export async function makeSourceTree(root: string, count: number, dirs = 6): Promise<SourceFile[]> {
  const files: SourceFile[] = [];
  for (let i = 0; i < count; i++) {
    const path = `d${i % dirs}/sub${i % 2}/f${String(i).padStart(4, '0')}.bin`;
    const size = i % 7 === 3 ? 512 * 1024 + ((i * 104_729) % (1536 * 1024)) : (i * 7919) % 60_000;
    await mkdir(join(root, dirname(path)), { recursive: true });
    await writeFile(join(root, path), patternBytes(size, i + 1));
    files.push({ path, size });
  }
  return files;
}

/** Options of {@link copyWithFault}. */
export interface CopyWithFaultOptions {
  /** Copies in flight at once. Default 4. */
  readonly concurrency?: number;
  /** Fraction of the files (0..1) completed or failed before the fault is injected. */
  readonly faultAfter: number;
  /** Injects the fault; copies keep going meanwhile. */
  readonly fault: () => Promise<void>;
}

/** What {@link copyWithFault} saw. */
export interface CopyReport {
  readonly outcomes: CopyOutcome[];
  /** When the fault was injected (Date.now()), and how long injecting it took, ms. */
  readonly faultAt: number;
  readonly faultMs: number;
}

/**
 * Copies `files` from `src` to `dest` (directories created as needed), injecting the fault
 * once `faultAfter` of them are finished. A copy that fails is recorded with its errno code,
 * not retried; the copy goes on with the next file.
 */
export async function copyWithFault(src: string, dest: string, files: readonly SourceFile[], options: CopyWithFaultOptions): Promise<CopyReport> {
  const outcomes: CopyOutcome[] = [];
  let next = 0;
  let faultAt = 0;
  let faultMs = 0;
  let fault: Promise<void> | undefined;
  let faultError: unknown;
  const threshold = Math.floor(files.length * options.faultAfter);
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const file = files[next++];
      const started = Date.now();
      const afterFault = fault !== undefined;
      let error: string | undefined;
      try {
        await mkdir(join(dest, dirname(file.path)), { recursive: true });
        await copyFile(join(src, file.path), join(dest, file.path));
      } catch (err) {
        error = (err as NodeJS.ErrnoException).code ?? String(err);
      }
      outcomes.push({ path: file.path, error, ms: Date.now() - started, afterFault });
      if (fault === undefined && outcomes.length >= threshold) {
        faultAt = Date.now();
        // Held until the copy ends; a failure to inject is reported then, not lost.
        fault = options.fault().then(
          () => {
            faultMs = Date.now() - faultAt;
          },
          (err: unknown) => {
            faultError = err;
          },
        );
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
  await fault;
  if (faultError !== undefined) throw new Error('injecting the fault failed', { cause: faultError });
  return { outcomes, faultAt, faultMs };
}

/**
 * Copies again every file whose copy failed (removing what the failed copy left), up to
 * `attempts` rounds; returns the paths still failing with their errors.
 */
export async function recopyFailed(src: string, dest: string, outcomes: readonly CopyOutcome[], attempts = 3): Promise<string[]> {
  let failed = outcomes.filter((o) => o.error !== undefined).map((o) => o.path);
  const left: string[] = [];
  for (let round = 0; round < attempts && failed.length > 0; round++) {
    const again: string[] = [];
    left.length = 0;
    for (const path of failed) {
      try {
        await mkdir(join(dest, dirname(path)), { recursive: true });
        await rm(join(dest, path), { force: true });
        await copyFile(join(src, path), join(dest, path));
      } catch (err) {
        again.push(path);
        left.push(`${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    failed = again;
  }
  return left;
}

/** Paths among `paths` whose copy under `dest` differs from the source (or cannot be read). */
export async function differingFiles(src: string, dest: string, paths: readonly string[]): Promise<string[]> {
  const bad: string[] = [];
  for (const path of paths) {
    const want = await readFile(join(src, path));
    try {
      const got = await readFile(join(dest, path));
      if (!got.equals(want)) bad.push(`${path}: ${got.length} bytes read, ${want.length} written${got.length === want.length ? ', contents differ' : ''}`);
    } catch (err) {
      bad.push(`${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return bad;
}

/** "12 done, 3 failed (EIO 3), slowest 4123 ms": a one-line summary for the test log. */
export function summarizeCopy(outcomes: readonly CopyOutcome[]): string {
  const errors = new Map<string, number>();
  for (const o of outcomes) if (o.error !== undefined) errors.set(o.error, (errors.get(o.error) ?? 0) + 1);
  const failed = [...errors.values()].reduce((a, b) => a + b, 0);
  const slowest = Math.max(0, ...outcomes.map((o) => o.ms));
  const kinds = [...errors].map(([k, n]) => `${k} ${n}`).join(', ');
  return `${outcomes.length - failed} done, ${failed} failed${failed ? ` (${kinds})` : ''}, slowest ${slowest} ms`;
}
