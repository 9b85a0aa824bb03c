/**
 * The data path's store of immutable blocks. A block is written once, under a fresh unique id
 * chosen by the chunk layer, and never modified: only metadata records change, by CAS. That is
 * what lets translators (crypt, erasure) work without locks or read-modify-write.
 *
 * Translators wrap a BlockStore and are one, so they stack: on write (compress) -> crypt ->
 * erasure -> raw; reads reverse it.
 */

/** Where a block belongs. Crypt binds it into the AEAD's associated data. */
export interface BlockContext {
  /** Volume id from the superblock (hex). */
  readonly volumeId: string;
  /** Inode number of the file the block belongs to. */
  readonly ino: number;
  /** Index of the chunk (file offset / chunk size) the block holds. */
  readonly chunkIndex: number;
}

/**
 * What a chunk map stores to find and verify a block. Refs are encoded with msgpackr by the
 * chunk layer, so `detail` may hold any plain data (numbers, strings, Buffers, arrays, plain
 * objects). Each translator keeps its own detail and the inner store's ref inside it.
 */
export interface BlockRef {
  /** Fresh unique id, chosen by the caller of `put`. Printable ASCII, at most 40 bytes. */
  readonly id: string;
  /** Length in bytes of the data as the caller gave it to `put`. */
  readonly length: number;
  /** Translator-specific verification and placement data (checksums, fragment keys, inner ref). */
  readonly detail?: unknown;
}

export interface BlockStore {
  /** Largest block `put` accepts, in bytes (the store's item limit less translator overhead). */
  readonly maxBlockBytes: number;

  /**
   * Stores `data` as block `id`. The id is fresh, so the write is `ifAbsent`; finding the key
   * taken is an IntegrityError (id collision), never an overwrite.
   * @throws StoreFull, ValueTooLarge, StoreUnavailable, StoreTimeout
   */
  put(id: string, data: Buffer, context: BlockContext): Promise<BlockRef>;

  /**
   * Reads a block back, verified. Never returns wrong bytes: a missing block throws
   * BlockMissing; a corrupt or tampered one that cannot be reconstructed throws IntegrityError.
   * @param memory where the result should go; a store copying the stored bytes out (see
   *   {@link KvStore.getValueInto}) or producing them in place uses it, others ignore it
   */
  get(ref: BlockRef, context: BlockContext, memory?: BlockMemory): Promise<Buffer>;

  /**
   * Bytes of memory `get` needs to produce a block of `length` bytes in the memory it is
   * given: translators read their stored form (sealed, striped) into it and turn it into the
   * block in place.
   */
  readRoom(length: number): number;

  /** Removes the block and everything it is made of. Missing parts are not an error. */
  delete(ref: BlockRef): Promise<void>;

  /**
   * Checks that every record of the block is present and intact, and rewrites missing or
   * corrupt parts where the translator can (erasure). Used by `voldfs fsck`.
   */
  check(ref: BlockRef, context: BlockContext, repair: boolean): Promise<BlockHealth>;
}

/**
 * Memory a reader lends for the blocks it reads, and recycles (the chunk layer's block pool).
 * The result of a read may be any part of memory `take` gave.
 */
export interface BlockMemory {
  /** `bytes` bytes of uninitialised memory for a result. */
  take(bytes: number): Buffer;
  /** Whether `buffer` is memory `take` gave, which a translator may overwrite in place. */
  owns(buffer: Buffer): boolean;
}

export interface BlockHealth {
  /** Block readable (possibly through reconstruction). */
  readonly readable: boolean;
  /** Records found missing or corrupt. */
  readonly damaged: number;
  /** Records rewritten (only when `repair` was asked). */
  readonly repaired: number;
}

/** A block the store no longer has (evicted, server restarted empty). Maps to EIO. */
export class BlockMissing extends Error {
  constructor(readonly blockId: string) {
    super(`block ${blockId} is missing from the store`);
    this.name = 'BlockMissing';
  }
}
