import { BlockMissing, type BlockContext, type BlockMemory, type BlockRef, type BlockStore } from './block-store.js';
import { IntegrityError } from '../backends/errors.js';
import { IF_ABSENT, UNCONDITIONAL, type KvStore } from '../backends/kv-store.js';
import { checksumAll, checksumMatches, CHECKSUM_BYTES } from './erasure/checksum.js';

export interface RawBlockStoreOptions {
  /**
   * Keep an XXH64 of each block in its ref (`detail.xxh64`, 8 bytes) so that a flipped byte
   * in the store is an IntegrityError instead of wrong data. Default false: the stack turns
   * it on when no translator above verifies (no crypt, no erasure). Refs carrying a checksum
   * are verified whatever this says.
   */
  readonly checksum?: boolean;
}

/** What a checksummed raw ref keeps in `detail`. */
interface RawDetail {
  readonly xxh64: Uint8Array;
}

/**
 * The bottom of every translator stack: one block is one record `<prefix><id>`, written
 * `ifAbsent` because ids are fresh. It verifies the length, and the checksum when the ref has
 * one; authentication belongs to crypt, per-fragment checksums to erasure.
 */
export class RawBlockStore implements BlockStore {
  readonly maxBlockBytes: number;
  private readonly checksum: boolean;

  /**
   * @param store the key-value store
   * @param keyPrefix prefix of block keys, e.g. `vol:b:`; the block id is appended
   */
  constructor(
    private readonly store: KvStore,
    private readonly keyPrefix: string,
    options: RawBlockStoreOptions = {},
  ) {
    this.maxBlockBytes = store.capabilities.maxValueBytes;
    this.checksum = options.checksum ?? false;
  }

  keyOf(id: string): string {
    return this.keyPrefix + id;
  }

  /** Failure domains of the store (servers, cluster masters); 1 for a single store. */
  get domains(): number {
    return this.store.capabilities.placement.domains;
  }

  /** True when the bytes given to {@link put} are unreferenced once it resolves (see StoreCapabilities). */
  get releasesPutData(): boolean {
    return this.store.capabilities.putReleasesValue === true;
  }

  /**
   * A block id derived from `id` whose record lands on failure domain `domain`, so erasure can
   * spread fragments. Deterministic for a given store layout.
   */
  idInDomain(id: string, domain: number): string {
    const key = this.store.capabilities.placement.keyInDomain(this.keyOf(id), domain);
    if (!key.startsWith(this.keyPrefix)) {
      throw new Error(`store placement moved key ${this.keyOf(id)} out of its prefix (${key})`);
    }
    return key.slice(this.keyPrefix.length);
  }

  /**
   * Overwrites block `id` unconditionally. Only for repair, which writes back the exact bytes
   * the immutable block already had (a corrupt erasure fragment).
   */
  async replace(id: string, data: Buffer): Promise<void> {
    await this.store.put(this.keyOf(id), data, UNCONDITIONAL);
  }

  async put(id: string, data: Buffer, _context: BlockContext): Promise<BlockRef> {
    const result = await this.store.put(this.keyOf(id), data, IF_ABSENT);
    if (!result.ok) throw new IntegrityError(`block id ${id} is already taken in the store`);
    if (!this.checksum) return { id, length: data.length };
    const detail: RawDetail = { xxh64: checksumAll([data]) };
    return { id, length: data.length, detail };
  }

  async get(ref: BlockRef, _context: BlockContext, memory?: BlockMemory): Promise<Buffer> {
    const key = this.keyOf(ref.id);
    const value =
      memory && this.store.getValueInto ? await this.store.getValueInto(key, (bytes) => memory.take(bytes)) : (await this.store.get(key))?.value;
    if (!value) throw new BlockMissing(ref.id);
    if (value.length !== ref.length) {
      throw new IntegrityError(`block ${ref.id} holds ${value.length} bytes where ${ref.length} were written`);
    }
    const sum = checksumOf(ref);
    if (sum && !checksumMatches(sum, 0, value)) {
      throw new IntegrityError(`block ${ref.id} fails its checksum: the store holds corrupt bytes`);
    }
    return value;
  }

  readRoom(length: number): number {
    return length;
  }

  async delete(ref: BlockRef): Promise<void> {
    await this.store.delete(this.keyOf(ref.id));
  }

  async check(ref: BlockRef, context: BlockContext, _repair: boolean) {
    try {
      await this.get(ref, context);
      return { readable: true, damaged: 0, repaired: 0 };
    } catch (err) {
      if (err instanceof BlockMissing || err instanceof IntegrityError) {
        return { readable: false, damaged: 1, repaired: 0 };
      }
      throw err;
    }
  }
}

/**
 * The checksum a raw ref carries, or undefined for refs written without one.
 * @throws IntegrityError for a detail that is not a raw checksum
 */
function checksumOf(ref: BlockRef): Buffer | undefined {
  if (ref.detail === undefined) return undefined;
  const raw = (ref.detail as Partial<RawDetail> | null)?.xxh64;
  if (!(raw instanceof Uint8Array) || raw.length !== CHECKSUM_BYTES) {
    throw new IntegrityError(`block ref ${ref.id} is not a valid raw ref: bad checksum detail`);
  }
  // msgpack decoders may hand back a plain Uint8Array.
  return Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
}
