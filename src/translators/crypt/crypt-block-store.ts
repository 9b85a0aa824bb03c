import type { KeyObject } from 'node:crypto';
import { IntegrityError, ValueTooLarge } from '../../backends/errors.js';
import type { BlockContext, BlockHealth, BlockMemory, BlockRef, BlockStore } from '../block-store.js';
import { OFFLOAD_MIN_BYTES, type OffloadPool } from '../offload/offload-pool.js';
import { AEAD_OVERHEAD, authenticationFailed, NONCE_BYTES, open, seal } from './aead.js';
import { loadAddon, openInto, sealInto } from './block-cipher.js';

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
  /** The key's bytes, for the threadpool cipher (block-cipher.ts). */
  private readonly rawKey: Buffer;

  /**
   * Blocks of OFFLOAD_MIN_BYTES and more are sealed and opened on libuv's threadpool
   * (block-cipher.ts), smaller ones on the calling thread.
   * @throws ConfigError when the threadpool cipher's addon is not built
   * @param offload the translators' pool: with it, large blocks are sealed into its scratch
   *   memory with the room the next translator reserved, and handed over to it
   */
  constructor(
    private readonly inner: BlockStore,
    private readonly key: KeyObject,
    private readonly offload?: OffloadPool,
  ) {
    loadAddon();
    this.rawKey = key.export();
    this.maxBlockBytes = inner.maxBlockBytes - AEAD_OVERHEAD;
    if (this.maxBlockBytes <= 0) {
      throw new RangeError(`inner block store limit ${inner.maxBlockBytes} leaves no room for encryption`);
    }
  }

  /** @throws ValueTooLarge above maxBlockBytes; whatever the inner store throws */
  async put(id: string, data: Buffer, context: BlockContext): Promise<BlockRef> {
    if (data.length > this.maxBlockBytes) throw new ValueTooLarge(id, data.length, this.maxBlockBytes);
    const aad = blockAad(context, id, data.length);
    const sealed = data.length >= OFFLOAD_MIN_BYTES ? await this.sealLarge(aad, data) : seal(this.key, data, aad);
    const innerRef = await this.inner.put(id, sealed, context);
    return innerRef.detail === undefined ? { id, length: data.length } : { id, length: data.length, detail: innerRef.detail };
  }

  /**
   * Large blocks are read into `memory` (see BlockStore.get) and opened in place there; small
   * ones, opened on the calling thread, ignore it.
   * @throws IntegrityError if the block does not authenticate in this context; BlockMissing
   */
  async get(ref: BlockRef, context: BlockContext, memory?: BlockMemory): Promise<Buffer> {
    const large = ref.length >= OFFLOAD_MIN_BYTES;
    const sealed = await this.inner.get(innerRef(ref), context, large ? memory : undefined);
    if (sealed.length !== ref.length + AEAD_OVERHEAD) {
      throw new IntegrityError(`block ${ref.id} holds ${sealed.length} encrypted bytes for ${ref.length} plain ones`);
    }
    const aad = blockAad(context, ref.id, ref.length);
    if (!large) return open(this.key, sealed, aad, `block ${ref.id}`);
    // In place only in memory that is ours to overwrite: lent by the reader, or made by the
    // translator below for us. A store may return the very buffer it keeps.
    const ours = memory?.owns(sealed) === true || this.offload?.isHandedOver(sealed) === true;
    const plaintext = ours
      ? await openInto(this.rawKey, aad, sealed, sealed, NONCE_BYTES)
      : await openInto(this.rawKey, aad, sealed, memory?.take(ref.length) ?? Buffer.allocUnsafeSlow(ref.length), 0);
    if (!plaintext) throw authenticationFailed(`block ${ref.id}`);
    return plaintext;
  }

  /**
   * Seals a large block on the threadpool, into the pool's scratch memory with the room the
   * translator below reserved (erasure encodes the stripe in it), handed over to that one.
   */
  private async sealLarge(aad: Buffer, data: Buffer): Promise<Buffer> {
    const length = data.length + AEAD_OVERHEAD;
    if (!this.offload) return sealInto(this.rawKey, aad, data, Buffer.allocUnsafeSlow(length));
    const out = this.offload.scratch(this.offload.room(length));
    return this.offload.handOver(await sealInto(this.rawKey, aad, data, out));
  }

  /** Room for the sealed block, which is opened in place. */
  readRoom(length: number): number {
    return this.inner.readRoom(length + AEAD_OVERHEAD);
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
