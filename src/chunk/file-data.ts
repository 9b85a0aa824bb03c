import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import pMap from 'p-map';
import type { KvStore } from '../backends/kv-store.js';
import type { RecordCache } from '../cas/record-cache.js';
import type { Transact } from '../cas/commit-queue.js';
import { transact, type Transaction } from '../cas/transaction.js';
import type { BlockContext, BlockRef, BlockStore } from '../translators/block-store.js';
import { decodeRecord, encodeRecord } from './record-codec.js';
import { IntegrityError } from '../backends/errors.js';
import { CHECKSUM_BYTES, checksumAll, checksumMatches } from '../translators/erasure/checksum.js';
import { BlockPool } from './block-pool.js';
import { type ByteOffset, chunkAt, chunkStart, chunksFor, inChunk, larger, plus, smaller } from './byte-offset.js';
import { ChunkIndex, GROUP_CHUNKS } from './chunk-index.js';
import { WriteMemory } from './write-memory.js';

/**
 * One chunk of a file's offset space: the block holding its bytes, or, for a chunk of at most
 * `inlineMaxBytes`, the bytes themselves (no block record, no second store write).
 */
export type ChunkMapRecord =
  | { block: BlockRef; inline?: undefined; xxh64?: undefined }
  | { inline: Buffer; xxh64: Buffer; block?: undefined };

/** Where a chunk's bytes are: a block, or inline in its chunk map record. */
export type ChunkRef = BlockRef | InlineChunk;

export interface InlineChunk {
  readonly inline: Buffer;
}

export function isInline(ref: ChunkRef): ref is InlineChunk {
  return (ref as Partial<InlineChunk>).inline !== undefined;
}

/**
 * The chunk a chunk map record points at.
 * @throws IntegrityError when inline bytes do not match their checksum (a flipped bit: crypt
 *   authenticates the whole record, the checksum guards stores without crypt)
 */
export function chunkOf(key: string, record: ChunkMapRecord): ChunkRef {
  if (record.inline === undefined) return record.block;
  if (!inlineIntact(record)) throw new IntegrityError(`chunk map ${key}: its inline bytes do not match their checksum`);
  return { inline: record.inline };
}

/** Whether an inline chunk map's bytes match the XXH64 kept beside them. */
export function inlineIntact(record: { inline: Buffer; xxh64?: unknown }): boolean {
  return Buffer.isBuffer(record.xxh64) && record.xxh64.length === CHECKSUM_BYTES && checksumMatches(record.xxh64, 0, record.inline);
}

function inlineRecord(bytes: Buffer): ChunkMapRecord {
  // Copied: `bytes` may be recycled block memory, and the record outlives it.
  const inline = Buffer.from(bytes);
  return { inline, xxh64: checksumAll([inline]) };
}

/** Stages more writes in the transaction that swaps a chunk map; returns what to do once it committed. */
export type AlongsideChunk = (tx: Transaction) => Promise<() => void>;

export interface FileDataOptions {
  readonly store: KvStore;
  readonly cache: RecordCache;
  readonly blocks: BlockStore;
  /** Key of the chunk map record of chunk `chunkIndex` of inode `ino`. */
  readonly chunkKey: (ino: number, chunkIndex: number) => string;
  /** Key of a record of the inode's chunk index ({@link ChunkIndex}). */
  readonly indexKey: (ino: number, level: number, group: number) => string;
  readonly volumeId: string;
  /** Bytes per chunk; also the largest block. */
  readonly chunkSize: number;
  /** Bytes of decoded blocks kept for reads. Default 256 MiB. */
  readonly blockCacheBytes?: number;
  /**
   * Bytes of chunk buffers every open file's write-back buffer may hold together (dirty or
   * being stored) before writers wait. Default 256 MiB; at least one chunk.
   */
  readonly writeBufferBytes?: number;
  /** Evicted block buffers kept for reuse by later reads. Default 64. */
  readonly pooledBlocks?: number;
  /**
   * Called when a chunk map read for a read is missing: resolves if that is a hole, throws
   * (IntegrityError) if the store lost the record. Default: always a hole.
   */
  readonly checkMissing?: (key: string) => Promise<void>;
  /** Called with block refs that a chunk no longer uses, to be deleted after a grace period. */
  readonly retire: (refs: BlockRef[]) => void;
  /**
   * Chunks of at most this many bytes are stored inline in their chunk map record. Default
   * {@link DEFAULT_INLINE_MAX_BYTES}; 0 stores every chunk as a block.
   */
  readonly inlineMaxBytes?: number;
  /** Runs chunk map transactions: the volume's commit queue. Default: transact() on `store`. */
  readonly transact?: Transact;
}

/** Block fetches in flight past which readahead starts no more (reads still do). */
const MAX_FETCHES_FOR_READAHEAD = 32;

/** Small files fit whole in their chunk map record: one store write instead of two. */
export const DEFAULT_INLINE_MAX_BYTES = 4096;

/**
 * The data path: a file's offset space cut into fixed-size chunks, each chunk's bytes in one
 * immutable block. Replacing a chunk writes a new block under a fresh id, then swaps the chunk
 * map record by CAS; the old block is retired, not deleted, since readers may still hold it.
 * Metadata per write is one chunk map record, whatever the file's size.
 */
export class FileData {
  readonly chunkSize: number;
  readonly inlineMaxBytes: number;
  /** Bytes of blocks the cache holds at most. */
  readonly blockCacheBytes: number;
  private readonly blockCache: LRUCache<string, Buffer>;
  /** Memory of cached blocks read from the store; the cache owns it and recycles it. */
  private readonly pool: BlockPool;
  /** Reads of the same block share one fetch. */
  private readonly inflight = new Map<string, Promise<Buffer>>();

  private readonly transact: Transact;
  /** Which chunks may exist: what truncate, delete and seeks walk instead of every index. */
  readonly index: ChunkIndex;
  /** The ceiling on write-back memory shared by every open file. */
  readonly writeMemory: WriteMemory;
  /** New chunks of named groups are verified after their commit instead of checked in it. */
  private readonly namedAfter: boolean;

  constructor(private readonly options: FileDataOptions) {
    this.transact = options.transact ?? ((body) => transact(options.store, undefined, body));
    this.namedAfter = options.store.capabilities.commitByIntents === true;
    this.index = new ChunkIndex({ store: options.store, indexKey: options.indexKey, chunkKey: options.chunkKey, transact: this.transact });
    this.chunkSize = options.chunkSize;
    this.writeMemory = new WriteMemory(Math.max(1, Math.floor((options.writeBufferBytes ?? 256 * 1024 * 1024) / options.chunkSize)));
    this.inlineMaxBytes = Math.min(options.inlineMaxBytes ?? DEFAULT_INLINE_MAX_BYTES, options.chunkSize);
    // Room for a block's stored form too: translators turn it into the block in place.
    this.pool = new BlockPool(options.blocks.readRoom(options.chunkSize), options.pooledBlocks ?? 64);
    this.blockCacheBytes = options.blockCacheBytes ?? 256 * 1024 * 1024;
    this.blockCache = new LRUCache<string, Buffer>({
      maxSize: this.blockCacheBytes,
      // The memory a block holds, not its length: a pooled buffer is a whole chunk's worth.
      sizeCalculation: (b) => Math.max(1, this.pool.owns(b) ? b.buffer.byteLength : b.length),
      dispose: (evicted) => this.pool.recycle(evicted),
    });
  }

  context(ino: number, chunkIndex: number): BlockContext {
    return { volumeId: this.options.volumeId, ino, chunkIndex };
  }

  /** Where a chunk's bytes are, or undefined for a hole. Always asks the store. */
  async chunkRef(ino: number, chunkIndex: number): Promise<ChunkRef | undefined> {
    const key = this.options.chunkKey(ino, chunkIndex);
    const found = await this.options.store.get(key);
    if (!found) await this.options.checkMissing?.(key);
    return found ? chunkOf(key, decodeRecord<ChunkMapRecord>(key, found.value)) : undefined;
  }

  /** Refs of several chunks in one batched read. */
  async chunkRefs(ino: number, chunkIndexes: readonly number[]): Promise<(ChunkRef | undefined)[]> {
    const keys = chunkIndexes.map((i) => this.options.chunkKey(ino, i));
    const found = await this.options.store.getMany(keys);
    for (const [i, f] of found.entries()) if (!f) await this.options.checkMissing?.(keys[i]);
    return found.map((f, i) => (f ? chunkOf(keys[i], decodeRecord<ChunkMapRecord>(keys[i], f.value)) : undefined));
  }

  /** A chunk's bytes: inline, or its block (see {@link readBlock} for the rules on that memory). */
  readChunk(ref: ChunkRef, ino: number, chunkIndex: number): Promise<Buffer> {
    return isInline(ref) ? Promise.resolve(ref.inline) : this.readBlock(ref, ino, chunkIndex);
  }

  /** A chunk's bytes if inline or cached, without waiting. */
  cachedChunk(ref: ChunkRef, ino: number, chunkIndex: number): Buffer | undefined {
    return isInline(ref) ? ref.inline : this.cachedBlock(ref, ino, chunkIndex);
  }

  /**
   * A block's bytes, from the cache or the store. Blocks are immutable: the cache never goes
   * stale. The buffer may be recycled memory: copy what you need before the next `await`, and
   * never keep it or hand it on.
   */
  async readBlock(ref: BlockRef, ino: number, chunkIndex: number): Promise<Buffer> {
    const key = cacheKey(ref, ino, chunkIndex);
    const cached = this.blockCache.get(key);
    if (cached) return cached;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const fetch = this.options.blocks
      .get(ref, this.context(ino, chunkIndex), this.pool)
      .then((read) => {
        const data = this.fitted(read);
        this.blockCache.set(key, data);
        return data;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, fetch);
    return fetch;
  }

  /**
   * A block to cache, in memory of its own size when it fills less than half of a pooled buffer
   * (small files): cached in a pooled buffer, each would hold a whole chunk's memory, and the
   * block cache would hold many times its bound. The pooled buffer goes back to the pool.
   */
  private fitted(block: Buffer): Buffer {
    if (!this.pool.owns(block) || block.length * 2 > block.buffer.byteLength) return block;
    const own = Buffer.allocUnsafeSlow(block.length);
    block.copy(own);
    this.pool.recycle(block);
    return own;
  }

  /**
   * Uninitialised memory for a chunk being written. Recycled memory when possible: once stored,
   * a chunk's bytes become its cached block, whose memory the cache recycles on eviction.
   */
  chunkBuffer(bytes: number): Buffer {
    return this.pool.take(bytes);
  }

  /**
   * An upper bound of the bytes a file of `size` bytes holds, from its chunk index: whole
   * groups of chunks where any may exist. What st_blocks tells `cp --sparse` and `du`: a file
   * far larger than its data would otherwise look dense and be read whole.
   */
  async allocatedBound(ino: number, size: ByteOffset): Promise<ByteOffset> {
    const groupBytes = GROUP_CHUNKS * this.chunkSize;
    if (size <= groupBytes) return size;
    const groups = 1 + (await this.index.groupsPresent(ino, chunksFor(size, groupBytes)));
    return smaller(size, chunkStart(groups, groupBytes));
  }

  /** A block's bytes if they are cached, without waiting; the rule of {@link readBlock} applies. */
  cachedBlock(ref: BlockRef, ino: number, chunkIndex: number): Buffer | undefined {
    return this.blockCache.get(cacheKey(ref, ino, chunkIndex));
  }

  /**
   * Removes a block from the cache (its memory goes back to the pool once current readers are
   * done with it, as on eviction); a later read fetches it again.
   */
  dropCached(ref: ChunkRef, ino: number, chunkIndex: number): void {
    if (!isInline(ref)) this.blockCache.delete(cacheKey(ref, ino, chunkIndex));
  }

  /** Starts fetching a block into the cache (readahead); errors surface on the real read. */
  prefetch(ref: ChunkRef, ino: number, chunkIndex: number): void {
    if (isInline(ref)) return;
    const key = cacheKey(ref, ino, chunkIndex);
    if (this.blockCache.has(key) || this.inflight.has(key)) return;
    // Readahead of many files at once would hold a block per fetch outside the cache's bound.
    if (this.inflight.size >= MAX_FETCHES_FOR_READAHEAD) return;
    this.readBlock(ref, ino, chunkIndex).catch(() => undefined);
  }

  /**
   * Replaces a chunk's content. `compose` receives the chunk's current bytes (undefined for a
   * hole) and returns the new bytes; it runs again if another writer changed the chunk
   * meanwhile, so concurrent writers to disjoint ranges of one chunk both survive. `alongside`
   * stages further writes (the inode's size) in the same commit; its result runs once that
   * commit has succeeded.
   */
  async rewriteChunk(
    ino: number,
    chunkIndex: number,
    compose: (current: Buffer | undefined) => Buffer,
    alongside?: AlongsideChunk,
  ): Promise<void> {
    const key = this.options.chunkKey(ino, chunkIndex);
    const written: BlockRef[] = [];
    let replaced: ChunkRef | undefined;
    let committed: (() => void) | undefined;
    let stored: BlockRef | undefined;
    let storedBytes: Buffer | undefined;
    let inlined: Buffer | undefined;
    let named = false;
    try {
      await this.transact(async (tx) => {
        const bytes = await tx.read(key);
        replaced = bytes ? chunkOf(key, decodeRecord<ChunkMapRecord>(key, bytes)) : undefined;
        named = false;
        if (!bytes) {
          // On intent-record stores a check of the index record would turn this single-key
          // update into an intent commit: when the group is named already, verify afterwards.
          named = this.namedAfter && (await this.index.isNamed(ino, chunkIndex));
          if (!named) await this.index.stageCreate(tx, ino, chunkIndex);
        }
        const cached = replaced ? await this.readChunk(replaced, ino, chunkIndex) : undefined;
        // compose may return (part of) what it is given, which then lives on as the new block.
        const current = cached && this.pool.owns(cached) ? Buffer.from(cached) : cached;
        const next = compose(current);
        stored = undefined;
        inlined = undefined;
        if (next.length <= this.inlineMaxBytes) {
          inlined = next;
          tx.write(key, encodeRecord(inlineRecord(next)));
        } else {
          const ref = await this.options.blocks.put(newBlockId(), next, this.context(ino, chunkIndex));
          written.push(ref);
          stored = ref;
          storedBytes = next;
          tx.write(key, encodeRecord({ block: ref } satisfies ChunkMapRecord));
        }
        committed = alongside ? await alongside(tx) : undefined;
      }, { uncached: true });
    } catch (err) {
      // No block written here is referenced: retire them all.
      if (written.length > 0) this.options.retire(written);
      throw err;
    }
    // Cached only once committed: an attempt that lost a conflict (chunks of one group share
    // an index record) stored the same bytes under another block, and a cache entry for that
    // loser would recycle this memory while the winner still uses it.
    if (stored && storedBytes) this.blockCache.set(cacheKey(stored, ino, chunkIndex), this.fitted(storedBytes));
    if (named) await this.index.ensureNamed(ino, chunkIndex);
    committed?.();
    // The chunk's write memory did not become a cached block: it goes back to the pool.
    if (inlined && this.pool.owns(inlined)) this.pool.recycle(inlined);
    // Blocks of attempts that lost a race are unreferenced; the replaced one may still be read.
    const losers = written.filter((ref) => ref !== stored);
    if (replaced && !isInline(replaced)) losers.push(replaced);
    if (losers.length > 0) this.options.retire(losers);
  }

  /** Removes a chunk's map record (truncate, delete) and retires its block. */
  async dropChunk(ino: number, chunkIndex: number): Promise<void> {
    const key = this.options.chunkKey(ino, chunkIndex);
    let dropped: ChunkRef | undefined;
    await this.transact(async (tx) => {
      const bytes = await tx.read(key);
      dropped = bytes ? chunkOf(key, decodeRecord<ChunkMapRecord>(key, bytes)) : undefined;
      if (bytes) tx.remove(key);
    }, { uncached: true });
    if (dropped && !isInline(dropped)) this.options.retire([dropped]);
  }

  /**
   * Cuts the file's data at `newSize`: chunks wholly beyond it are dropped, the boundary chunk
   * rewritten shorter, so bytes past the end never reappear if the file grows again. Costs what
   * the file holds past `newSize`, whatever `oldSize` says.
   */
  async truncate(ino: number, oldSize: ByteOffset, newSize: ByteOffset): Promise<void> {
    if (newSize >= oldSize) return;
    const firstGone = chunksFor(newSize, this.chunkSize);
    for await (const present of this.index.presentChunks(ino, firstGone)) {
      await pMap(present, (i) => this.dropChunk(ino, i), { concurrency: 16 });
    }
    await this.index.clearFrom(ino, firstGone);
    const keep = inChunk(newSize, this.chunkSize);
    if (keep > 0) {
      const boundary = chunkAt(newSize, this.chunkSize);
      if (await this.chunkRef(ino, boundary)) {
        await this.rewriteChunk(ino, boundary, (current) => (current ?? Buffer.alloc(0)).subarray(0, keep));
      }
    }
  }

  /**
   * Deletes every chunk map of a dead inode, then its blocks at once (no reader is left after
   * the grace period), then its chunk index. Costs what the file holds.
   */
  async deleteAll(ino: number, deleteBlock: (ref: BlockRef) => Promise<unknown>): Promise<void> {
    for await (const present of this.index.presentChunks(ino, 0)) {
      const refs = await this.chunkRefs(ino, present);
      await pMap(present, async (i, k) => {
        const ref = refs[k];
        if (ref && !isInline(ref)) await deleteBlock(ref);
        await this.options.store.delete(this.options.chunkKey(ino, i));
      }, { concurrency: 16 });
    }
    for (const key of await this.index.recordKeys(ino)) await this.options.store.delete(key);
  }

  /**
   * SEEK_DATA: the first offset at or after `offset` inside a chunk that has data, or undefined
   * when there is none before `size` (ENXIO). A chunk counts as data whole, up to its block's
   * end: lseek(2) allows reporting zeros as data. Costs the chunks the file holds from `offset`.
   * Writes still buffered by an open file are not seen: persist them first.
   */
  async seekData(ino: number, offset: ByteOffset, size: ByteOffset): Promise<ByteOffset | undefined> {
    if (offset < 0 || offset >= size) return undefined;
    const from = chunkAt(offset, this.chunkSize);
    for await (const present of this.index.presentChunks(ino, from)) {
      const refs = await this.chunkRefs(ino, present);
      for (const [k, index] of present.entries()) {
        const ref = refs[k];
        if (!ref) continue;
        const start = chunkStart(index, this.chunkSize);
        const end = plus(start, chunkLength(ref));
        if (end > offset && start < size) return larger(offset, start);
      }
    }
    return undefined;
  }

  /**
   * SEEK_HOLE: the first offset at or after `offset` that is in a hole (no chunk, or past a
   * short block's end), or `size` (the hole at the end of every file); undefined when `offset`
   * is at or past `size` (ENXIO). Costs the chunks that follow `offset` without a gap.
   */
  async seekHole(ino: number, offset: ByteOffset, size: ByteOffset): Promise<ByteOffset | undefined> {
    if (offset < 0 || offset >= size) return undefined;
    const cs = this.chunkSize;
    let next = chunkAt(offset, cs);
    for await (const present of this.index.presentChunks(ino, next)) {
      const refs = await this.chunkRefs(ino, present);
      for (const [k, index] of present.entries()) {
        const ref = refs[k];
        if (index !== next || !ref) return smaller(size, larger(offset, chunkStart(next, cs)));
        if (chunkLength(ref) < cs) return smaller(size, larger(offset, plus(chunkStart(index, cs), chunkLength(ref))));
        next = index + 1;
      }
      if (chunkStart(next, cs) >= size) return size;
    }
    return smaller(size, larger(offset, chunkStart(next, cs)));
  }

}

/**
 * Cached blocks are keyed by where they were verified, not by id alone: a chunk map made to
 * point at another file's block (tampering) must fail crypt's check, not be served plaintext
 * from the cache.
 */
function cacheKey(ref: BlockRef, ino: number, chunkIndex: number): string {
  return `${ino}:${chunkIndex}:${ref.id}`;
}

export function newBlockId(): string {
  return randomBytes(15).toString('base64url');
}

/** Bytes a chunk holds: its block's length or its inline bytes. */
function chunkLength(ref: ChunkRef): number {
  return isInline(ref) ? ref.inline.length : ref.length;
}

