import { xxh64 } from '@node-rs/xxhash';
import type { Logger } from 'pino';
import { IntegrityError, isUnreachable, ValueTooLarge } from '../../backends/errors.js';
import { BlockMissing, type BlockContext, type BlockHealth, type BlockMemory, type BlockRef, type BlockStore } from '../block-store.js';
import { checksumAll, checksumMatches } from './checksum.js';
import { DegradedWriteLog } from './degraded-writes.js';
import { OFFLOAD_MIN_BYTES, type OffloadPool } from '../offload/offload-pool.js';
import { RONOMON_CODEC_ID, type ErasureCodec } from './codec.js';
import { fragmentCount, parseDetail, type ErasureDetail } from './erasure-detail.js';

/** What erasure needs below it: a block store that can place records and overwrite for repair. */
export interface FragmentStore extends BlockStore {
  /** Failure domains of the underlying store; 1 when it has no placement. */
  readonly domains: number;
  /** A block id derived from `id` that lands on `domain`. */
  idInDomain(id: string, domain: number): string;
  /** Unconditional overwrite, for rewriting a corrupt fragment with its original bytes. */
  replace(id: string, data: Buffer): Promise<void>;
  /**
   * True when the store keeps no reference to the bytes given to `put` once it resolves, so
   * erasure may give a stripe's memory back to the worker pool. Absent: never reused.
   */
  readonly releasesPutData?: boolean;
}

export interface ErasureOptions {
  readonly codec: ErasureCodec;
  /**
   * Blocks shorter than this (bytes) are stored as m+1 whole copies instead of k+m fragments:
   * same loss tolerance, fewer records, one record per healthy read. Default
   * {@link DEFAULT_REPLICATE_BELOW}; 0 stripes every block.
   */
  readonly replicateBelow?: number;
  /**
   * Worker pool that encodes and checksums stripes of OFFLOAD_MIN_BYTES and more (codec
   * `ronomon-rs6` only) and provides the buffers healthy reads are joined into. Without it all of
   * that runs on the calling thread (the codec itself always runs in the libuv threadpool).
   */
  readonly offload?: OffloadPool;
  /** Where blocks stored without some fragments (servers unreachable) are reported. */
  readonly log?: Pick<Logger, 'warn'>;
}

/**
 * Below 16 KiB a 4+2 stripe has fragments under 4 KiB: six records and four reads per block
 * cost more than three whole copies and one read (see scripts/bench-translators.ts), and the
 * extra storage (3x instead of 1.5x) is small in absolute terms.
 */
export const DEFAULT_REPLICATE_BELOW = 16 * 1024;

type Fetched =
  | { readonly state: 'ok'; readonly bytes: Buffer }
  | { readonly state: 'missing' | 'corrupt' }
  | { readonly state: 'unavailable'; readonly error: Error };

/**
 * Systematic Reed-Solomon over k data + m parity fragments, each its own record, fragment i on
 * failure domain (start + i) mod domains, start a hash of the block id. The ref holds an XXH64
 * per fragment. A healthy read fetches the k data fragments and concatenates them; only a
 * missing, corrupt or unreachable data fragment makes it fetch parity and decode. Up to m lost fragments are survived; beyond that the read
 * throws BlockMissing (all gone), the store's own error (servers unreachable) or
 * IntegrityError, never wrong bytes.
 */
export class ErasureBlockStore implements BlockStore {
  /** k fragments of the largest aligned size the inner store takes. */
  readonly maxBlockBytes: number;
  private readonly codec: ErasureCodec;
  private readonly replicateBelow: number;
  private readonly offload?: OffloadPool;
  private readonly degraded?: DegradedWriteLog;

  constructor(
    private readonly inner: FragmentStore,
    options: ErasureOptions,
  ) {
    this.codec = options.codec;
    this.offload = options.offload;
    this.degraded = options.log && new DegradedWriteLog(options.log);
    this.offload?.reserve((length) => (this.codec.k + this.codec.m) * this.fragmentBytes(length));
    const { k, alignment } = this.codec;
    this.maxBlockBytes = k * Math.floor(inner.maxBlockBytes / alignment) * alignment;
    // A whole copy must fit in one inner record.
    this.replicateBelow = Math.min(options.replicateBelow ?? DEFAULT_REPLICATE_BELOW, inner.maxBlockBytes + 1);
  }

  /**
   * Writes the k+m fragments (or m+1 copies) in parallel. When some cannot reach their server
   * (StoreUnavailable, StoreTimeout) but enough are stored to read the block (k fragments, one
   * copy), the block is kept with the others: it reads as after a loss of those fragments, fsck
   * reports it damaged, and `fsck --repair` writes the missing ones once their servers are back.
   * So a volume takes writes with up to m servers down, as its metadata copies do.
   * @throws ValueTooLarge above maxBlockBytes; the inner store's errors when too few fragments
   *   are stored or a put failed for another reason (nothing is left behind then)
   */
  async put(id: string, data: Buffer, context: BlockContext): Promise<BlockRef> {
    if (data.length > this.maxBlockBytes) throw new ValueTooLarge(id, data.length, this.maxBlockBytes);
    const copies = data.length < this.replicateBelow;
    const { fragments, sums, pooled } = copies ? this.copiesOf(data) : await this.stripe(data);
    const ids = fragments.map((_, i) => this.placedId(id, i));
    const results = await Promise.allSettled(fragments.map((f, i) => this.inner.put(ids[i], f, context)));
    const missing = range(0, results.length).filter((i) => results[i].status === 'rejected');
    const reasons = missing.map((i) => (results[i] as PromiseRejectedResult).reason as unknown);
    const readable = results.length - missing.length >= (copies ? 1 : this.codec.k);
    // Every put resolved, so a store that releases its values holds none of the stripe: its
    // memory goes back to the pool, sparing the next block a fresh 1.5 MiB (and the main
    // thread the garbage collection). A failed put may still hold its fragment: never reused.
    if (missing.length === 0 && pooled && this.offload && this.inner.releasesPutData === true) this.offload.release(pooled);
    if (missing.length > 0 && !(readable && reasons.every(isUnreachable))) {
      // Leave no partial block behind; what cannot be deleted now is garbage for fsck.
      await Promise.allSettled(
        results.flatMap((r) => (r.status === 'fulfilled' ? [this.inner.delete(r.value)] : [])),
      );
      throw reasons.find((r) => !isUnreachable(r)) ?? reasons[0];
    }
    if (missing.length > 0) this.degraded?.record(id, missing, reasons[0] as Error);
    // A fragment not stored has no inner ref: its id and length are in the detail already.
    const innerRefs = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    const detail: ErasureDetail = {
      layout: copies ? 'copies' : 'rs',
      fragmentBytes: fragments[0].length,
      sums,
      ...(ids.some((fid, i) => fid !== defaultId(id, i)) ? { ids } : {}),
      ...(innerRefs.some((r) => r?.detail !== undefined) ? { inner: innerRefs.map((r) => r?.detail) } : {}),
    };
    return { id, length: data.length, detail };
  }

  /**
   * A healthy striped read fetches the k data fragments straight into one buffer (through the
   * inner store's `getValueInto`, one copy out of stores that offer it): `memory` when given,
   * else a scratch buffer of the pool, handed over to crypt above.
   * @throws BlockMissing, IntegrityError, StoreUnavailable/StoreTimeout when too few fragments remain
   */
  async get(ref: BlockRef, context: BlockContext, memory?: BlockMemory): Promise<Buffer> {
    const detail = parseDetail(ref, this.codec);
    if (detail.layout === 'copies') {
      const seen: Fetched[] = [];
      for (let i = 0; i < fragmentCount(detail); i++) {
        const f = await this.fetch(ref, detail, i, context);
        if (f.state === 'ok') return f.bytes;
        seen.push(f);
      }
      throw unreadable(ref, seen, 1);
    }
    const { k, m } = this.codec;
    const size = detail.fragmentBytes;
    const joined = this.joinBuffer(k * size, memory);
    const into = (i: number): BlockMemory | undefined =>
      joined && {
        take: (bytes) => (bytes === size ? joined.subarray(i * size, (i + 1) * size) : Buffer.allocUnsafe(bytes)),
        owns: () => false,
      };
    const fetched = await Promise.all(range(0, k).map((i) => this.fetch(ref, detail, i, context, into(i))));
    if (fetched.every((f) => f.state === 'ok')) {
      const fragments = fetched.map((f) => (f as { bytes: Buffer }).bytes);
      if (!joined) return Buffer.concat(fragments).subarray(0, ref.length);
      // Stores without getValueInto return their own buffers: copy those in.
      fragments.forEach((f, i) => {
        if (f.buffer !== joined.buffer || f.byteOffset !== joined.byteOffset + i * size) f.copy(joined, i * size);
      });
      const data = joined.subarray(0, ref.length);
      return memory || !this.offload ? data : this.offload.handOver(data);
    }
    fetched.push(...(await Promise.all(range(k, k + m).map((i) => this.fetch(ref, detail, i, context)))));
    const targets = range(0, k).filter((i) => fetched[i].state !== 'ok');
    const { data } = await this.decode(ref, detail, fetched, targets);
    return data.subarray(0, ref.length);
  }

  /** Room for the k data fragments of a striped block, which a healthy read joins in place. */
  readRoom(length: number): number {
    if (length < this.replicateBelow) return this.inner.readRoom(length);
    return Math.max(length, this.codec.k * this.inner.readRoom(this.fragmentBytes(length)));
  }

  async delete(ref: BlockRef): Promise<void> {
    const detail = parseDetail(ref, this.codec);
    await Promise.all(range(0, fragmentCount(detail)).map((i) => this.inner.delete(fragmentRef(ref, detail, i))));
  }

  /**
   * Reads every fragment; with `repair`, rewrites missing and corrupt ones byte-identically
   * under their own keys (missing: ifAbsent put; corrupt: unconditional overwrite). Fragments
   * on unreachable servers count as damaged but are not rewritten.
   */
  async check(ref: BlockRef, context: BlockContext, repair: boolean): Promise<BlockHealth> {
    const detail = parseDetail(ref, this.codec);
    const count = fragmentCount(detail);
    const fetched = await Promise.all(range(0, count).map((i) => this.fetch(ref, detail, i, context)));
    const ok = fetched.filter((f) => f.state === 'ok').length;
    const readable = ok >= (detail.layout === 'copies' ? 1 : this.codec.k);
    const broken = range(0, count).filter((i) => fetched[i].state === 'missing' || fetched[i].state === 'corrupt');
    const health = { readable, damaged: count - ok, repaired: 0 };
    if (!repair || !readable || broken.length === 0) return health;

    let rebuilt: (i: number) => Buffer;
    if (detail.layout === 'copies') {
      const good = (fetched.find((f) => f.state === 'ok') as { bytes: Buffer }).bytes;
      rebuilt = () => good;
    } else {
      const { data, parity } = await this.decode(ref, detail, fetched, broken);
      const size = detail.fragmentBytes;
      const k = this.codec.k;
      rebuilt = (i) => (i < k ? data.subarray(i * size, (i + 1) * size) : parity.subarray((i - k) * size, (i - k + 1) * size));
    }
    await Promise.all(
      broken.map(async (i) => {
        const fragment = fragmentRef(ref, detail, i);
        if (fetched[i].state === 'corrupt') return this.inner.replace(fragment.id, rebuilt(i));
        try {
          await this.inner.put(fragment.id, rebuilt(i), context);
        } catch (err) {
          // Taken since we looked: someone else repaired it or it holds stray bytes; ours are right.
          if (!(err instanceof IntegrityError)) throw err;
          await this.inner.replace(fragment.id, rebuilt(i));
        }
      }),
    );
    return { ...health, repaired: broken.length };
  }

  private copiesOf(data: Buffer): { fragments: Buffer[]; sums: Buffer; pooled?: Buffer } {
    const count = this.codec.m + 1;
    return { fragments: new Array<Buffer>(count).fill(data), sums: Buffer.concat(new Array<Buffer>(count).fill(checksumAll([data]))) };
  }

  /**
   * k data fragments of `data` (the last zero padded) and m parity fragments, with their
   * checksums; `pooled` is the stripe when the worker pool made it (its memory may go back).
   */
  private async stripe(data: Buffer): Promise<{ fragments: Buffer[]; sums: Buffer; pooled?: Buffer }> {
    const { k, m } = this.codec;
    const size = this.fragmentBytes(data.length);
    const cut = (buffer: Buffer, count: number) => range(0, count).map((i) => buffer.subarray(i * size, (i + 1) * size));
    if (this.offload && this.codec.id === RONOMON_CODEC_ID && data.length >= OFFLOAD_MIN_BYTES) {
      const { stripe, sums } = await this.offload.encode(k, m, size, data);
      return { fragments: cut(stripe, k + m), sums, pooled: stripe };
    }
    const stripe = data.length === k * size ? data : Buffer.alloc(k * size);
    if (stripe !== data) data.copy(stripe);
    const parity = Buffer.alloc(m * size);
    await this.codec.run(stripe, parity, range(0, k), range(k, k + m));
    const fragments = [...cut(stripe, k), ...cut(parity, m)];
    return { fragments, sums: checksumAll(fragments) };
  }

  /** Bytes of each fragment of a striped block of `length` bytes. */
  private fragmentBytes(length: number): number {
    const { k, alignment } = this.codec;
    return Math.max(alignment, Math.ceil(Math.ceil(length / k) / alignment) * alignment);
  }

  /** Memory for the data fragments of a healthy read, or undefined to concatenate them after. */
  private joinBuffer(bytes: number, memory?: BlockMemory): Buffer | undefined {
    if (memory) return memory.take(bytes);
    return this.offload && bytes >= OFFLOAD_MIN_BYTES ? this.offload.scratch(bytes) : undefined;
  }

  /** Rebuilds fragments `targets` from the intact ones among `fetched` and verifies them. */
  private async decode(ref: BlockRef, detail: ErasureDetail, fetched: Fetched[], targets: number[]) {
    const { k, m } = this.codec;
    const size = detail.fragmentBytes;
    const sources = range(0, k + m).filter((i) => fetched[i]?.state === 'ok').slice(0, k);
    if (sources.length < k) throw unreadable(ref, fetched, k);
    const data = Buffer.alloc(k * size);
    const parity = Buffer.alloc(m * size);
    for (const i of sources) {
      (fetched[i] as { bytes: Buffer }).bytes.copy(i < k ? data : parity, (i < k ? i : i - k) * size);
    }
    await this.codec.run(data, parity, sources, targets);
    for (const i of targets) {
      const bytes = i < k ? data.subarray(i * size, (i + 1) * size) : parity.subarray((i - k) * size, (i - k + 1) * size);
      if (!checksumMatches(detail.sums, i, bytes)) {
        throw new IntegrityError(`block ${ref.id}: fragment ${i} rebuilt from parity fails its checksum`);
      }
    }
    return { data, parity };
  }

  /**
   * Fragment i goes to domain (start + i) mod domains, start drawn from a hash of the block id:
   * parity spreads over every server instead of always landing on the same m, so reads and
   * repairs share the load. Placed ids are recorded in the ref, so readers never recompute this.
   */
  private placedId(id: string, i: number): string {
    const domains = this.inner.domains;
    if (domains <= 1) return defaultId(id, i);
    const start = Number(xxh64(Buffer.from(id, 'utf8')) % BigInt(domains));
    return this.inner.idInDomain(defaultId(id, i), (start + i) % domains);
  }

  private async fetch(
    ref: BlockRef,
    detail: ErasureDetail,
    i: number,
    context: BlockContext,
    memory?: BlockMemory,
  ): Promise<Fetched> {
    try {
      const bytes = await this.inner.get(fragmentRef(ref, detail, i), context, memory);
      return checksumMatches(detail.sums, i, bytes) ? { state: 'ok', bytes } : { state: 'corrupt' };
    } catch (err) {
      if (err instanceof BlockMissing) return { state: 'missing' };
      if (err instanceof IntegrityError) return { state: 'corrupt' };
      if (isUnreachable(err)) return { state: 'unavailable', error: err };
      throw err;
    }
  }
}

function defaultId(id: string, i: number): string {
  return `${id}.${i}`;
}

function fragmentRef(ref: BlockRef, detail: ErasureDetail, i: number): BlockRef {
  const id = detail.ids?.[i] ?? defaultId(ref.id, i);
  const inner = detail.inner?.[i];
  return inner === undefined ? { id, length: detail.fragmentBytes } : { id, length: detail.fragmentBytes, detail: inner };
}

/** The error for a block with fewer than `needed` intact fragments. */
function unreadable(ref: BlockRef, fetched: readonly Fetched[], needed: number): Error {
  const down = fetched.find((f): f is Extract<Fetched, { state: 'unavailable' }> => f.state === 'unavailable');
  if (down) return down.error;
  if (fetched.every((f) => f.state === 'missing')) return new BlockMissing(ref.id);
  const intact = fetched.filter((f) => f.state === 'ok').length;
  return new IntegrityError(
    `block ${ref.id} cannot be rebuilt: ${intact} intact fragments of ${fetched.length} read, ${needed} needed`,
  );
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
