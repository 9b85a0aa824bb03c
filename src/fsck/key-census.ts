import type { FsckContext } from './context.js';

/** The volume's metadata keys as a scan listed them, by kind. */
export interface KeyCensus {
  /** Inode numbers that have an inode record. */
  readonly inodes: Set<number>;
  /** Directory node keys, by directory inode. */
  readonly dirNodes: Map<number, string[]>;
  /** Chunk indexes that have a chunk map, by inode. */
  readonly chunkMaps: Map<number, number[]>;
  /** Keys of chunk index records, by inode. */
  readonly chunkIndexes: Map<number, string[]>;
  /** Keys of garbage records. */
  readonly garbage: string[];
}

/** Raw block records as a scan listed them, grouped by the block they belong to. */
export interface BlockCensus {
  /** Block id -> keys of its records (one for a plain block, k+m for an erasure block). */
  readonly byBlock: Map<string, string[]>;
}

const REPORT_EVERY = 10_000;

/**
 * Lists the volume's metadata keys, or undefined when the store cannot list keys (Voldemort).
 * Not a snapshot: fsck scans before it walks, so a record created during the walk is never
 * mistaken for a leftover, and re-checks each leftover before repairing it.
 */
export async function scanMetadata(ctx: FsckContext): Promise<KeyCensus | undefined> {
  const { meta, keys } = ctx.target;
  if (!meta.scan) return undefined;
  const census: KeyCensus = { inodes: new Set(), dirNodes: new Map(), chunkMaps: new Map(), chunkIndexes: new Map(), garbage: [] };
  const prefix = keys.prefix;
  for await (const key of meta.scan(prefix)) {
    if (++ctx.counts.keysScanned % REPORT_EVERY === 0) ctx.report();
    const rest = key.slice(prefix.length);
    const kind = rest.slice(0, 2);
    if (kind === 'i:') {
      const ino = wholeNumber(rest.slice(2));
      if (ino !== undefined) census.inodes.add(ino);
    } else if (kind === 'd:') {
      const colon = rest.indexOf(':', 2);
      const ino = colon > 0 ? wholeNumber(rest.slice(2, colon)) : undefined;
      if (ino !== undefined) push(census.dirNodes, ino, key);
    } else if (kind === 'c:') {
      const colon = rest.indexOf(':', 2);
      const ino = colon > 0 ? wholeNumber(rest.slice(2, colon)) : undefined;
      const index = colon > 0 ? wholeNumber(rest.slice(colon + 1)) : undefined;
      if (ino !== undefined && index !== undefined) push(census.chunkMaps, ino, index);
    } else if (kind === 'x:') {
      const colon = rest.indexOf(':', 2);
      const ino = colon > 0 ? wholeNumber(rest.slice(2, colon)) : undefined;
      if (ino !== undefined) push(census.chunkIndexes, ino, key);
    } else if (kind === 'g:') {
      census.garbage.push(key);
    }
  }
  return census;
}

/** Lists the raw records of blocks, or undefined when the data store cannot list keys. */
export async function scanBlocks(ctx: FsckContext): Promise<BlockCensus | undefined> {
  const { data, keys } = ctx.target;
  if (!data.scan) return undefined;
  const prefix = keys.blockPrefix();
  const byBlock = new Map<string, string[]>();
  for await (const key of data.scan(prefix)) {
    if (++ctx.counts.keysScanned % REPORT_EVERY === 0) ctx.report();
    push(byBlock, blockIdOf(key.slice(prefix.length)), key);
  }
  return { byBlock };
}

/**
 * The block a raw record belongs to. Block ids are base64url (chunk/file-data.ts); every
 * translator derives its records' ids by appending to the block id something that starts
 * outside that alphabet: erasure `.<i>`, then placement `@<n>` (memory), `~<n>` (memcached)
 * or `{tag}` (Redis Cluster).
 */
export function blockIdOf(rawId: string): string {
  const match = /^[A-Za-z0-9_-]+/.exec(rawId);
  return match ? match[0] : rawId;
}

function wholeNumber(text: string): number | undefined {
  if (!/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
