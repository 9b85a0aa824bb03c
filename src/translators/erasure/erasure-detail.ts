import { IntegrityError } from '../../backends/errors.js';
import type { BlockRef } from '../block-store.js';
import { CHECKSUM_BYTES } from './checksum.js';
import type { ErasureCodec } from './codec.js';

/** What an erasure block ref keeps in `detail` (plain data, msgpack-friendly). */
export interface ErasureDetail {
  /** `rs`: k data + m parity fragments; `copies`: m+1 whole copies (small blocks). */
  readonly layout: 'rs' | 'copies';
  /** Bytes of every fragment (rs: ceil(length / k) rounded up to the codec's alignment). */
  readonly fragmentBytes: number;
  /** XXH64 of each fragment, 8 bytes each, in fragment order. */
  readonly sums: Buffer;
  /** Fragment ids when placement chose them; absent means `<id>.<index>`. */
  readonly ids?: readonly string[];
  /** Inner refs' details, when the inner store keeps any. */
  readonly inner?: readonly unknown[];
}

/** Number of fragments (records) the block is made of. */
export function fragmentCount(detail: ErasureDetail): number {
  return detail.sums.length / CHECKSUM_BYTES;
}

/**
 * Validates a ref's detail as written by this codec's ErasureBlockStore.
 * @throws IntegrityError when the ref is not an erasure ref of this layout
 */
export function parseDetail(ref: BlockRef, codec: ErasureCodec): ErasureDetail {
  const fail = (what: string) => new IntegrityError(`block ref ${ref.id} is not a valid erasure ref: ${what}`);
  const d = ref.detail as (Omit<Partial<ErasureDetail>, 'sums'> & { sums?: unknown }) | undefined;
  if (typeof d !== 'object' || d === null) throw fail('no detail');
  const raw = d.sums;
  if (!(raw instanceof Uint8Array) || raw.length % CHECKSUM_BYTES !== 0) throw fail('no checksums');
  // msgpack decoders may hand back a plain Uint8Array.
  const sums = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const size = d.fragmentBytes;
  if (!Number.isSafeInteger(size) || (size as number) < 0) throw fail('bad fragment size');
  const count = sums.length / CHECKSUM_BYTES;
  if (d.layout === 'rs') {
    if (count !== codec.k + codec.m) throw fail(`${count} fragments where ${codec.k}+${codec.m} are configured`);
    if ((size as number) * codec.k < ref.length || (size as number) % codec.alignment !== 0) throw fail('fragment size does not fit the length');
  } else if (d.layout === 'copies') {
    if (!Number.isInteger(count) || count < 1) throw fail('no copies');
    if (size !== ref.length) throw fail('copy size differs from the length');
  } else {
    throw fail(`unknown layout ${JSON.stringify(d.layout)}`);
  }
  if (d.ids !== undefined && (!Array.isArray(d.ids) || d.ids.length !== count)) throw fail('fragment ids do not match');
  if (d.inner !== undefined && (!Array.isArray(d.inner) || d.inner.length !== count)) throw fail('inner details do not match');
  return { layout: d.layout, fragmentBytes: size as number, sums, ids: d.ids, inner: d.inner };
}
