import { IntegrityError } from '../backends/errors.js';
import { transact } from '../cas/transaction.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import { ROOT_INO } from '../inode/records.js';
import type { FsckContext } from './context.js';
import type { GarbageState } from './garbage-check.js';
import type { KeyCensus } from './key-census.js';
import { FIX_ORDER } from './problems.js';
import type { WalkResult } from './tree-walk.js';
import type { RepairResult } from './tx-repairs.js';

/** Highest inode number anything refers to: records, entries, chunk maps, directory nodes, garbage. */
export function highestInode(walk: WalkResult | undefined, census: KeyCensus | undefined, garbage: GarbageState | undefined): number {
  let max = ROOT_INO;
  const see = (ino: number) => {
    if (ino > max) max = ino;
  };
  if (walk) for (const set of [walk.dirs.keys(), walk.files.keys(), walk.corrupt, walk.absent]) for (const ino of set) see(ino);
  if (census) for (const set of [census.inodes, census.chunkMaps.keys(), census.dirNodes.keys()]) for (const ino of set) see(ino);
  if (garbage) for (const ino of garbage.inodes) see(ino);
  return max;
}

/**
 * The allocator record must be ahead of every inode number in use, or a create would pick a
 * taken number and fail for ever. A record that is behind is moved to just past the highest
 * number (ranges mounts hold were claimed from the record, so they lie below it). A lost
 * record is rebuilt with a margin when mounts may be active, since the ranges they claimed
 * from the lost record are unknown.
 */
export async function checkAllocator(ctx: FsckContext, highest: number): Promise<void> {
  const key = ctx.target.keys.inodeAllocator();
  const found = await ctx.target.meta.get(key);
  const next = found ? readNext(key, found.value) : undefined;
  if (next !== undefined && next > highest) return;
  const rebuilt = !ctx.offline && next === undefined ? highest + 1 + ctx.allocatorMargin : highest + 1;
  const run = () => raise(ctx, key, highest, rebuilt);
  if (next === undefined) {
    ctx.problems.add(
      { kind: 'allocator-missing', key, what: `the inode allocator record is ${found ? 'undecodable' : 'missing'}: creating files fails` },
      { order: FIX_ORDER.allocator, run },
    );
  } else {
    ctx.problems.add(
      { kind: 'allocator-behind', key, what: `the inode allocator would hand out ${next}, but inode numbers up to ${highest} are in use` },
      { order: FIX_ORDER.allocator, run },
    );
  }
}

function raise(ctx: FsckContext, key: string, highest: number, target: number): Promise<RepairResult> {
  return transact(ctx.target.meta, undefined, async (tx) => {
    const bytes = await tx.read(key);
    const current = bytes ? readNext(key, bytes) : undefined;
    if (current !== undefined && current > highest) return { outcome: 'gone', done: `the allocator is at ${current} now` };
    tx.write(key, encodeRecord({ next: target }));
    return { outcome: 'repaired', done: `next inode number set to ${target}` };
  });
}

function readNext(key: string, bytes: Buffer): number | undefined {
  try {
    const { next } = decodeRecord<{ next?: unknown }>(key, bytes) ?? {};
    return Number.isSafeInteger(next) ? (next as number) : undefined;
  } catch (err) {
    if (err instanceof IntegrityError) return undefined;
    throw err;
  }
}
