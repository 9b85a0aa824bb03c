import { xxh64 } from '@node-rs/xxhash';

/**
 * Per-fragment checksums: XXH64 (seed 0), 8 bytes big-endian per fragment, packed into one
 * Buffer in the block ref. It guards against accidental corruption only; tampering is crypt's
 * job. XXH64 is the fastest of the checksums measured and, at 64 bits, stronger than CRC-32C
 * (figures in docs/performance.md, "Figures behind choices in the code").
 */

/** Bytes of one fragment checksum. */
export const CHECKSUM_BYTES = 8;

/** Checksums of `fragments`, packed in order. */
export function checksumAll(fragments: readonly Buffer[]): Buffer {
  const sums = Buffer.alloc(CHECKSUM_BYTES * fragments.length);
  fragments.forEach((f, i) => sums.writeBigUInt64BE(xxh64(f), i * CHECKSUM_BYTES));
  return sums;
}

/** Whether fragment `index`'s bytes match its checksum in `sums`. */
export function checksumMatches(sums: Buffer, index: number, fragment: Buffer): boolean {
  return sums.readBigUInt64BE(index * CHECKSUM_BYTES) === xxh64(fragment);
}
