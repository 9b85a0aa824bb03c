import type { BlockMemory } from '../translators/block-store.js';

/**
 * Recycled memory for blocks read from the store. A sequential read goes through a block
 * (1 MiB) per chunk; a fresh buffer for each costs fresh pages from the kernel and, above all,
 * garbage collections that V8 starts as external memory grows (docs/performance.md).
 *
 * Lifetime rule: a pooled buffer is handed back by its only owner (the block cache, when it
 * evicts the block). Readers may still hold it until the end of the current microtask
 * checkpoint, because they copy out of it without awaiting; so a recycled buffer is
 * quarantined until the next macrotask before it is reused.
 */
export class BlockPool implements BlockMemory {
  private readonly free: ArrayBufferLike[] = [];
  private quarantined: ArrayBufferLike[] = [];
  /** Memory this pool made, so that foreign buffers are never taken in. */
  private readonly made = new WeakSet<ArrayBufferLike>();
  /** Memory currently free or quarantined, against recycling one buffer twice. */
  private readonly idle = new WeakSet<ArrayBufferLike>();
  private releasing = false;

  /**
   * @param capacity bytes of each pooled buffer (a chunk, with the room a block store needs to
   *   read one in place: BlockStore.readRoom); larger requests get ordinary memory
   * @param maxFree buffers kept for reuse; more are left to the garbage collector
   */
  constructor(
    readonly capacity: number,
    private readonly maxFree: number,
  ) {}

  /** `bytes` bytes of uninitialised memory, recycled when possible. Bound, usable as `alloc`. */
  readonly take = (bytes: number): Buffer => {
    if (bytes > this.capacity) return Buffer.allocUnsafeSlow(bytes);
    let memory: ArrayBufferLike | undefined = this.free.pop();
    if (memory) this.idle.delete(memory);
    else {
      memory = new ArrayBuffer(this.capacity);
      this.made.add(memory);
    }
    return Buffer.from(memory, 0, bytes);
  };

  /** Whether `buf` is memory of this pool (and so must not outlive its owner's hold on it). */
  owns(buf: Buffer): boolean {
    return this.made.has(buf.buffer);
  }

  /** Gives `buf`'s memory back; reusable from the next macrotask on. Others' buffers are ignored. */
  recycle(buf: Buffer): void {
    const memory = buf.buffer;
    if (!this.made.has(memory) || this.idle.has(memory)) return;
    this.idle.add(memory);
    this.quarantined.push(memory);
    if (this.releasing) return;
    this.releasing = true;
    setImmediate(() => {
      this.releasing = false;
      const released = this.quarantined;
      this.quarantined = [];
      for (const m of released) {
        if (this.free.length < this.maxFree) this.free.push(m);
        else this.idle.delete(m); // left to the collector; never handed out again by us
      }
    });
  }

  /** Buffers ready for reuse now (for tests and figures). */
  get freeCount(): number {
    return this.free.length;
  }
}
