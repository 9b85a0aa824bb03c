import { type ByteOffset, chunkAt, chunkStart, inChunk, minus, plus } from './byte-offset.js';
import type { AlongsideChunk, FileData } from './file-data.js';
import type { Spiller } from './write-memory.js';

/** Bytes a chunk's write memory starts with at least; below a chunk, it grows as writes reach further. */
const SMALL_CHUNK_BYTES = 64 * 1024;

/** Byte ranges written into one chunk and not yet stored, kept sorted and merged. */
class DirtyChunk {
  readonly ranges: [number, number][] = [];

  /**
   * @param bytes memory for the chunk's first `bytes.length` bytes: a small file's chunk gets
   *   small memory, since a whole chunk from the pool costs fresh pages when none is free
   */
  constructor(public bytes: Buffer) {}

  /** Makes `bytes` reach `end`, keeping what was written. */
  reach(end: number, whole: () => Buffer): void {
    if (end <= this.bytes.length) return;
    const grown = end > SMALL_CHUNK_BYTES / 2 ? whole() : Buffer.allocUnsafe(Math.min(SMALL_CHUNK_BYTES, 2 ** Math.ceil(Math.log2(end))));
    for (const [s, e] of this.ranges) this.bytes.copy(grown, s, s, e);
    this.bytes = grown;
  }

  add(start: number, end: number): void {
    const merged: [number, number][] = [];
    let s = start;
    let e = end;
    for (const [rs, re] of this.ranges) {
      if (re < s || rs > e) merged.push([rs, re]);
      else {
        s = Math.min(s, rs);
        e = Math.max(e, re);
      }
    }
    merged.push([s, e]);
    merged.sort((a, b) => a[0] - b[0]);
    this.ranges.splice(0, this.ranges.length, ...merged);
  }

  covers(length: number): boolean {
    return this.ranges.length === 1 && this.ranges[0][0] === 0 && this.ranges[0][1] >= length;
  }

  /** The chunk's new content: what the store holds, overlaid with what was written here. */
  compose(current: Buffer | undefined): Buffer {
    const end = this.ranges[this.ranges.length - 1][1];
    // The chunk is out of the dirty map once its store begins: its buffer can be handed over.
    if (!current && this.covers(end)) return this.bytes.subarray(0, end);
    const out = Buffer.alloc(Math.max(end, current?.length ?? 0));
    current?.copy(out);
    for (const [s, e] of this.ranges) this.bytes.copy(out, s, s, e);
    return out;
  }
}

export interface WriteBufferOptions {
  /** Chunk flushes in flight at once for this file. Default 16. */
  readonly maxInflight?: number;
  /** Dirty chunks held before the oldest is flushed, bounding memory. Default 64. */
  readonly maxDirtyChunks?: number;
  /** Told when a chunk's map record has changed, so cached refs of it can be dropped. */
  readonly onChunkStored?: (index: number) => void;
  /**
   * Called before a chunk's bytes are stored, with the file offset they reach; resolves once
   * the file's stored size covers it. Growing the size before the data means a crash can leave
   * zeros at the end of a file, never bytes past its end that a later growth would expose.
   */
  readonly beforeStore?: (end: ByteOffset) => Promise<void>;
  /**
   * For a file whose last dirty chunk is stored alone (a small file's close): writes to commit
   * with that chunk's map instead of `beforeStore`, so size and data land in one commit.
   * Undefined, or returning undefined: `beforeStore` then the chunk, as for any other chunk.
   */
  readonly alongside?: () => AlongsideChunk | undefined;
}

/**
 * Write-back buffer of one open file: FUSE's 128 KiB writes are gathered into whole chunks, and
 * a chunk is stored (one block, one chunk map CAS) as soon as it is complete, in the background
 * and pipelined with the next ones, so a sequential copy stores whole blocks. Partial chunks
 * wait for flush(). A background failure fails every later write and the next flush (close),
 * which clears it, as NFS does.
 */
export class WriteBuffer implements Spiller {
  private readonly dirty = new Map<number, DirtyChunk>();
  private readonly inflight = new Map<number, Promise<void>>();
  private failure: unknown;
  private readonly maxInflight: number;
  private readonly maxDirty: number;
  private readonly onChunkStored: (index: number) => void;
  private readonly beforeStore: (end: ByteOffset) => Promise<void>;
  private readonly alongside: () => AlongsideChunk | undefined;

  constructor(
    private readonly data: FileData,
    private readonly ino: number,
    options: WriteBufferOptions = {},
  ) {
    this.maxInflight = options.maxInflight ?? 16;
    this.maxDirty = options.maxDirtyChunks ?? 64;
    this.onChunkStored = options.onChunkStored ?? (() => undefined);
    this.beforeStore = options.beforeStore ?? (async () => undefined);
    this.alongside = options.alongside ?? (() => undefined);
  }

  /** Copies `bytes` (FUSE's buffer is reused after we answer) into the chunks it spans. */
  async write(offset: ByteOffset, bytes: Buffer): Promise<void> {
    // Kept until flush() reports it: the kernel turns an error in the middle of a write(2)
    // that already stored some pages into a short write, and the program writes the rest, so
    // an error cleared here would reach nobody and close() would succeed over lost bytes.
    if (this.failure !== undefined) throw this.failure;
    const size = this.data.chunkSize;
    let done = 0;
    while (done < bytes.length) {
      const pos = plus(offset, done);
      const index = chunkAt(pos, size);
      const within = inChunk(pos, size);
      const n = Math.min(bytes.length - done, size - within);
      // A chunk being stored must land before new bytes for it start a new dirty chunk.
      while (this.inflight.has(index)) await this.inflight.get(index);
      let chunk = this.dirty.get(index);
      if (!chunk) {
        chunk = new DirtyChunk(within + n > SMALL_CHUNK_BYTES / 2 ? this.data.chunkBuffer(size) : Buffer.allocUnsafe(0));
        this.dirty.set(index, chunk);
        this.data.writeMemory.take(this);
      }
      chunk.reach(within + n, () => this.data.chunkBuffer(size));
      bytes.copy(chunk.bytes, within, done, done + n);
      chunk.add(within, within + n);
      done += n;
      if (chunk.covers(size)) await this.startFlush(index);
    }
    if (this.dirty.size > this.maxDirty) await this.startFlush(this.dirty.keys().next().value as number);
    await this.data.writeMemory.relieve(this);
  }

  get hasDirty(): boolean {
    return this.dirty.size > 0;
  }

  async spillOldest(): Promise<void> {
    const oldest = this.dirty.keys().next();
    if (!oldest.done) await this.startFlush(oldest.value);
  }

  /** Whether chunks are being stored right now. */
  get storing(): boolean {
    return this.inflight.size > 0;
  }

  /** Whether a read of chunk `index` must wait for settle() first. */
  pending(index: number): boolean {
    return this.dirty.has(index) || this.inflight.has(index);
  }

  /** Stores chunk `index` if it is dirty and waits until it is; reads call this first. */
  async settle(index: number): Promise<void> {
    if (this.dirty.has(index)) await this.startFlush(index);
    await this.inflight.get(index);
  }

  /** Stores every dirty chunk and waits for all; throws the first failure. */
  async flush(): Promise<void> {
    const alone = this.dirty.size === 1 && this.inflight.size === 0;
    for (const index of [...this.dirty.keys()]) await this.startFlush(index, alone);
    await Promise.all(this.inflight.values());
    this.throwFailure();
  }

  /** Forgets dirty bytes at or past `size` (the file was truncated under them). */
  async truncate(size: ByteOffset): Promise<void> {
    await Promise.all(this.inflight.values());
    const chunkSize = this.data.chunkSize;
    for (const [index, chunk] of this.dirty) {
      const start = chunkStart(index, chunkSize);
      if (start >= size) this.drop(index);
      else if (plus(start, chunkSize) > size) {
        const keep = Number(minus(size, start));
        const ranges = chunk.ranges.filter(([s]) => s < keep).map(([s, e]): [number, number] => [s, Math.min(e, keep)]);
        chunk.ranges.splice(0, chunk.ranges.length, ...ranges);
        if (ranges.length === 0) this.drop(index);
      }
    }
  }

  private drop(index: number): void {
    this.dirty.delete(index);
    this.data.writeMemory.give(false);
    if (this.dirty.size === 0 && this.inflight.size === 0) this.data.writeMemory.forget(this);
  }

  private async startFlush(index: number, alone = false): Promise<void> {
    while (this.inflight.size >= this.maxInflight) await Promise.race(this.inflight.values());
    await this.inflight.get(index);
    const chunk = this.dirty.get(index);
    if (!chunk) return;
    this.dirty.delete(index);
    const memory = this.data.writeMemory;
    memory.storeStarted();
    const end = plus(chunkStart(index, this.data.chunkSize), chunk.ranges[chunk.ranges.length - 1][1]);
    const alongside = alone && this.inflight.size === 0 ? this.alongside() : undefined;
    const job = (alongside ? Promise.resolve() : this.beforeStore(end))
      .then(() => this.data.rewriteChunk(this.ino, index, (current) => chunk.compose(current), alongside))
      .then(() => this.onChunkStored(index))
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(() => {
        this.inflight.delete(index);
        memory.give(true);
        if (this.dirty.size === 0 && this.inflight.size === 0) memory.forget(this);
      });
    this.inflight.set(index, job);
  }

  private throwFailure(): void {
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      throw err;
    }
  }
}
