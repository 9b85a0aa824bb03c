import { type ByteOffset, chunkAt, larger, minus } from './byte-offset.js';
import type { ChunkRef, FileData } from './file-data.js';

/** Chunks fetched ahead of a sequential read. */
const READAHEAD_CHUNKS = 8;
/**
 * A sequential read of a file too big for the block cache drops the blocks it has passed once
 * it is this many chunks beyond them (the kernel's readahead reads still in flight may be that
 * far behind).
 */
const DROP_BEHIND_CHUNKS = 2;
/** Chunk refs looked up at once by readahead: one store round trip per this many chunks. */
export const READAHEAD_REF_BATCH = 64;

/**
 * The read pattern of one open file: a sequential read fetches the next chunks before they are
 * asked for, and, in a file bigger than the block cache, drops the blocks it has passed.
 */
export class ReadAhead {
  /** End of the last read, to recognise sequential reads. */
  private lastReadEnd: ByteOffset = -1;
  /** The chunk whose reads last started readahead: the kernel reads a chunk in several pieces. */
  private startedAt = -1;
  /** Chunks below this one that a sequential read passed have left the block cache. */
  private droppedBelow = 0;

  /**
   * @param refs the open file's chunk refs, shared with its reads: readahead fills it in
   */
  constructor(
    private readonly data: FileData,
    private readonly ino: number,
    private readonly refs: Map<number, ChunkRef | undefined>,
  ) {}

  /** Told of a read of chunks `first` to `last` ending at `end`, in a file of `size` bytes. */
  onRead(offset: ByteOffset, end: ByteOffset, size: ByteOffset): void {
    const chunkSize = this.data.chunkSize;
    const first = chunkAt(offset, chunkSize);
    const last = chunkAt(minus(end, 1), chunkSize);
    // The kernel's readahead sends several reads at once, not always in order: near the last
    // read counts as sequential.
    const gap = minus(offset, this.lastReadEnd);
    const sequential = offset === 0 || (gap <= 2 * chunkSize && gap >= -2 * chunkSize);
    this.lastReadEnd = larger(end, sequential ? this.lastReadEnd : 0);
    if (sequential && last !== this.startedAt) {
      this.startedAt = last;
      this.fetch(last + 1, chunkAt(minus(size, 1), chunkSize));
    }
    if (sequential && size > this.data.blockCacheBytes) this.dropBehind(first - DROP_BEHIND_CHUNKS);
  }

  /** Forgets where readahead got to: the chunks changed, or the file was opened again. */
  reset(): void {
    this.startedAt = -1;
  }

  /**
   * Drops the blocks of chunks below `below` that a sequential read has passed. Only for files
   * bigger than the block cache: the cache cannot keep such a file for a second pass anyway (its
   * own blocks would evict each other), and kept, they would evict everything else and take a
   * fresh 1 MiB each, which the kernel must fault in; dropped, they go back to the pool and the
   * next blocks reuse memory already mapped. Smaller files stay cached for the next open.
   */
  private dropBehind(below: number): void {
    for (let i = Math.max(this.droppedBelow, below - READAHEAD_REF_BATCH); i < below; i++) {
      const ref = this.refs.get(i);
      if (ref) this.data.dropCached(ref, this.ino, i);
    }
    // Back to where the read is: a rewind and a second pass drop again.
    this.droppedBelow = Math.max(0, below);
  }

  private fetch(from: number, lastChunk: number): void {
    const indexes: number[] = [];
    for (let i = from; i <= Math.min(lastChunk, from + READAHEAD_CHUNKS - 1); i++) indexes.push(i);
    const unknown: number[] = [];
    if (indexes.some((i) => !this.refs.has(i))) {
      for (let i = from; i <= Math.min(lastChunk, from + READAHEAD_REF_BATCH - 1); i++) {
        if (!this.refs.has(i)) unknown.push(i);
      }
    }
    const lookup = unknown.length > 0 ? this.data.chunkRefs(this.ino, unknown) : Promise.resolve([]);
    lookup
      .then((refs) => {
        unknown.forEach((i, k) => this.refs.set(i, refs[k]));
        for (const i of indexes) {
          const ref = this.refs.get(i);
          if (ref) this.data.prefetch(ref, this.ino, i);
        }
      })
      .catch(() => undefined); // a failed readahead shows up on the real read
  }
}
