/** The one timeout race: a promise, or what the timeout gives after `ms`. */
import { describe, expect, it } from 'vitest';
import { settleWithin, withTimeout } from '../../../src/backends/timeout.js';

const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

describe('settleWithin', () => {
  it('gives the promise when it settles first, the fallback when the time runs out', async () => {
    expect(await settleWithin(later(5, 'done'), 200, () => 'late')).toBe('done');
    expect(await settleWithin(later(200, 'done'), 5, () => 'late')).toBe('late');
    await expect(settleWithin(Promise.reject(new Error('boom')), 200, () => 'late')).rejects.toThrow('boom');
  });

  it('withTimeout rejects with the error made at the timeout, and absorbs a late rejection', async () => {
    const late = new Promise((_, reject) => setTimeout(() => reject(new Error('late failure')), 30));
    await expect(withTimeout(late, 5, () => new Error('no answer'))).rejects.toThrow('no answer');
    await new Promise((resolve) => setTimeout(resolve, 50)); // an unhandled rejection would fail the run
  });
});
