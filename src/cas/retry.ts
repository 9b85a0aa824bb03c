import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../backends/errors.js';

/**
 * Other clients kept changing the records an operation needs for longer than its retry budget.
 * The filesystem answers EIO (src/fs/errno.ts): the programs that meet it (open, mkdir, rename)
 * rarely retry an EAGAIN, and a minute of conflicts means a client stuck in a loop, not a race.
 */
export class ContentionError extends StoreError {}

/** What an attempt returns to ask for another try: it met a conflicting update. */
export const CONFLICT: unique symbol = Symbol('conflict');
export type Conflict = typeof CONFLICT;

/** How long an operation keeps retrying conflicts before it gives up, unless told otherwise. */
export const CONTENTION_BUDGET_MS = 60_000;

export interface RetryOptions {
  /** Attempts in all, at least 1. Default: no limit but the time budget. */
  readonly attempts?: number;
  /** Gives up once this long has passed since the first attempt. Default {@link CONTENTION_BUDGET_MS}. */
  readonly budgetMs?: number;
  /** Ceiling of the first backoff, ms; it doubles per attempt up to `maxDelayMs`. Default 2. */
  readonly baseDelayMs?: number;
  /** Largest backoff ceiling, ms; at least `baseDelayMs`. Default 250. */
  readonly maxDelayMs?: number;
  /** Uniform in [0, 1); inject a seeded one in tests. Default Math.random. */
  readonly random?: () => number;
  /** Waits `ms`; inject a fake in tests. Default setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** The clock, ms; inject a fake in tests. Default Date.now. */
  readonly now?: () => number;
  /** Names the operation in the ContentionError message, e.g. `rename`. Default `update`. */
  readonly operation?: string;
}


let conflicts = 0;

/** Conflicts met by every retry loop of this process so far (for the mount's statistics). */
export function conflictCount(): number {
  return conflicts;
}

/**
 * The backoff before attempt `attempt + 1`, after `attempt` (0-based) conflicted: "full
 * jitter", uniform in [0, min(max, base * 2^attempt)), which spreads racing clients apart
 * best for a given mean wait.
 */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.min(attempt, 30));
  return random() * ceiling;
}

/**
 * Runs a read-modify-write `fn` until it returns something other than {@link CONFLICT}, with
 * randomized exponential backoff between attempts. `fn` gets the 0-based attempt number and
 * must re-read everything it depends on each time. Errors `fn` throws pass through unretried.
 *
 * @throws ContentionError once `attempts` attempts conflicted or `budgetMs` has passed (the
 *   message names the operation).
 * @throws RangeError on invalid options.
 */
export async function retryOnConflict<T>(
  fn: (attempt: number) => Promise<T | Conflict>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? Infinity;
  const budget = options.budgetMs ?? CONTENTION_BUDGET_MS;
  const base = options.baseDelayMs ?? 2;
  const max = options.maxDelayMs ?? 250;
  const random = options.random ?? Math.random;
  const wait = options.sleep ?? sleep;
  const now = options.now ?? Date.now;
  if (attempts !== Infinity && (!Number.isSafeInteger(attempts) || attempts < 1)) {
    throw new RangeError(`retry attempts must be a whole number >= 1, got ${attempts}`);
  }
  if (!(budget >= 0)) throw new RangeError(`retry budgetMs must be >= 0, got ${budget}`);
  if (!(base >= 0) || !(max >= base) || !Number.isFinite(max)) {
    throw new RangeError(`retry delays need 0 <= baseDelayMs <= maxDelayMs < Infinity, got ${base} and ${max}`);
  }
  const started = now();
  let attempt = 0;
  for (;;) {
    const result = await fn(attempt);
    if (result !== CONFLICT) return result;
    conflicts++;
    attempt++;
    const elapsed = now() - started;
    if (attempt >= attempts || elapsed >= budget) {
      throw new ContentionError(
        `${options.operation ?? 'update'} gave up after ${attempt} conflicting attempts in ${Math.round(elapsed)} ms: ` +
          'other clients keep changing the same records; try again, or check for a client stuck in a retry loop',
      );
    }
    await wait(Math.min(backoffDelay(attempt - 1, base, max, random), budget - elapsed));
  }
}
