import { describe, expect, it } from 'vitest';
import { KeyLock } from '../../../src/cas/key-lock.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('KeyLock', () => {
  it('runs holders of the same key one at a time, in arrival order', async () => {
    const lock = new KeyLock();
    const events: string[] = [];
    let inside = 0;
    const job = (name: string) =>
      lock.withLock('k', async () => {
        inside++;
        expect(inside).toBe(1);
        events.push(`${name}+`);
        await tick();
        await tick();
        events.push(`${name}-`);
        inside--;
        return name;
      });
    expect(await Promise.all([job('a'), job('b'), job('c')])).toEqual(['a', 'b', 'c']);
    expect(events).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  });

  it('lets different keys run at the same time', async () => {
    const lock = new KeyLock();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = lock.withLock('x', () => gate);
    let otherRan = false;
    await lock.withLock('y', async () => {
      otherRan = true;
    });
    expect(otherRan).toBe(true);
    expect(lock.isLocked('x')).toBe(true);
    release();
    await slow;
  });

  it('releases when the holder throws, and forgets idle keys', async () => {
    const lock = new KeyLock();
    await expect(
      lock.withLock('k', async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await lock.withLock('k', async () => 'after')).toBe('after');
    expect(lock.size).toBe(0);
  });

  it('a release called twice does not let two holders in', async () => {
    const lock = new KeyLock();
    const first = await lock.acquire('k');
    const second = lock.acquire('k');
    const third = lock.acquire('k');
    first();
    first();
    const releaseSecond = await second;
    let thirdIn = false;
    void third.then(() => (thirdIn = true));
    await tick();
    expect(thirdIn).toBe(false);
    releaseSecond();
    (await third)();
    expect(lock.size).toBe(0);
  });

  it('withLocks takes overlapping key sets in sorted order without deadlock', async () => {
    const lock = new KeyLock();
    const order: string[] = [];
    const job = (keys: string[], name: string) =>
      lock.withLocks(keys, async () => {
        order.push(name);
        await tick();
      });
    await Promise.all([job(['b', 'a'], 'ba'), job(['a', 'b'], 'ab'), job(['b', 'c', 'b'], 'bc')]);
    expect(order.sort()).toEqual(['ab', 'ba', 'bc']);
    expect(lock.size).toBe(0);
  });
});
