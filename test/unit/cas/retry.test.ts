import { describe, expect, it } from 'vitest';
import { StoreError } from '../../../src/backends/errors.js';
import { CONFLICT, ContentionError, backoffDelay, retryOnConflict } from '../../../src/cas/retry.js';
import { ContentionError as TransactionContentionError } from '../../../src/cas/transaction.js';

/** A fake sleep that records the delays asked for. */
function recorder(): { delays: number[]; sleep: (ms: number) => Promise<void> } {
  const delays: number[] = [];
  return { delays, sleep: async (ms) => void delays.push(ms) };
}

describe('retryOnConflict', () => {
  it('returns the first non-conflict result, passing the attempt number', async () => {
    const { delays, sleep } = recorder();
    const seen: number[] = [];
    const result = await retryOnConflict(
      async (attempt) => {
        seen.push(attempt);
        return attempt < 2 ? CONFLICT : 'done';
      },
      { sleep, random: () => 0.5 },
    );
    expect(result).toBe('done');
    expect(seen).toEqual([0, 1, 2]);
    expect(delays.length).toBe(2);
  });

  it('backs off with full jitter under an exponentially growing, capped ceiling', async () => {
    const { delays, sleep } = recorder();
    await expect(
      retryOnConflict(async () => CONFLICT, { attempts: 7, baseDelayMs: 10, maxDelayMs: 100, random: () => 0.5, sleep }),
    ).rejects.toBeInstanceOf(ContentionError);
    // Six waits between seven attempts: ceilings 10, 20, 40, 80, 100, 100; half of each.
    expect(delays).toEqual([5, 10, 20, 40, 50, 50]);
    expect(backoffDelay(3, 10, 1000, () => 0)).toBe(0);
    expect(backoffDelay(3, 10, 1000, () => 0.999)).toBeCloseTo(79.92);
  });

  it('throws a ContentionError naming the operation after the bound, a StoreError the fs maps to EIO', async () => {
    let calls = 0;
    const err = await retryOnConflict(
      async () => {
        calls++;
        return CONFLICT;
      },
      { attempts: 3, operation: 'rename', sleep: async () => undefined },
    ).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(err).toBeInstanceOf(ContentionError);
    expect(err).toBeInstanceOf(StoreError);
    // One class for the whole cas layer.
    expect(err).toBeInstanceOf(TransactionContentionError);
    expect((err as Error).message).toMatch(/^rename gave up after 3 conflicting attempts in \d+ ms: other clients keep changing/);
  });

  it('keeps retrying until its time budget is spent, then gives up without waiting past it', async () => {
    let clock = 0;
    const waits: number[] = [];
    let calls = 0;
    const err = await retryOnConflict(
      async () => {
        calls++;
        return CONFLICT;
      },
      {
        budgetMs: 1000,
        baseDelayMs: 100,
        maxDelayMs: 400,
        random: () => 0.999,
        now: () => clock,
        sleep: async (ms) => {
          waits.push(ms);
          clock += ms;
        },
      },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContentionError);
    // Waits of about 100, 200, 400, then the 300 left of the budget: five attempts in all.
    expect(calls).toBe(5);
    expect(waits.reduce((a, b) => a + b, 0)).toBeCloseTo(1000);
    expect((err as Error).message).toMatch(/gave up after 5 conflicting attempts in 1000 ms/);
  });

  it('has no attempt limit by default: a long run of conflicts that ends succeeds', async () => {
    const result = await retryOnConflict(async (attempt) => (attempt < 500 ? CONFLICT : attempt), {
      sleep: async () => undefined,
      now: () => 0,
    });
    expect(result).toBe(500);
  });

  it('lets errors of the attempt through without retrying', async () => {
    let calls = 0;
    await expect(
      retryOnConflict(async () => {
        calls++;
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(calls).toBe(1);
  });

  it('does not sleep after the last attempt', async () => {
    const { delays, sleep } = recorder();
    await expect(retryOnConflict(async () => CONFLICT, { attempts: 1, sleep })).rejects.toBeInstanceOf(ContentionError);
    expect(delays).toEqual([]);
  });

  it('rejects invalid options with clear messages', async () => {
    const fn = async (): Promise<number> => 1;
    await expect(retryOnConflict(fn, { attempts: 0 })).rejects.toThrow(/attempts must be a whole number >= 1, got 0/);
    await expect(retryOnConflict(fn, { baseDelayMs: 10, maxDelayMs: 5 })).rejects.toThrow(/0 <= baseDelayMs <= maxDelayMs/);
    await expect(retryOnConflict(fn, { baseDelayMs: -1 })).rejects.toThrow(/baseDelayMs/);
    await expect(retryOnConflict(fn, { budgetMs: -1 })).rejects.toThrow(/budgetMs must be >= 0/);
  });
});
