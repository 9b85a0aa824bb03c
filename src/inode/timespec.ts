/** A POSIX time with nanoseconds, as stat(2) reports it. */
export interface Timespec {
  readonly sec: number;
  readonly nsec: number;
}

let lastNow = 0n;

/**
 * The current wall-clock time. Strictly increasing within the process, so two changes in the
 * same millisecond still give distinct mtimes (make and rsync compare them).
 */
export function now(): Timespec {
  let ns = BigInt(Date.now()) * 1_000_000n;
  if (ns <= lastNow) ns = lastNow + 1n;
  lastNow = ns;
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}
