import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { WORKER_SOURCE } from './worker-source.js';

/**
 * Runs erasure's CPU work (Reed-Solomon encoding, fragment checksums) on a few worker threads,
 * so that it overlaps with FUSE requests and store I/O on the main thread instead of stalling
 * them, and keeps the scratch memory the translators pass blocks in. One pool per block stack;
 * crypt and erasure share it (crypt's cipher runs on libuv's threadpool, crypt/block-cipher.ts,
 * and seals into this pool's scratch memory).
 *
 * Bytes cross by transfer, never by structured clone. The main thread touches a block's bytes at
 * most once: data it does not own (the chunk layer keeps its plaintext in the block cache; a
 * store may keep the buffers it returns) is copied into a reused scratch buffer, and buffers
 * one translator made for the next (crypt's sealed block, erasure's joined fragments) are
 * marked with {@link handOver} and transferred without a copy. Scratch buffers come back from
 * the worker and are reused, so the copy lands in memory that is already mapped.
 *
 * Workers start on first use, one more whenever all are busy, up to `workers`; a worker idle
 * for `idleMs` ends, so an unused pool holds no threads and never keeps the process alive.
 */
export interface OffloadOptions {
  /** Worker threads at most. Default min(2, available cores). */
  readonly workers?: number;
  /** A worker with nothing to do for this long (ms) ends. Default 2000. */
  readonly idleMs?: number;
}

/**
 * Blocks below this many bytes are cheaper to handle inline than on another thread (a worker,
 * libuv's threadpool).
 */
export const OFFLOAD_MIN_BYTES = 64 * 1024;

/** Scratch buffers kept for reuse, at most (enough for the write buffer's 16 blocks in flight). */
const MAX_FREE_BUFFERS = 32;

interface Reply {
  readonly id: number;
  readonly input?: ArrayBuffer;
  readonly output?: ArrayBuffer;
  readonly sums?: Uint8Array;
  readonly error?: string;
}

interface Pending {
  readonly resolve: (reply: Reply) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  idle?: NodeJS.Timeout;
}

export class OffloadPool {
  private readonly maxWorkers: number;
  private readonly idleMs: number;
  private readonly slots: Slot[] = [];
  private readonly free: ArrayBuffer[] = [];
  /** Buffers whose whole ArrayBuffer the receiver may take (transfer) instead of copying. */
  private readonly handedOver = new WeakSet<Buffer>();
  private nextId = 0;
  /** See {@link reserve}. */
  private capacityFor: (length: number) => number = (length) => length;
  private readonly modules: { xxhash: string; reedSolomon: string };

  constructor(options: OffloadOptions = {}) {
    this.maxWorkers = Math.max(1, options.workers ?? Math.min(2, availableParallelism()));
    this.idleMs = options.idleMs ?? 2000;
    const require = createRequire(import.meta.url);
    this.modules = { xxhash: require.resolve('@node-rs/xxhash'), reedSolomon: require.resolve('@ronomon/reed-solomon') };
  }

  /** Worker threads running now (for tests). */
  get threads(): number {
    return this.slots.length;
  }

  /**
   * Marks `buffer` as given away: whoever receives it may detach its ArrayBuffer. Only for
   * buffers made by this pool or by a translator for the next one, never for a caller's data.
   */
  handOver(buffer: Buffer): Buffer {
    this.handedOver.add(buffer);
    return buffer;
  }

  /** Whether `buffer` was marked by {@link handOver}: its receiver may overwrite or detach it. */
  isHandedOver(buffer: Buffer): boolean {
    return this.handedOver.has(buffer);
  }

  /**
   * Tells the pool how much room the next layer wants in a buffer handed over to it: `capacity`
   * of a block of `length` bytes. Erasure asks for its whole stripe (data, padding and parity),
   * so crypt's sealed block arrives in a buffer it can encode in place.
   */
  reserve(capacity: (length: number) => number): void {
    this.capacityFor = capacity;
  }

  /**
   * Bytes of a buffer to hand over a block of `length` bytes in: at least `length`, and the room
   * the next layer reserved (see {@link reserve}).
   */
  room(length: number): number {
    return Math.max(length, this.capacityFor(length));
  }

  /**
   * A buffer of `bytes` bytes (contents undefined) from the reuse list when one fits: the
   * smallest that does (a 1 MiB copy must not take the 1.5 MiB a stripe needs next), of those
   * the most recently returned (its pages are the likeliest to be in cache).
   */
  scratch(bytes: number): Buffer {
    let i = -1;
    for (let j = this.free.length - 1; j >= 0; j--) {
      const size = this.free[j].byteLength;
      if (size >= bytes && size <= 2 * bytes + OFFLOAD_MIN_BYTES && (i < 0 || size < this.free[i].byteLength)) i = j;
    }
    const buffer = i >= 0 ? this.free.splice(i, 1)[0] : Buffer.allocUnsafeSlow(bytes).buffer;
    return Buffer.from(buffer, 0, bytes);
  }

  /**
   * Gives back memory this pool made (a stripe from {@link encode}, a sealed block) once nothing
   * references it any more: later work reuses it. The caller must be sure of that; bytes still
   * being written to a store would be overwritten.
   */
  release(buffer: Buffer): void {
    if (buffer.buffer instanceof ArrayBuffer) this.recycle(buffer.buffer);
  }

  /**
   * Systematic Reed-Solomon encoding with @ronomon/reed-solomon (codec `ronomon-rs6`) and XXH64
   * per fragment: `stripe` holds the k data fragments of `data` (zero padded) then the m parity
   * fragments, `fragmentBytes` each; `sums` their checksums, 8 bytes each, as checksum.ts packs
   * them. `data` is detached if it was handed over.
   * @throws Error when the worker fails
   */
  async encode(k: number, m: number, fragmentBytes: number, data: Buffer): Promise<{ stripe: Buffer; sums: Buffer }> {
    const reply = await this.run({ op: 'encode', k, m, size: fragmentBytes }, data);
    const sums = reply.sums;
    if (!sums) throw new Error('translator worker: encode returned no checksums');
    return { stripe: Buffer.from(outputOf(reply), 0, (k + m) * fragmentBytes), sums: Buffer.from(sums.buffer, sums.byteOffset, sums.byteLength) };
  }

  /** Sends `data` to a worker: transferred if handed over, else copied into a scratch buffer. */
  private async run(task: Record<string, unknown>, data: Buffer, transfer: ArrayBuffer[] = []): Promise<Reply> {
    let input: Buffer;
    if (this.handedOver.has(data) && data.buffer instanceof ArrayBuffer) {
      input = data;
    } else {
      input = this.scratch(data.length);
      data.copy(input);
    }
    const id = this.nextId++;
    const slot = this.pick();
    const reply = await new Promise<Reply>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref();
      clearTimeout(slot.idle);
      const buffer = input.buffer as ArrayBuffer;
      slot.worker.postMessage({ ...task, id, input: buffer, offset: input.byteOffset, length: input.length }, [buffer, ...transfer]);
    });
    if (reply.input) this.recycle(reply.input);
    if (reply.error !== undefined) throw new Error(`translator worker failed: ${reply.error}`);
    return reply;
  }

  private recycle(buffer: ArrayBuffer): void {
    if (buffer.byteLength >= OFFLOAD_MIN_BYTES && this.free.length < MAX_FREE_BUFFERS) this.free.push(buffer);
  }

  /** The least busy worker, or a new one when every worker is busy and there is room. */
  private pick(): Slot {
    let best: Slot | undefined;
    for (const slot of this.slots) if (!best || slot.pending.size < best.pending.size) best = slot;
    if (best && (best.pending.size === 0 || this.slots.length >= this.maxWorkers)) return best;
    return this.spawn();
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: this.modules });
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    this.slots.push(slot);
    worker.on('message', (reply: Reply) => {
      const pending = slot.pending.get(reply.id);
      if (!pending) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) this.settle(slot);
      pending.resolve(reply);
    });
    const fail = (err: Error) => {
      this.remove(slot);
      for (const p of slot.pending.values()) p.reject(new Error(`translator worker failed: ${err.message}`, { cause: err }));
      slot.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`worker exited with code ${code}`)));
    return slot;
  }

  /** A worker with nothing left to do stops keeping the process alive, and ends after idleMs. */
  private settle(slot: Slot): void {
    slot.worker.unref();
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      if (slot.pending.size > 0) return;
      this.remove(slot);
      // Nothing is running: give the scratch memory back too.
      if (this.slots.length === 0) this.free.length = 0;
      void slot.worker.terminate();
    }, this.idleMs);
    slot.idle.unref();
  }

  private remove(slot: Slot): void {
    clearTimeout(slot.idle);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
  }
}

function outputOf(reply: Reply): ArrayBuffer {
  if (!reply.output) throw new Error('translator worker returned no output');
  return reply.output;
}
