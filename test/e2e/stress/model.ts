/**
 * The stress workers' operation log and what it implies: every operation a worker completed is
 * one JSON line; replaying a worker's log gives the names it must have left (with content and
 * link count), the bytes of its range in every shared file, and its append file's lines.
 * Operations that failed make what they touched uncertain; those are left out of the checks
 * and reported.
 */
import { patternBytes } from '../../helpers/pattern.js';

/** Layout every worker and the driver agree on (paths relative to the mount). */
export const LAYOUT = {
  /** Directories all workers create, rename, link and unlink their own files in. */
  dirs: ['shared/d0', 'shared/d1', 'shared/d2'],
  /** Files every worker writes its own byte range of. */
  rangeFiles: ['shared/ranges-0', 'shared/ranges-1', 'shared/ranges-2'],
  /** Bytes per worker's range. */
  rangeBytes: 16 * 1024,
  /** Offset of worker 0's range: ranges straddle the 512 KiB chunk boundary (memcached chunks). */
  rangeBase: 512 * 1024 - 4 * 16 * 1024,
  appendFile: (worker: number) => `shared/append-w${worker}`,
} as const;

export type LogEntry =
  | { op: 'create'; path: string; seed: number; len: number; ms: number }
  | { op: 'range'; file: string; offset: number; seed: number; ms: number }
  | { op: 'append'; seq: number; ms: number }
  | { op: 'rename'; from: string; to: string; ms: number }
  | { op: 'link'; from: string; to: string; ms: number }
  | { op: 'unlink'; path: string; ms: number }
  | { op: 'verify'; path: string; ok: boolean; detail?: string; ms: number }
  | { op: 'error'; failed: string; error: string; paths: string[]; file?: string; ms: number };

/** Content of a file a worker created. */
export const fileBytes = (seed: number, len: number): Buffer => patternBytes(len, seed);
/** A worker's range in a shared file after its write with `seed`. */
export const rangeBytes = (seed: number): Buffer => patternBytes(LAYOUT.rangeBytes, seed);
/** Line `seq` of a worker's append file. */
export const appendLine = (worker: number, seq: number): string => `w${worker} ${seq}\n`;

/** What one worker's log says must be in the volume. */
export interface Expected {
  /** Name -> content of the file it names. */
  readonly names: Map<string, { id: number; seed: number; len: number }>;
  /** Names an operation that failed may or may not have changed. */
  readonly uncertain: Set<string>;
  /** Files (ids as in `names`) one of whose names became uncertain: their link count is too. */
  readonly tainted: Set<number>;
  /** Shared file -> seed of this worker's last completed range write (undefined: uncertain). */
  readonly ranges: Map<string, number | undefined>;
  /** Lines in the append file, or undefined if an append failed (offsets unknown after it). */
  readonly appends: number | undefined;
  /** Operations completed, by kind; and failures by error code. */
  readonly counts: Record<string, number>;
  readonly errors: Record<string, number>;
  /** Slowest completed operation of each kind, ms. */
  readonly slowest: Record<string, number>;
  /** Read-backs of its own files that did not match, as the worker saw them. */
  readonly verifyFailures: string[];
}

/** Replays a worker's log. */
export function replay(entries: readonly LogEntry[]): Expected {
  const names = new Map<string, { id: number; seed: number; len: number }>();
  const uncertain = new Set<string>();
  const tainted = new Set<number>();
  const ranges = new Map<string, number | undefined>();
  let appends: number | undefined = 0;
  const counts: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const slowest: Record<string, number> = {};
  const verifyFailures: string[] = [];
  let nextId = 0;
  for (const e of entries) {
    counts[e.op] = (counts[e.op] ?? 0) + 1;
    slowest[e.op] = Math.max(slowest[e.op] ?? 0, e.ms);
    switch (e.op) {
      case 'create':
        names.set(e.path, { id: nextId++, seed: e.seed, len: e.len });
        uncertain.delete(e.path);
        break;
      case 'range':
        ranges.set(e.file, e.seed);
        break;
      case 'append':
        if (appends !== undefined) appends = e.seq + 1;
        break;
      case 'rename': {
        const moved = names.get(e.from);
        // Two names of one file: rename does nothing (POSIX).
        if (moved && moved.id === names.get(e.to)?.id) break;
        names.delete(e.from);
        if (moved) names.set(e.to, moved);
        break;
      }
      case 'link': {
        const target = names.get(e.from);
        if (target) names.set(e.to, target);
        break;
      }
      case 'unlink':
        names.delete(e.path);
        break;
      case 'verify':
        if (!e.ok) verifyFailures.push(`${e.path}: ${e.detail ?? 'mismatch'}`);
        break;
      case 'error':
        errors[e.error] = (errors[e.error] ?? 0) + 1;
        for (const p of e.paths) {
          const file = names.get(p);
          if (file) tainted.add(file.id);
          names.delete(p);
          uncertain.add(p);
        }
        if (e.failed === 'range' && e.file) ranges.set(e.file, undefined);
        if (e.failed === 'append') appends = undefined;
        break;
    }
  }
  return { names, uncertain, tainted, ranges, appends, counts, errors, slowest, verifyFailures };
}
