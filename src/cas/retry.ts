import { ContentionError } from './transaction.js';

export { ContentionError };

/** What an attempt returns to ask for another try: it met a conflicting update. */
export const CONFLICT: unique symbol = Symbol('conflict');
export type Conflict = typeof CONFLICT;

export interface RetryOptions {
  /** Attempts in all, at least 1. Default 16. */
  readonly attempts?: number;
  /** Ceiling of the first backoff, ms; it doubles per attempt up to `maxDelayMs`. Default 2. */
  readonly baseDelayMs?: number;
  /** Largest backoff ceiling, ms; at least `baseDelayMs`. Default 250. */
  readonly maxDelayMs?: number;
  /** Uniform in [0, 1); inject a seeded one in tests. Default Math.random. */
  readonly random?: () => number;
  /** Waits `ms`; inject a fake in tests. Default setTimeout. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Names the operation in the ContentionError message, e.g. `rename`. Default `update`. */
  readonly operation?: string;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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
 * @throws ContentionError after `attempts` conflicts in a row (the message names the operation).
 * @throws RangeError on invalid options.
 */
export async function retryOnConflict<T>(
  fn: (attempt: number) => Promise<T | Conflict>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 16;
  const base = options.baseDelayMs ?? 2;
  const max = options.maxDelayMs ?? 250;
  const random = options.random ?? Math.random;
  const wait = options.sleep ?? sleep;
  if (!Number.isSafeInteger(attempts) || attempts < 1) {
    throw new RangeError(`retry attempts must be a whole number >= 1, got ${attempts}`);
  }
  if (!(base >= 0) || !(max >= base) || !Number.isFinite(max)) {
    throw new RangeError(`retry delays need 0 <= baseDelayMs <= maxDelayMs < Infinity, got ${base} and ${max}`);
  }
  for (let attempt = 0; attempt < attempts; attempt++) {
    const result = await fn(attempt);
    if (result !== CONFLICT) return result;
    if (attempt + 1 < attempts) await wait(backoffDelay(attempt, base, max, random));
  }
  throw new ContentionError(
    `${options.operation ?? 'update'} gave up after ${attempts} conflicting attempts: other clients ` +
      'keep changing the same records; try again, or check for a client stuck in a retry loop',
  );
}
