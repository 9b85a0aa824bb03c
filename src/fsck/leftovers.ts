import { IntegrityError } from '../backends/errors.js';
import { decodeRecord } from '../chunk/record-codec.js';
import { isInline } from '../chunk/file-data.js';
import { isReg, type InodeRecord } from '../inode/records.js';
import { transact } from '../cas/transaction.js';
import { GROUP_CHUNKS } from '../chunk/chunk-index.js';
import { chunksFor } from '../chunk/byte-offset.js';
import { chunkRefOf, deleteChunkIndex, deleteChunkMaps, deleteOrphan, deleteRawRecords, presentChunks } from './chunk-repairs.js';
import type { FsckContext } from './context.js';
import type { GarbageState } from './garbage-check.js';
import type { BlockCensus, KeyCensus } from './key-census.js';
import { FIX_ORDER } from './problems.js';
import type { WalkResult } from './tree-walk.js';
import { removeDirNode, typeName, type RepairResult } from './tx-repairs.js';

/**
 * What the walk from the root did not reach, from the scan of every key: orphan inodes, chunk
 * maps past a file's end or of inodes that are gone, directory nodes outside their trees, and
 * blocks nothing refers to. Must run after the walk and before any repair. Deleting a
 * leftover never deletes a block that a reachable file's chunk map uses (`live`).
 * @param live blocks the chunk maps of reachable files point at
 * @returns inodes found orphaned, and the blocks the chunk maps the walk did not reach point at
 */
export async function checkLeftovers(
  ctx: FsckContext,
  census: KeyCensus,
  walk: WalkResult,
  live: ReadonlySet<string>,
  garbage: GarbageState,
): Promise<{ orphans: Set<number>; leftoverRefs: Set<string> }> {
  const orphans = await findOrphans(ctx, census, walk, live);
  const leftoverRefs = await checkChunkMaps(ctx, census, walk, live, garbage, orphans);
  await checkChunkIndexes(ctx, census, walk, garbage, orphans);
  checkDirNodes(ctx, census, walk, orphans);
  return { orphans, leftoverRefs };
}

const reached = (walk: WalkResult, ino: number) => walk.dirs.has(ino) || walk.files.has(ino) || walk.corrupt.has(ino);

async function findOrphans(ctx: FsckContext, census: KeyCensus, walk: WalkResult, live: ReadonlySet<string>): Promise<Set<number>> {
  const candidates = [...census.inodes].filter((ino) => !reached(walk, ino)).sort((a, b) => a - b);
  const keys = candidates.map((ino) => ctx.target.keys.inode(ino));
  // Listed by the scan, so created before the walk began: one deleted since is no orphan.
  const found = await ctx.readMany(ctx.target.meta, keys);
  const orphans = new Set<number>();
  candidates.forEach((ino, i) => {
    const f = found[i];
    if (!f) return;
    orphans.add(ino);
    let record: InodeRecord | undefined;
    try {
      record = decodeRecord<InodeRecord>(keys[i], f.value);
    } catch (err) {
      // Described as undecodable below; deleting it is the same repair.
      if (!(err instanceof IntegrityError)) throw err;
      record = undefined;
    }
    const what = record
      ? `${typeName(record.mode)} (nlink ${record.nlink}${isReg(record.mode) ? `, ${record.size} bytes` : ''}) not reachable from the root` +
        (record.nlink === 0 ? ': unlinked while open, and the mount holding it crashed or still runs' : '')
      : 'undecodable inode record not reachable from the root';
    const nodes = census.dirNodes.get(ino) ?? [];
    const maps = census.chunkMaps.get(ino) ?? [];
    const index = census.chunkIndexes.get(ino) ?? [];
    ctx.problems.add(
      { kind: 'orphan-inode', ino, key: keys[i], what },
      { order: FIX_ORDER.orphans, offlineOnly: true, run: () => deleteOrphan(ctx, ino, nodes, maps, live, index) },
    );
  });
  return orphans;
}

async function checkChunkMaps(
  ctx: FsckContext,
  census: KeyCensus,
  walk: WalkResult,
  live: ReadonlySet<string>,
  garbage: GarbageState,
  orphans: ReadonlySet<number>,
): Promise<Set<string>> {
  const refs = new Set<string>();
  const chunkSize = ctx.chunkSize;
  if (chunkSize === undefined) return refs;
  const pastEnd = new Map<number, number[]>();
  const gone = new Map<number, number[]>();
  const unread: { ino: number; index: number }[] = [];
  for (const [ino, indexes] of census.chunkMaps) {
    const file = walk.files.get(ino);
    const end = file && isReg(file.record.mode) ? chunksFor(file.record.size, chunkSize) : 0;
    for (const index of indexes) {
      // Maps below the end of a reachable file were read by the data checks.
      if (index < end) continue;
      unread.push({ ino, index });
      if (walk.dirs.has(ino) || file) pushTo(pastEnd, ino, index);
      else if (!orphans.has(ino) && !walk.corrupt.has(ino) && !garbage.inodes.has(ino)) pushTo(gone, ino, index);
    }
  }
  // Read them all: their blocks are in use for as long as the maps exist.
  const keys = unread.map(({ ino, index }) => ctx.target.keys.chunkMap(ino, index));
  const found = await ctx.readMany(ctx.target.meta, keys);
  found.forEach((f, i) => {
    const ref = f && chunkRefOf(ctx, keys[i], f.value);
    if (ref && !isInline(ref)) refs.add(ref.id);
  });
  for (const [ino, indexes] of pastEnd) {
    const file = walk.files.get(ino);
    const size = file && isReg(file.record.mode) ? `the end (size ${file.record.size})` : `the end of a ${typeName((walk.dirs.get(ino) ?? file)?.record.mode ?? 0)}`;
    ctx.problems.add(
      {
        kind: 'chunk-map-past-eof',
        path: (walk.dirs.get(ino) ?? file)?.path,
        ino,
        what: `${indexes.length} chunk maps (from chunk ${Math.min(...indexes)}) lie past ${size}: left by writes whose size was never stored`,
      },
      {
        order: FIX_ORDER.chunkMaps,
        // A live mount stores chunks before the size that covers them.
        offlineOnly: true,
        run: async () => deleted(await deleteChunkMaps(ctx, ino, indexes, live), 'chunk maps and their blocks'),
      },
    );
  }
  const verify = goneVerifier(ctx, [...gone.keys()]);
  for (const [ino, indexes] of gone) {
    ctx.problems.add(
      { kind: 'orphan-chunk-maps', ino, what: `${indexes.length} chunk maps of inode ${ino}, which no longer exists and no garbage record lists` },
      {
        order: FIX_ORDER.chunkMaps,
        run: async () => {
          if (!(await verify()).has(ino)) return { outcome: 'gone', done: 'the inode exists or a garbage record lists it now' };
          return deleted(await deleteChunkMaps(ctx, ino, indexes, live), 'chunk maps and their blocks');
        },
      },
    );
  }
  return refs;
}

/**
 * Confirms, once for all, which inodes with leftover chunk maps are really gone: each has no
 * record, and no garbage record lists it in a scan made after that. A garbage record is written
 * in the same commit that deletes an inode, and deleted only after the grace period, so a
 * file deleted moments ago (whose maps readers may still use) is always caught.
 */
function goneVerifier(ctx: FsckContext, inos: number[]): () => Promise<Set<number>> {
  let verified: Promise<Set<number>> | undefined;
  return () => {
    verified ??= (async () => {
      const { meta, keys } = ctx.target;
      const records = await ctx.readMany(meta, inos.map((ino) => keys.inode(ino)));
      const absent = inos.filter((_, i) => !records[i]);
      const listed = new Set<number>();
      if (meta.scan) {
        const garbageKeys: string[] = [];
        for await (const key of meta.scan(keys.garbagePrefix())) garbageKeys.push(key);
        const found = await ctx.readMany(meta, garbageKeys);
        found.forEach((f, i) => {
          if (!f) return;
          const record = decodeRecord<{ inodes?: { ino: number }[] }>(garbageKeys[i], f.value);
          for (const { ino } of record.inodes ?? []) listed.add(ino);
        });
      }
      return new Set(absent.filter((ino) => !listed.has(ino)));
    })();
    return verified;
  };
}

/**
 * The chunk index of every inode the scan found chunk maps of must name them all (else truncate
 * and delete would miss them); index records of inodes that are gone are leftovers.
 */
async function checkChunkIndexes(
  ctx: FsckContext,
  census: KeyCensus,
  walk: WalkResult,
  garbage: GarbageState,
  orphans: ReadonlySet<number>,
): Promise<void> {
  for (const [ino, indexes] of census.chunkMaps) {
    const needed = indexes.filter((i) => i >= GROUP_CHUNKS);
    if (needed.length === 0) continue;
    let named: Set<number>;
    try {
      named = new Set(await presentChunks(ctx, ino));
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      named = new Set();
    }
    const unnamed = needed.filter((i) => !named.has(i));
    if (unnamed.length === 0) continue;
    const file = walk.files.get(ino);
    ctx.problems.add(
      {
        kind: 'chunk-index-missing',
        path: file?.path,
        ino,
        what: `${unnamed.length} chunk maps (from chunk ${Math.min(...unnamed)}) are missing from the file's chunk index: truncate and delete would leave them`,
      },
      // Setting bits is always safe: a bit names a chunk that may exist.
      { order: FIX_ORDER.chunkMaps - 1, run: () => indexChunks(ctx, ino, unnamed) },
    );
  }
  const verify = goneVerifier(ctx, [...census.chunkIndexes.keys()]);
  for (const [ino, recordKeys] of census.chunkIndexes) {
    if (reached(walk, ino) || orphans.has(ino) || garbage.inodes.has(ino) || census.chunkMaps.has(ino)) continue;
    ctx.problems.add(
      { kind: 'orphan-chunk-index', ino, what: `${recordKeys.length} chunk index records of inode ${ino}, which no longer exists and has no chunk maps` },
      {
        order: FIX_ORDER.chunkMaps,
        run: async () => {
          if (!(await verify()).has(ino)) return { outcome: 'gone', done: 'the inode exists or a garbage record lists it now' };
          return deleted(await deleteChunkIndex(ctx, ino, recordKeys), 'chunk index records');
        },
      },
    );
  }
}

/** Sets the index bits of chunk maps, one transaction per chunk map (each a few small records). */
async function indexChunks(ctx: FsckContext, ino: number, indexes: readonly number[]): Promise<RepairResult> {
  // Rewriting an existing bit changes nothing: one chunk per group is enough.
  const perGroup = [...new Map(indexes.map((i) => [Math.floor(i / GROUP_CHUNKS), i])).values()];
  for (const index of perGroup) {
    await transact(ctx.target.meta, undefined, (tx) => ctx.chunkIndex.stageCreate(tx, ino, index, true));
  }
  return { outcome: 'repaired', done: `${perGroup.length} groups of chunks added to the chunk index` };
}

function checkDirNodes(ctx: FsckContext, census: KeyCensus, walk: WalkResult, orphans: ReadonlySet<number>): void {
  for (const [ino, nodeKeys] of census.dirNodes) {
    if (orphans.has(ino) || walk.corrupt.has(ino)) continue;
    const unreached = nodeKeys.filter((key) => !walk.reachedNodes.has(key));
    if (unreached.length === 0) continue;
    const dir = walk.dirs.get(ino);
    if (!dir) {
      ctx.problems.add(
        { kind: 'orphan-dir-nodes', ino, what: `${unreached.length} directory nodes of inode ${ino}, which is not a directory (or is gone)` },
        { order: FIX_ORDER.dirNodes, run: () => removeAll(ctx, ino, unreached) },
      );
      continue;
    }
    for (const key of unreached) {
      if (walk.damagedTrees.has(ino)) {
        // The node may be below the missing one and hold the names that look lost: keep it.
        ctx.problems.add({
          kind: 'unreachable-dir-node',
          path: dir.path,
          ino,
          key,
          what: 'directory node outside its tree, kept: the tree has a missing or undecodable node it may belong under',
        });
        continue;
      }
      ctx.problems.add(
        { kind: 'unreachable-dir-node', path: dir.path, ino, key, what: 'directory node outside its tree (a split that lost its commit)' },
        { order: FIX_ORDER.dirNodes, run: () => removeDirNode(ctx, ino, key) },
      );
    }
  }
}

/**
 * Unreferenced blocks: raw block records whose block no chunk map (reachable or not) and no
 * garbage record names. Offline only: a live mount writes a block before the chunk map that
 * points at it.
 */
export function checkBlocks(ctx: FsckContext, blocks: BlockCensus, referenced: readonly ReadonlySet<string>[], garbage: GarbageState): void {
  for (const [id, rawKeys] of blocks.byBlock) {
    if (referenced.some((set) => set.has(id)) || garbage.blockIds.has(id)) continue;
    ctx.problems.add(
      {
        kind: 'unreferenced-block',
        key: rawKeys[0],
        what: `block ${id} (${rawKeys.length} ${rawKeys.length === 1 ? 'record' : 'records'}): no chunk map or garbage record refers to it`,
      },
      { order: FIX_ORDER.blocks, offlineOnly: true, run: () => deleteRawRecords(ctx, rawKeys) },
    );
  }
}

async function removeAll(ctx: FsckContext, ino: number, keys: readonly string[]): Promise<RepairResult> {
  let removed = 0;
  for (const key of keys) if ((await removeDirNode(ctx, ino, key)).outcome === 'repaired') removed++;
  return deleted(removed, 'directory nodes');
}

function deleted(n: number, what: string): RepairResult {
  return n > 0 ? { outcome: 'repaired', done: `${n} ${what} deleted` } : { outcome: 'gone', done: 'already gone' };
}

function pushTo(map: Map<number, number[]>, ino: number, index: number): void {
  const list = map.get(ino);
  if (list) list.push(index);
  else map.set(ino, [index]);
}
