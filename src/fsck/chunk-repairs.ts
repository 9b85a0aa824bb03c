import { ifVersion } from '../backends/kv-store.js';
import { IntegrityError } from '../backends/errors.js';
import { transact } from '../cas/transaction.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import pMap from 'p-map';
import { inlineIntact, isInline, type ChunkMapRecord, type ChunkRef } from '../chunk/file-data.js';
import { isReg, type InodeRecord } from '../inode/records.js';
import type { FsckContext } from './context.js';
import type { RepairResult } from './tx-repairs.js';

/**
 * What a chunk map record points at (a block ref, or its inline bytes), or undefined when the
 * record is malformed (a length outside [0, chunkSize], no id).
 */
export function chunkRefOf(ctx: FsckContext, key: string, bytes: Buffer): ChunkRef | undefined {
  let record: Partial<ChunkMapRecord> | null;
  try {
    record = decodeRecord<Partial<ChunkMapRecord> | null>(key, bytes);
  } catch (err) {
    if (err instanceof IntegrityError) return undefined;
    throw err;
  }
  const inline: unknown = record?.inline;
  if (inline !== undefined) {
    if (!Buffer.isBuffer(inline) || (ctx.chunkSize !== undefined && inline.length > ctx.chunkSize)) return undefined;
    if (!inlineIntact({ inline, xxh64: record?.xxh64 })) return undefined;
    return { inline };
  }
  const ref = record?.block;
  if (!ref || typeof ref.id !== 'string' || ref.id.length === 0 || !Number.isSafeInteger(ref.length) || ref.length < 0) return undefined;
  if (ctx.chunkSize !== undefined && ref.length > ctx.chunkSize) return undefined;
  return ref;
}

/**
 * Deletes chunk maps of `ino` and then their blocks (a map is deleted only at the version read,
 * and a block only once no map points at it). Blocks in `keep` are left alone.
 */
export async function deleteChunkMaps(ctx: FsckContext, ino: number, indexes: readonly number[], keep: ReadonlySet<string>): Promise<number> {
  const { meta, keys, blocks } = ctx.target;
  const mapKeys = indexes.map((i) => keys.chunkMap(ino, i));
  const found = await ctx.readMany(meta, mapKeys);
  let deleted = 0;
  await pMap(mapKeys.map((key, i) => ({ key, found: found[i] })), async ({ key, found: f }) => {
      if (!f) return;
      const ref = chunkRefOf(ctx, key, f.value);
      if (!(await meta.delete(key, ifVersion(f.version)))) return;
      deleted++;
      if (ref && !isInline(ref) && blocks && !keep.has(ref.id)) await blocks.delete(ref);
    }, { concurrency: ctx.concurrency });
  return deleted;
}

/** Deletes raw block records straight from the data store (blocks no map refers to). */
export async function deleteRawRecords(ctx: FsckContext, rawKeys: readonly string[]): Promise<RepairResult> {
  let deleted = 0;
  await pMap(rawKeys, async (key) => {
    if (await ctx.target.data.delete(key)) deleted++;
  }, { concurrency: ctx.concurrency });
  return deleted > 0 ? { outcome: 'repaired', done: `${deleted} records deleted` } : { outcome: 'gone', done: 'already gone' };
}

/**
 * Deletes an orphan inode: its record (by transaction, so a concurrent change wins), then its
 * directory nodes, chunk maps and their blocks. Offline only: an unreachable inode may be open
 * on a live mount, or just moved out of the part of the tree the walk had read.
 */
export async function deleteOrphan(
  ctx: FsckContext,
  ino: number,
  dirNodes: readonly string[],
  chunkIndexes: readonly number[],
  keep: ReadonlySet<string>,
  indexRecords: readonly string[] = [],
): Promise<RepairResult> {
  const key = ctx.target.keys.inode(ino);
  const removed = await transact(ctx.target.meta, undefined, async (tx) => {
    if (!(await tx.read(key))) return false;
    tx.remove(key);
    return true;
  });
  for (const node of dirNodes) await ctx.target.meta.delete(node);
  const maps = await deleteChunkMaps(ctx, ino, chunkIndexes, keep);
  await deleteChunkIndex(ctx, ino, indexRecords);
  if (!removed && dirNodes.length === 0 && maps === 0) return { outcome: 'gone', done: 'already gone' };
  const parts = [removed ? 'inode deleted' : 'inode already gone'];
  if (dirNodes.length > 0) parts.push(`${dirNodes.length} directory nodes deleted`);
  if (maps > 0) parts.push(`${maps} chunk maps and their blocks deleted`);
  return { outcome: 'repaired', done: parts.join(', ') };
}

/**
 * Removes a `.fuse_hidden` name left by a mount that crashed with the file open, as that
 * mount's last close would have: one link fewer, and at none the inode goes with its data
 * (deleted at once: offline only, so no reader is left).
 */
export async function dropHiddenName(ctx: FsckContext, dir: number, name: string, ino: number): Promise<RepairResult> {
  const key = ctx.target.keys.inode(ino);
  const dead = await transact(ctx.target.meta, undefined, async (tx) => {
    const entry = await ctx.dirs.lookup(tx, dir, name);
    if (!entry || entry[0] !== ino) return undefined;
    await ctx.dirs.remove(tx, dir, name);
    const bytes = await tx.read(key);
    if (!bytes) return { size: 0, nlink: 0 };
    const record = decodeRecord<InodeRecord>(key, bytes);
    record.nlink = Math.max(0, record.nlink - 1);
    if (record.nlink > 0) tx.write(key, encodeRecord(record));
    else tx.remove(key);
    return { size: isReg(record.mode) ? record.size : 0, nlink: record.nlink };
  });
  if (!dead) return { outcome: 'gone', done: 'the name is gone' };
  if (dead.nlink > 0) return { outcome: 'repaired', done: `name removed, ${dead.nlink} links left` };
  const indexes = await chunkIndexesOf(ctx, ino);
  const maps = await deleteChunkMaps(ctx, ino, indexes, new Set());
  await deleteChunkIndex(ctx, ino);
  return { outcome: 'repaired', done: `name removed; the file had no other name: inode and ${maps} chunk maps with their blocks deleted` };
}

/** Chunk indexes of an inode: every map a scan lists (past the end too), else every map its chunk index names. */
async function chunkIndexesOf(ctx: FsckContext, ino: number): Promise<number[]> {
  const scan = ctx.target.meta.scan?.bind(ctx.target.meta);
  if (!scan) return presentChunks(ctx, ino);
  const prefix = ctx.target.keys.chunkMap(ino, 0).slice(0, -1);
  const listed: number[] = [];
  for await (const key of scan(prefix)) {
    const index = Number(key.slice(prefix.length));
    if (Number.isSafeInteger(index)) listed.push(index);
  }
  return listed;
}

/** Chunk maps of an inode that exist, as its chunk index names them. */
export async function presentChunks(ctx: FsckContext, ino: number): Promise<number[]> {
  const out: number[] = [];
  for await (const present of ctx.chunkIndex.presentChunks(ino, 0)) out.push(...present);
  return out;
}

/** Deletes every record of a dead inode's chunk index (after its chunk maps). */
export async function deleteChunkIndex(ctx: FsckContext, ino: number, known: readonly string[] = []): Promise<number> {
  const keys = new Set([...(await ctx.chunkIndex.recordKeys(ino).catch(rethrowUnlessIntegrity)), ...known]);
  let deleted = 0;
  for (const key of keys) if (await ctx.target.meta.delete(key)) deleted++;
  return deleted;
}

/** An undecodable index record is deleted with the others that a scan listed. */
function rethrowUnlessIntegrity(err: unknown): string[] {
  if (err instanceof IntegrityError) return [];
  throw err;
}
