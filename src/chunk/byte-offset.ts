/**
 * A byte offset or a file size, exact up to 2^63 - 1: a number up to 2^53 - 1 (every file in
 * practice, and the cheap path), a bigint above. The two compare exactly with < and >; use these
 * helpers for arithmetic and equality, and {@link exactOffset} for values from outside.
 */
export type ByteOffset = number | bigint;

/** Largest file size: what the kernel's loff_t can express. Past it, EFBIG. */
export const MAX_FILE_SIZE = 2n ** 63n - 1n;

/** Whether `value` is a file size voldfs can hold: an integer from 0 to {@link MAX_FILE_SIZE}. */
export function isFileSize(value: unknown): value is ByteOffset {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER + 1;
  return typeof value === 'bigint' && value >= 0n && value <= MAX_FILE_SIZE;
}

/** The canonical form of an integer: a number when it is safe, else a bigint. */
export function exactOffset(value: number | bigint): ByteOffset {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : BigInt(value);
  return value <= Number.MAX_SAFE_INTEGER && value >= -Number.MAX_SAFE_INTEGER ? Number(value) : value;
}

export function plus(a: ByteOffset, b: ByteOffset): ByteOffset {
  if (typeof a === 'number' && typeof b === 'number') {
    const sum = a + b;
    if (Number.isSafeInteger(sum)) return sum;
  }
  return exactOffset(BigInt(a) + BigInt(b));
}

export function minus(a: ByteOffset, b: ByteOffset): ByteOffset {
  if (typeof a === 'number' && typeof b === 'number') {
    const difference = a - b;
    if (Number.isSafeInteger(difference)) return difference;
  }
  return exactOffset(BigInt(a) - BigInt(b));
}

export function sameOffset(a: ByteOffset, b: ByteOffset): boolean {
  // == compares a number and a bigint by value; === would call 2^60 and 2^60n different.
  return a == b;
}

export function smaller(a: ByteOffset, b: ByteOffset): ByteOffset {
  return b < a ? b : a;
}

export function larger(a: ByteOffset, b: ByteOffset): ByteOffset {
  return b > a ? b : a;
}

/**
 * The chunk holding byte `offset` (floor(offset / chunkSize)). A number whatever the offset:
 * chunks are at least 1 KiB, so 2^63 bytes are at most 2^53 chunks.
 */
export function chunkAt(offset: ByteOffset, chunkSize: number): number {
  return typeof offset === 'number' ? Math.floor(offset / chunkSize) : Number(offset / BigInt(chunkSize));
}

/** Chunks needed to hold `size` bytes (ceil(size / chunkSize)). */
export function chunksFor(size: ByteOffset, chunkSize: number): number {
  if (typeof size === 'number') return Math.ceil(size / chunkSize);
  const big = BigInt(chunkSize);
  return Number((size + big - 1n) / big);
}

/** Where chunk `index` starts. */
export function chunkStart(index: number, chunkSize: number): ByteOffset {
  const start = index * chunkSize;
  return Number.isSafeInteger(start) ? start : BigInt(index) * BigInt(chunkSize);
}

/** `offset` within its chunk (offset mod chunkSize). */
export function inChunk(offset: ByteOffset, chunkSize: number): number {
  return typeof offset === 'number' ? offset % chunkSize : Number(offset % BigInt(chunkSize));
}

/** Whole 512-byte units of `bytes`, rounded up (st_blocks). */
export function sectorsOf(bytes: ByteOffset): ByteOffset {
  return typeof bytes === 'number' ? Math.ceil(bytes / 512) : exactOffset((bytes + 511n) / 512n);
}
