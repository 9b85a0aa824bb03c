/** Default ceiling of a mount's caches and buffers (VOLDFS_MEMORY_MB). */
export const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;

/** How a mount's memory ceiling is shared out; every part is bounded on its own. */
export interface MemoryShares {
  /** Decoded blocks kept for reads (and readahead). */
  readonly blockCacheBytes: number;
  /** Block buffers kept for reuse once evicted from the block cache, in blocks. */
  readonly pooledBlocks: number;
  /** Chunk buffers of every open file's write-back buffer, dirty or being stored. */
  readonly writeBufferBytes: number;
  /** Metadata records cached (inodes, directory nodes, chunk maps). */
  readonly recordCacheBytes: number;
}

/**
 * Half for the block cache, a quarter for write-back, an eighth for the pool of recycled block
 * buffers and a sixteenth for the record cache; what is left covers fetches, commits and
 * requests in flight, which are bounded by count.
 */
export function shareMemory(totalBytes: number, chunkSize: number): MemoryShares {
  return {
    blockCacheBytes: Math.floor(totalBytes / 2),
    pooledBlocks: Math.max(1, Math.floor(totalBytes / 8 / chunkSize)),
    writeBufferBytes: Math.max(chunkSize, Math.floor(totalBytes / 4)),
    recordCacheBytes: Math.floor(totalBytes / 16),
  };
}
