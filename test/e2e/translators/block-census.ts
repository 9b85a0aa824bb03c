/**
 * Every block a volume's chunk maps reference, read from its (unlocked) metadata store, and
 * what the data path says about them: the ground truth the erasure tests compare the servers
 * against.
 */
import type { KvStore } from '../../../src/backends/kv-store.js';
import { decodeRecord } from '../../../src/cas/record-codec.js';
import type { ChunkMapRecord } from '../../../src/chunk/file-data.js';
import type { OpenedVolume } from '../../../src/inode/volume.js';
import type { BlockContext, BlockRef } from '../../../src/translators/block-store.js';

export interface ReferencedBlock {
  readonly context: BlockContext;
  readonly ref: BlockRef;
}

/** Blocks referenced by the volume's chunk maps (found with the metadata store's scan). */
export async function referencedBlocks(volume: OpenedVolume): Promise<ReferencedBlock[]> {
  const { meta, keys, superblock } = volume;
  if (!meta.scan) throw new Error(`metadata store ${meta.name} cannot list keys`);
  const chunkPrefix = `${keys.prefix}c:`;
  const chunkKeys: string[] = [];
  for await (const key of meta.scan(chunkPrefix)) chunkKeys.push(key);
  const found = await meta.getMany(chunkKeys);
  const out: ReferencedBlock[] = [];
  chunkKeys.forEach((key, i) => {
    const record = found[i];
    if (!record) return; // removed since the scan
    const [ino, chunkIndex] = key.slice(chunkPrefix.length).split(':').map(Number);
    const { block } = decodeRecord<ChunkMapRecord>(key, record.value);
    out.push({ context: { volumeId: superblock.volumeId, ino, chunkIndex }, ref: block });
  });
  return out;
}

/** Keys of the records an erasure-coded block is made of. */
export function fragmentKeys(volume: OpenedVolume, ref: BlockRef): string[] {
  const detail = ref.detail as { ids?: readonly string[]; sums: Uint8Array } | undefined;
  if (!detail?.sums) throw new Error(`block ${ref.id} has no erasure detail`);
  const count = detail.sums.length / 8;
  const ids = detail.ids ?? Array.from({ length: count }, (_v, i) => `${ref.id}.${i}`);
  return ids.map((id) => volume.keys.blockPrefix() + id);
}

/** Expected record count per failure domain (server) of `store`, from the referenced blocks. */
export function fragmentsPerDomain(volume: OpenedVolume, store: KvStore, blocks: readonly ReferencedBlock[]): number[] {
  const counts = new Array<number>(store.capabilities.placement.domains).fill(0);
  for (const { ref } of blocks) for (const key of fragmentKeys(volume, ref)) counts[store.capabilities.placement.domainOf(key)]++;
  return counts;
}

export interface CheckTotals {
  readonly blocks: number;
  readonly unreadable: number;
  readonly damaged: number;
  readonly repaired: number;
}

/** BlockStore.check over every referenced block (what fsck does for file data). */
export async function checkBlocks(volume: OpenedVolume, blocks: readonly ReferencedBlock[], repair: boolean): Promise<CheckTotals> {
  let unreadable = 0;
  let damaged = 0;
  let repaired = 0;
  for (const { ref, context } of blocks) {
    const health = await volume.blocks.check(ref, context, repair);
    if (!health.readable) unreadable++;
    damaged += health.damaged;
    repaired += health.repaired;
  }
  return { blocks: blocks.length, unreadable, damaged, repaired };
}
