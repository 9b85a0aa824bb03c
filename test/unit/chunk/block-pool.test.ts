import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BlockPool } from '../../../src/chunk/block-pool.js';

describe('BlockPool', () => {
  it('hands out exactly the bytes asked for, in memory of its capacity', () => {
    const pool = new BlockPool(1024, 4);
    const buf = pool.take(100);
    expect(buf.length).toBe(100);
    expect(buf.buffer.byteLength).toBe(1024);
    expect(pool.owns(buf)).toBe(true);
  });

  it('gives ordinary memory, not its own, above its capacity', () => {
    const pool = new BlockPool(1024, 4);
    const big = pool.take(1025);
    expect(big.length).toBe(1025);
    expect(pool.owns(big)).toBe(false);
  });

  it('reuses recycled memory only from the next macrotask on', async () => {
    const pool = new BlockPool(1024, 4);
    const first = pool.take(1024);
    first.fill(7);
    pool.recycle(first);
    // A reader holding `first` in this microtask checkpoint must still see its bytes.
    const meanwhile = pool.take(1024);
    expect(meanwhile.buffer).not.toBe(first.buffer);
    await Promise.resolve();
    expect(pool.freeCount).toBe(0);
    await nextMacrotask();
    expect(pool.freeCount).toBe(1);
    expect(pool.take(10).buffer).toBe(first.buffer);
  });

  it('ignores buffers it did not make, and a buffer recycled twice', async () => {
    const pool = new BlockPool(1024, 4);
    pool.recycle(Buffer.alloc(1024));
    const own = pool.take(512);
    pool.recycle(own);
    pool.recycle(own);
    await nextMacrotask();
    expect(pool.freeCount).toBe(1);
    const a = pool.take(1);
    const b = pool.take(1);
    expect(a.buffer).toBe(own.buffer);
    expect(b.buffer).not.toBe(own.buffer);
  });

  it('keeps at most maxFree buffers for reuse', async () => {
    const pool = new BlockPool(64, 2);
    const bufs = Array.from({ length: 5 }, () => pool.take(64));
    for (const b of bufs) pool.recycle(b);
    await nextMacrotask();
    expect(pool.freeCount).toBe(2);
  });
});
