import { ifVersion, type Version } from '../backends/kv-store.js';
import { IntegrityError } from '../backends/errors.js';
import { decodeRecord } from '../chunk/record-codec.js';
import pMap from 'p-map';
import type { GarbageRecord } from '../inode/records.js';
import { deleteChunkIndex, deleteChunkMaps } from './chunk-repairs.js';
import type { FsckContext } from './context.js';
import type { KeyCensus } from './key-census.js';
import { FIX_ORDER } from './problems.js';
import type { RepairResult } from './tx-repairs.js';

export interface GarbageEntry {
  readonly key: string;
  readonly version: Version;
  readonly record: GarbageRecord;
}

/** The garbage records of the volume and what they list. */
export interface GarbageState {
  readonly entries: GarbageEntry[];
  /** Blocks listed for deletion: not "unreferenced", the records account for them. */
  readonly blockIds: Set<string>;
  /** Dead inodes whose chunk maps the records will delete. */
  readonly inodes: Set<number>;
}

/** Reads every garbage record the scan listed. */
export async function readGarbage(ctx: FsckContext, census: KeyCensus): Promise<GarbageState> {
  const state: GarbageState = { entries: [], blockIds: new Set(), inodes: new Set() };
  const found = await ctx.readMany(ctx.target.meta, census.garbage);
  census.garbage.forEach((key, i) => {
    const f = found[i];
    if (!f) return;
    const record = decodeGarbage(key, f.value);
    if (!record) {
      ctx.problems.add({ kind: 'corrupt-record', key, what: 'a garbage record cannot be decoded: the blocks it lists show up as unreferenced' });
      return;
    }
    state.entries.push({ key, version: f.version, record });
    for (const ref of record.blocks ?? []) state.blockIds.add(ref.id);
    for (const { ino } of record.inodes ?? []) state.inodes.add(ino);
  });
  return state;
}

/**
 * Stages the collection of garbage records past their due date (what a mount does, so safe
 * while mounted) and returns the collection of those not yet due, which only an offline
 * repair may run: no reader can hold their blocks when nothing is mounted.
 * @param referenced blocks some chunk map points at: never deleted, whatever a record says
 * @param inodeExists whether an inode has a record (a listed inode that exists keeps its data)
 */
export function stageGarbage(
  ctx: FsckContext,
  state: GarbageState,
  census: KeyCensus,
  referenced: ReadonlySet<string>,
  inodeExists: (ino: number) => boolean,
): (() => Promise<RepairResult>)[] {
  const early: (() => Promise<RepairResult>)[] = [];
  const now = ctx.now();
  for (const entry of state.entries) {
    const collect = () => collectGarbage(ctx, entry, census, referenced, inodeExists);
    if (entry.record.notBefore <= now) {
      const what = describe(entry.record);
      ctx.problems.add(
        { kind: 'expired-garbage', key: entry.key, what: `a garbage record past its due date lists ${what}: the mount that wrote it is gone` },
        { order: FIX_ORDER.garbage, run: collect },
      );
    } else {
      ctx.counts.garbagePending++;
      early.push(collect);
    }
  }
  return early;
}

async function collectGarbage(
  ctx: FsckContext,
  entry: GarbageEntry,
  census: KeyCensus,
  referenced: ReadonlySet<string>,
  inodeExists: (ino: number) => boolean,
): Promise<RepairResult> {
  const { meta, blocks } = ctx.target;
  const current = await meta.get(entry.key);
  if (!current || current.version !== entry.version) return { outcome: 'gone', done: 'collected meanwhile by a mount' };
  const kept: string[] = [];
  if (blocks) {
    await pMap(entry.record.blocks ?? [], async (ref) => {
      if (referenced.has(ref.id)) kept.push(ref.id);
      else await blocks.delete(ref);
    }, { concurrency: ctx.concurrency });
  }
  for (const { ino } of entry.record.inodes ?? []) {
    if (inodeExists(ino) || (await meta.get(ctx.target.keys.inode(ino)))) {
      kept.push(`inode ${ino}`);
      continue;
    }
    // The scan listed every chunk map: what the file's size says is no bound on what exists.
    await deleteChunkMaps(ctx, ino, census.chunkMaps.get(ino) ?? [], referenced);
    await deleteChunkIndex(ctx, ino, census.chunkIndexes.get(ino));
  }
  await meta.delete(entry.key, ifVersion(entry.version));
  ctx.counts.garbageCollected++;
  const done = `collected ${describe(entry.record)}`;
  // A record listing something still in use is a bug elsewhere: say so, and keep it.
  return { outcome: 'repaired', done: kept.length > 0 ? `${done}; kept ${kept.join(', ')}, still in use` : done };
}

function describe(record: GarbageRecord): string {
  const parts: string[] = [];
  if (record.blocks?.length) parts.push(`${record.blocks.length} blocks`);
  if (record.inodes?.length) parts.push(`the data of ${record.inodes.length} deleted inodes`);
  return parts.join(' and ') || 'nothing';
}

function decodeGarbage(key: string, bytes: Buffer): GarbageRecord | undefined {
  let value: Partial<GarbageRecord> | null;
  try {
    value = decodeRecord<Partial<GarbageRecord> | null>(key, bytes);
  } catch (err) {
    if (err instanceof IntegrityError) return undefined;
    throw err;
  }
  if (typeof value !== 'object' || value === null || typeof value.notBefore !== 'number') return undefined;
  const blocksOk = value.blocks === undefined || (Array.isArray(value.blocks) && value.blocks.every((b) => typeof b?.id === 'string'));
  const inodesOk = value.inodes === undefined || (Array.isArray(value.inodes) && value.inodes.every((n) => Number.isSafeInteger(n?.ino)));
  return blocksOk && inodesOk ? (value as GarbageRecord) : undefined;
}
