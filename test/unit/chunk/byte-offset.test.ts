import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_FILE_SIZE,
  chunkAt,
  chunkStart,
  chunksFor,
  exactOffset,
  inChunk,
  isFileSize,
  larger,
  minus,
  plus,
  sameOffset,
  sectorsOf,
  smaller,
} from '../../../src/chunk/byte-offset.js';

/** Offsets where doubles stop being exact, and the ends of the range. */
const offset = fc.oneof(
  fc.bigInt({ min: 0n, max: MAX_FILE_SIZE }),
  fc.constantFrom(0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, MAX_FILE_SIZE).chain((e) => fc.integer({ min: -3, max: 3 }).map((d) => e + BigInt(d))),
).filter((v) => v >= 0n && v <= MAX_FILE_SIZE);
const canonical = (v: bigint) => (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
const chunkSize = fc.constantFrom(1024, 4096, 512 * 1024, 1024 * 1024);

describe('byte offsets, exact to 2^63 - 1', () => {
  it('plus, minus, smaller, larger and sameOffset agree with bigint arithmetic, in canonical form', () => {
    fc.assert(
      fc.property(offset, offset, (a, b) => {
        const [x, y] = [exactOffset(a), exactOffset(b)];
        expect(plus(x, y)).toBe(canonical(a + b));
        expect(minus(x, y)).toBe(exactOffset(a - b));
        expect(smaller(x, y)).toBe(canonical(a < b ? a : b));
        expect(larger(x, y)).toBe(canonical(a > b ? a : b));
        expect(sameOffset(x, y)).toBe(a === b);
        expect(x < y).toBe(a < b);
      }),
      { seed: 63 },
    );
  });

  it('chunk arithmetic is exact and gives numbers', () => {
    fc.assert(
      fc.property(offset, chunkSize, (a, size) => {
        const x = exactOffset(a);
        const big = BigInt(size);
        expect(chunkAt(x, size)).toBe(Number(a / big));
        expect(inChunk(x, size)).toBe(Number(a % big));
        expect(chunksFor(x, size)).toBe(Number((a + big - 1n) / big));
        expect(chunkStart(chunkAt(x, size), size)).toBe(canonical((a / big) * big));
        expect(sectorsOf(x)).toBe(canonical((a + 511n) / 512n));
      }),
      { seed: 64 },
    );
  });

  it('exactOffset keeps numbers up to 2^53 - 1 and bigints above; isFileSize takes 0 to 2^63 - 1', () => {
    expect(exactOffset(2n ** 53n - 1n)).toBe(2 ** 53 - 1);
    expect(exactOffset(2n ** 53n)).toBe(2n ** 53n);
    expect(exactOffset(2 ** 53)).toBe(2n ** 53n);
    expect(isFileSize(0)).toBe(true);
    expect(isFileSize(MAX_FILE_SIZE)).toBe(true);
    expect(isFileSize(MAX_FILE_SIZE + 1n)).toBe(false);
    expect(isFileSize(-1)).toBe(false);
    expect(isFileSize(1.5)).toBe(false);
    expect(isFileSize('12')).toBe(false);
  });
});
