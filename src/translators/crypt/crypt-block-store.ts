import type { KeyObject } from 'node:crypto';
import { IntegrityError, ValueTooLarge } from '../../backends/errors.js';
import type { BlockContext, BlockHealth, BlockRef, BlockStore } from '../block-store.js';
import { OFFLOAD_MIN_BYTES, type OffloadPool } from '../offload/offload-pool.js';
import { AEAD_OVERHEAD, authenticationFailed, open, seal } from './aead.js';

const AAD_MAGIC = 'voldfs block v1';

/**
 * Encrypts each block with AES-256-GCM under the volume's block key. The associated data binds
 * volume id, inode, chunk index, block id and plaintext length, so a block swapped with another,
 * replayed into another file or position, or truncated fails authentication (IntegrityError,
 * which the filesystem maps to EIO) and never yields bytes.
 *
 * The ref keeps the inner store's detail as its own (the inner block has the same id and a
 * length `length + AEAD_OVERHEAD`), so crypt adds nothing to a chunk map.
 */
export class CryptBlockStore implements BlockStore {
  /** Inner limit less nonce (12) and tag (16). */
  readonly maxBlockBytes: number;

  /**
   * @param offload worker pool for blocks of OFFLOAD_MIN_BYTES and more; without it every block
   *   is sealed and opened on the calling thread
   */
  constructor(
    private readonly inner: BlockStore,
    private readonly key: KeyObject,
    private readonly offload?: OffloadPool,
  ) {
    this.maxBlockBytes = inner.maxBlockBytes - AEAD_OVERHEAD;
    if (this.maxBlockBytes <= 0) {
      throw new RangeError(`inner block store limit ${inner.maxBlockBytes} leaves no room for encryption`);
    }
  }

  /** @throws ValueTooLarge above maxBlockBytes; whatever the inner store throws */
  async put(id: string, data: Buffer, context: BlockContext): Promise<BlockRef> {
    if (data.length > this.maxBlockBytes) throw new ValueTooLarge(id, data.length, this.maxBlockBytes);
    const aad = blockAad(context, id, data.length);
    const sealed = this.offload && data.length >= OFFLOAD_MIN_BYTES ? await this.offload.seal(this.key, aad, data) : seal(this.key, data, aad);
    const innerRef = await this.inner.put(id, sealed, context);
    return innerRef.detail === undefined ? { id, length: data.length } : { id, length: data.length, detail: innerRef.detail };
  }

  /**
   * `alloc` (memory its owner recycles, see BlockStore.get) receives the plaintext of blocks
   * opened on the worker pool; blocks opened on the calling thread ignore it.
   * @throws IntegrityError if the block does not authenticate in this context; BlockMissing
   */
  async get(ref: BlockRef, context: BlockContext, alloc?: (bytes: number) => Buffer): Promise<Buffer> {
    const sealed = await this.inner.get(innerRef(ref), context);
    if (sealed.length !== ref.length + AEAD_OVERHEAD) {
      throw new IntegrityError(`block ${ref.id} holds ${sealed.length} encrypted bytes for ${ref.length} plain ones`);
    }
    const aad = blockAad(context, ref.id, ref.length);
    if (!this.offload || ref.length < OFFLOAD_MIN_BYTES) return open(this.key, sealed, aad, `block ${ref.id}`);
    const plaintext = await this.offload.open(this.key, aad, sealed, alloc);
    if (!plaintext) throw authenticationFailed(`block ${ref.id}`);
    return plaintext;
  }

  async delete(ref: BlockRef): Promise<void> {
    await this.inner.delete(innerRef(ref));
  }

  /** Checks (and lets the inner store repair) the records, then that the block authenticates. */
  async check(ref: BlockRef, context: BlockContext, repair: boolean): Promise<BlockHealth> {
    const health = await this.inner.check(innerRef(ref), context, repair);
    if (!health.readable) return health;
    try {
      await this.get(ref, context);
      return health;
    } catch (err) {
      if (err instanceof IntegrityError) return { ...health, readable: false, damaged: Math.max(1, health.damaged) };
      throw err;
    }
  }
}

function innerRef(ref: BlockRef): BlockRef {
  const length = ref.length + AEAD_OVERHEAD;
  return ref.detail === undefined ? { id: ref.id, length } : { id: ref.id, length, detail: ref.detail };
}

/** Length-prefixed fields, so no two different contexts encode to the same bytes. */
export function blockAad(context: BlockContext, id: string, length: number): Buffer {
  const magic = Buffer.from(AAD_MAGIC);
  const volume = Buffer.from(context.volumeId, 'utf8');
  const idBytes = Buffer.from(id, 'utf8');
  const numbers = Buffer.alloc(8 * 3 + 2 * 3);
  let at = 0;
  for (const field of [magic, volume, idBytes]) at = numbers.writeUInt16BE(field.length, at);
  for (const n of [context.ino, context.chunkIndex, length]) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`block context field ${n} is not a non-negative integer`);
    at = numbers.writeBigUInt64BE(BigInt(n), at);
  }
  return Buffer.concat([numbers, magic, volume, idBytes]);
}
