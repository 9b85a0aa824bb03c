import type { KvStore } from '../backends/kv-store.js';
import type { Transaction } from '../cas/transaction.js';
import type { Transact } from '../cas/commit-queue.js';
import { decodeRecord, encodeRecord } from './record-codec.js';
import { IntegrityError } from '../backends/errors.js';

/** Chunks one bit of a bottom index record stands for: a group, looked up with one getMany. */
export const GROUP_CHUNKS = 64;
/** Bits per index record (512 bytes of bitmap). */
export const INDEX_FANOUT = 4096;
/**
 * Levels of index records: the top one, a single record, covers 64 * 4096^4 = 2^54 chunks (a
 * file of 2^63 - 1 bytes has fewer chunks). Its bit 0 is never set: the record below it (level
 * 2, group 0) is always looked at, as the first group is, so volumes indexed when that record
 * was the top (three levels) read the same.
 */
export const INDEX_LEVELS = 4;
const TOP = INDEX_LEVELS - 1;
/** First chunk index the index cannot hold. */
export const MAX_INDEXED_CHUNKS = GROUP_CHUNKS * INDEX_FANOUT ** INDEX_LEVELS;

const BITMAP_BYTES = INDEX_FANOUT / 8;

interface IndexRecord {
  bits: Buffer;
}

export interface ChunkIndexOptions {
  readonly store: KvStore;
  /** Key of index record `group` at `level` of inode `ino` (level 0: bits are chunk groups). */
  readonly indexKey: (ino: number, level: number, group: number) => string;
  readonly chunkKey: (ino: number, chunkIndex: number) => string;
  /** Runs the transactions that clear bits. */
  readonly transact: Transact;
}

/**
 * Which chunks of a file may exist, so that truncating, deleting, checking and seeking cost what
 * the file holds, not what its size claims, on every store (memcached cannot list keys).
 *
 * A tree of bitmap records per inode: a bit of a bottom record stands for a group of
 * {@link GROUP_CHUNKS} chunks, a bit of a higher record for one record of the level below. The
 * invariant: every chunk map that exists has its group's bit set, and every set bit's record
 * exists up to the top. Bits may be set where nothing exists (a crash between setting one and
 * storing the chunk, or a group whose chunks were dropped one at a time): that costs a lookup,
 * never data. The invariant holds across mounts because a chunk map is created in the same
 * transaction that reads (and if need be sets) its group's bit, and a bit is cleared only in a
 * transaction that has read every chunk map of its group as absent. The first group has no bit:
 * it is always looked at.
 */
export class ChunkIndex {
  // The first group is never indexed, always looked at: a file of up to GROUP_CHUNKS chunks (most
  // files) has no index record, and its writes cost what they did before.
  constructor(private readonly options: ChunkIndexOptions) {}

  /**
   * Stages in `tx` what the creation of chunk `chunkIndex` needs: its group's bit, and the bits
   * above it for each record this creates. Reads the bottom record at least, so that a
   * concurrent clear of the bit makes this transaction fail and retry. `repair` (fsck) sets the
   * bit at every level and overwrites records that cannot be decoded.
   * @throws RangeError past {@link MAX_INDEXED_CHUNKS}; IntegrityError on an undecodable record
   */
  async stageCreate(tx: Transaction, ino: number, chunkIndex: number, repair = false): Promise<void> {
    if (!Number.isSafeInteger(chunkIndex) || chunkIndex < 0 || chunkIndex >= MAX_INDEXED_CHUNKS) {
      throw new RangeError(`chunk ${chunkIndex} is outside what the chunk index holds`);
    }
    if (chunkIndex < GROUP_CHUNKS) return;
    for (const { level, group, bit } of indexPath(chunkIndex)) {
      if (level === TOP && bit === 0) return;
      const key = this.options.indexKey(ino, level, group);
      const bytes = await tx.read(key);
      const bits = bytes ? (repair ? bitsOrEmpty(key, bytes) : bitsOf(key, bytes)) : Buffer.alloc(BITMAP_BYTES);
      const wasSet = isSet(bits, bit);
      if (!wasSet) {
        setBit(bits, bit, true);
        tx.write(key, encodeRecord({ bits } satisfies IndexRecord));
      }
      // A record that existed already has its own bit set above it.
      if (!repair && (wasSet || bytes)) return;
    }
  }

  /**
   * Whether chunk `chunkIndex`'s group is named (read afresh from the store). A chunk map created
   * without {@link stageCreate} must be followed by {@link ensureNamed}: a clear that raced the
   * creation is seen then, and undone.
   */
  async isNamed(ino: number, chunkIndex: number): Promise<boolean> {
    if (chunkIndex < GROUP_CHUNKS) return true;
    const { level, group, bit } = indexPath(chunkIndex)[0];
    const key = this.options.indexKey(ino, level, group);
    const found = await this.options.store.get(key);
    return found !== undefined && isSet(bitsOf(key, found.value), bit);
  }

  /**
   * Names chunk `chunkIndex` if it is not (any more): after a chunk map was created on the word of
   * {@link isNamed}. A clear commits only after reading every chunk map of its group as absent, so
   * either it saw the new map and left the bit, or it came first and this sees the bit gone.
   */
  async ensureNamed(ino: number, chunkIndex: number): Promise<void> {
    if (await this.isNamed(ino, chunkIndex)) return;
    await this.options.transact((tx) => this.stageCreate(tx, ino, chunkIndex), { uncached: true });
  }

  /**
   * Groups of chunks that may hold data, in order, from the group holding chunk `fromChunk`: each
   * as its first chunk index. Reads one index record per set bit above the bottom level.
   */
  async *groups(ino: number, fromChunk = 0): AsyncIterable<number> {
    const fromGroup = Math.floor(Math.max(0, fromChunk) / GROUP_CHUNKS);
    if (fromGroup === 0) yield 0;
    yield* this.walk(ino, TOP, 0, fromGroup);
  }

  /**
   * Chunk indexes that have a chunk map, in order, from `fromChunk`, one batch per group (at
   * most {@link GROUP_CHUNKS}): one getMany per group the index names.
   */
  async *presentChunks(ino: number, fromChunk = 0): AsyncIterable<number[]> {
    for await (const first of this.groups(ino, fromChunk)) {
      const indexes = groupIndexes(first).filter((i) => i >= fromChunk);
      const found = await this.options.store.getMany(indexes.map((i) => this.options.chunkKey(ino, i)));
      const present = indexes.filter((_, k) => found[k] !== undefined);
      if (present.length > 0) yield present;
    }
  }

  /**
   * Clears the bits of groups that start at or after `fromChunk` and hold no chunk map any more,
   * removing records left empty. A group whose chunks another writer recreated keeps its bit.
   */
  async clearFrom(ino: number, fromChunk: number): Promise<void> {
    const firstWhole = Math.ceil(Math.max(0, fromChunk) / GROUP_CHUNKS) * GROUP_CHUNKS;
    const starts: number[] = [];
    for await (const first of this.groups(ino, firstWhole)) starts.push(first);
    for (const first of starts) if (first > 0) await this.clearGroup(ino, first);
  }

  /** Whether any index record of `ino` exists (its top record, or the one below that is always looked at). */
  async exists(ino: number): Promise<boolean> {
    const tops = await this.options.store.getMany([this.options.indexKey(ino, TOP, 0), this.options.indexKey(ino, TOP - 1, 0)]);
    return tops.some((found) => found !== undefined);
  }

  /**
   * How many groups of chunks past the first may hold data: the set bits of the bottom records.
   * Reads the index records on the way (one per level for a file with data in one place);
   * stops counting at `limit`.
   */
  async groupsPresent(ino: number, limit: number): Promise<number> {
    let count = 0;
    for await (const first of this.walk(ino, TOP, 0, 0)) {
      if (first > 0 && ++count >= limit) break;
    }
    return count;
  }

  /** Keys of every index record of `ino`, bottom level first (what deletion removes). */
  async recordKeys(ino: number): Promise<string[]> {
    const byLevel: string[][] = Array.from({ length: INDEX_LEVELS }, () => []);
    const visit = async (level: number, group: number): Promise<void> => {
      const key = this.options.indexKey(ino, level, group);
      const found = await this.options.store.get(key);
      if (found) byLevel[level].push(key);
      if (level === 0) return;
      for (const bit of childBits(level, key, found)) await visit(level - 1, group * INDEX_FANOUT + bit);
    };
    await visit(TOP, 0);
    return byLevel.flat();
  }

  private async *walk(ino: number, level: number, group: number, fromGroup: number): AsyncIterable<number> {
    const key = this.options.indexKey(ino, level, group);
    const found = await this.options.store.get(key);
    // Groups of chunk groups one bit of this level stands for.
    const span = INDEX_FANOUT ** level;
    for (const bit of childBits(level, key, found)) {
      const child = group * INDEX_FANOUT + bit;
      if ((child + 1) * span <= fromGroup || (level === 0 && child === 0)) continue;
      if (level === 0) yield child * GROUP_CHUNKS;
      else yield* this.walk(ino, level - 1, child, fromGroup);
    }
  }

  private async clearGroup(ino: number, first: number): Promise<void> {
    await this.options.transact(async (tx) => {
      const maps = await tx.readMany(groupIndexes(first).map((i) => this.options.chunkKey(ino, i)));
      if (maps.some((m) => m !== undefined)) return;
      let child = first / GROUP_CHUNKS;
      for (let level = 0; level < INDEX_LEVELS; level++) {
        if (level === TOP && child === 0) return;
        const group = Math.floor(child / INDEX_FANOUT);
        const key = this.options.indexKey(ino, level, group);
        const bytes = await tx.read(key);
        if (!bytes) return;
        const bits = bitsOf(key, bytes);
        setBit(bits, child % INDEX_FANOUT, false);
        if (setBits(bits).length > 0) {
          tx.write(key, encodeRecord({ bits } satisfies IndexRecord));
          return;
        }
        tx.remove(key);
        child = group;
      }
    }, { uncached: true });
  }
}

/** The children a record at `level` leads to: its set bits, and at the top always child 0. */
function childBits(level: number, key: string, found: { value: Buffer } | undefined): number[] {
  const bits = found ? setBits(bitsOf(key, found.value)) : [];
  if (level === TOP && bits[0] !== 0) bits.unshift(0);
  return bits;
}

function groupIndexes(first: number): number[] {
  return Array.from({ length: GROUP_CHUNKS }, (_, k) => first + k);
}

/**
 * The bitmap of an index record.
 * @throws IntegrityError when the record is not one
 */
export function bitsOf(key: string, bytes: Buffer): Buffer {
  const record = decodeRecord<Partial<IndexRecord> | null>(key, bytes);
  const bits = record?.bits;
  if (!Buffer.isBuffer(bits) || bits.length !== BITMAP_BYTES) throw new IntegrityError(`chunk index ${key} is not a ${BITMAP_BYTES}-byte bitmap`);
  // Copied: the caller may change it, and the bytes may be a cached record's.
  return Buffer.from(bits);
}

function bitsOrEmpty(key: string, bytes: Buffer): Buffer {
  try {
    return bitsOf(key, bytes);
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    return Buffer.alloc(BITMAP_BYTES);
  }
}

/** An index record holding exactly `bits` set. */
export function indexRecord(bits: readonly number[]): Buffer {
  const map = Buffer.alloc(BITMAP_BYTES);
  for (const b of bits) setBit(map, b, true);
  return encodeRecord({ bits: map } satisfies IndexRecord);
}

export function isSet(bits: Buffer, bit: number): boolean {
  return (bits[bit >> 3] & (1 << (bit & 7))) !== 0;
}

function setBit(bits: Buffer, bit: number, on: boolean): void {
  if (on) bits[bit >> 3] |= 1 << (bit & 7);
  else bits[bit >> 3] &= ~(1 << (bit & 7));
}

/** Set bits in ascending order. */
export function setBits(bits: Buffer): number[] {
  const out: number[] = [];
  for (let byte = 0; byte < bits.length; byte++) {
    const v = bits[byte];
    if (v === 0) continue;
    for (let b = 0; b < 8; b++) if (v & (1 << b)) out.push(byte * 8 + b);
  }
  return out;
}

/** The bottom record's group and bit, and the records above, that chunk `chunkIndex` needs set. */
export function indexPath(chunkIndex: number): { level: number; group: number; bit: number }[] {
  const path: { level: number; group: number; bit: number }[] = [];
  let child = Math.floor(chunkIndex / GROUP_CHUNKS);
  for (let level = 0; level < INDEX_LEVELS; level++) {
    const group = Math.floor(child / INDEX_FANOUT);
    path.push({ level, group, bit: child % INDEX_FANOUT });
    child = group;
  }
  return path;
}
