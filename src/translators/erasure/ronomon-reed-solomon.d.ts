// Types for the parts of @ronomon/reed-solomon (a native addon without its own typings) we use.
declare module '@ronomon/reed-solomon' {
  /** Opaque encoding context for one (k, m); reusable concurrently. */
  export type Context = Buffer;
  export const MAX_K: number;
  export const MAX_M: number;
  export function create(k: number, m: number): Context;
  /**
   * Computes the `targets` shards (bit i = shard i; data shards 0..k-1 live in `buffer`, parity
   * shards k..k+m-1 in `parity`) from the `sources` shards, in the threadpool.
   */
  export function encode(
    context: Context,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error: Error | undefined) => void,
  ): void;
}
