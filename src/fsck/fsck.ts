import type { KvStore } from '../backends/kv-store.js';
import type { ReplicatedStore } from '../backends/wrappers/replicated-store.js';
import type { VolumeKeys } from '../inode/keys.js';
import { LossDetector } from '../inode/loss-detector.js';
import type { VolumeStores } from '../inode/volume.js';
import { checkAllocator, highestInode } from './allocator-check.js';
import { reportSuspects } from './confirm.js';
import { FsckContext, emptyCounts, type FsckCounts, type FsckOptions } from './context.js';
import { DataChecker } from './data-check.js';
import { readGarbage, stageGarbage, type GarbageState } from './garbage-check.js';
import { checkIntents } from './intent-check.js';
import { scanBlocks, scanMetadata } from './key-census.js';
import { checkBlocks, checkLeftovers } from './leftovers.js';
import { checkLocks } from './lock-check.js';
import { checkNames } from './name-checks.js';
import { checkReplicas } from './replica-check.js';
import { checkSessions } from './session-check.js';
import { FIX_ORDER, ProblemList, type Problem, type ProblemAction, type ProblemKind } from './problems.js';
import { openTarget } from './target.js';
import type { RepairResult } from './tx-repairs.js';
import { walkTree } from './tree-walk.js';

export interface FsckSummary extends FsckCounts {
  readonly repairAsked: boolean;
  readonly offline: boolean;
  /** Whether the store could list keys (orphans and unreferenced records need it). */
  readonly listed: boolean;
  readonly problems: number;
  readonly byKind: Partial<Record<ProblemKind, number>>;
  readonly byAction: Partial<Record<ProblemAction, number>>;
  /** Damage still there after this run (its problems' action is not repaired/gone). */
  readonly damageLeft: number;
}

export interface FsckReport {
  readonly summary: FsckSummary;
  readonly problems: readonly Problem[];
  /** What could not be checked, and why. */
  readonly notes: readonly string[];
  /** 0: clean, or every damage repaired (leftovers may remain); 1: damage left. */
  readonly exitCode: 0 | 1;
}

/**
 * Checks a volume against every invariant of DESIGN.md and, with `repair`, fixes what is safe
 * to fix. Order: settle pending transactions; scan keys (before the walk, so records created
 * during it are never taken for leftovers); walk the tree from the root checking entries,
 * inodes and file data; compare with the scan (orphans, leftovers, unreferenced blocks);
 * check the allocator; then run the staged repairs, each re-checking in a transaction.
 *
 * Safe against live mounts: repairs that need a still view of the whole volume are staged as
 * offline-only and run only with `offline` (see FsckOptions.offline); everything else a
 * mount could race with is re-read in the repair's own transaction.
 * @throws VolumeNotFormatted when the prefix holds no volume; StoreError when the store fails;
 *   ConfigError / WrongPassphrase when an encrypted volume cannot be unlocked
 */
/**
 * A domain (server) without the volume's marker record lost everything it held; the walk
 * reports what that broke. Planting the markers again, last, lets mounts in once repaired.
 */
async function checkLossMarkers(
  meta: KvStore,
  keys: VolumeKeys,
  volumeId: string,
  problems: ProblemList,
  replication: ReplicatedStore | undefined,
): Promise<void> {
  const detector = new LossDetector(meta, keys);
  const lost = await detector.lostDomains();
  if (lost.length === 0) return;
  problems.add(
    {
      kind: 'store-lost-data',
      what:
        `store domain(s) ${lost.join(', ')} lost their data (a server restarted empty?); mounts are refused ` +
        'until a repair has run: what it held is reported as lost or repaired above',
    },
    {
      order: FIX_ORDER.lossMarkers,
      run: async () => {
        // The domains that missed writes are refilled by now: their markers go before they are trusted again.
        await replication?.clearMissedMarkers();
        await detector.plant(volumeId);
        return { outcome: 'repaired', done: 'marker records written again: mounts are allowed' };
      },
    },
  );
}

export async function fsckVolume(stores: VolumeStores, options: FsckOptions = {}): Promise<FsckReport> {
  const problems = new ProblemList();
  const target = await openTarget(stores, problems);
  if (!target) return finish(problems, [], undefined, options);
  const ctx = new FsckContext(target, problems, options);
  const notes = ctx.notes;
  if (options.repair && !ctx.repair) notes.push('nothing was repaired: the superblock is missing (restore it first)');
  if (!target.superblock) notes.push('file data was not checked: without the superblock the chunk size and translators are unknown');

  ctx.phase = 'intents';
  ctx.report();
  const intentNote = await checkIntents(ctx);
  if (intentNote) notes.push(intentNote);

  ctx.phase = 'scan';
  ctx.report();
  const blockCensus = target.blocks ? await scanBlocks(ctx) : undefined;
  const census = await scanMetadata(ctx);
  if (!census) {
    notes.push(
      `the store (${target.meta.name}) cannot list keys: orphan inodes, chunk maps past the end, unreachable directory ` +
        'nodes, garbage records and unreferenced blocks cannot be found there; everything reachable from the root was checked',
    );
  } else if (target.blocks && !blockCensus) {
    notes.push(`the data store (${target.data.name}) cannot list keys: unreferenced blocks cannot be found`);
  }

  ctx.phase = 'walk';
  ctx.report();
  const data = new DataChecker(ctx, census);
  const walk = await walkTree(ctx, (files) => data.checkFiles(files));
  if (walk) {
    await reportSuspects(ctx, walk);
    await checkNames(ctx, walk);
  }

  ctx.phase = 'leftovers';
  ctx.report();
  let garbage: GarbageState | undefined;
  let early: (() => Promise<RepairResult>)[] = [];
  if (census && walk) {
    garbage = await readGarbage(ctx, census);
    const { orphans, leftoverRefs } = await checkLeftovers(ctx, census, walk, data.referenced, garbage);
    const exists = (ino: number) => walk.dirs.has(ino) || walk.files.has(ino) || walk.corrupt.has(ino) || orphans.has(ino);
    early = stageGarbage(ctx, garbage, census, data.referenced, exists);
    if (blockCensus) checkBlocks(ctx, blockCensus, [data.referenced, leftoverRefs], garbage);
  } else if (census) {
    notes.push('leftovers were not looked for: without a usable root everything would look orphaned');
  }
  await checkAllocator(ctx, highestInode(walk, census, garbage));
  await checkSessions(ctx);
  const lockNote = await checkLocks(ctx);
  if (lockNote) notes.push(lockNote);

  await checkReplicas(ctx);
  if (target.superblock) await checkLossMarkers(target.meta, target.keys, target.superblock.volumeId, problems, target.replication);

  ctx.phase = 'repair';
  await runRepairs(ctx);
  // Offline nothing can read replaced blocks any more: garbage not yet due goes too.
  if (ctx.repair && ctx.offline) {
    for (const collect of early) {
      try {
        await collect();
      } catch (err) {
        notes.push(`a garbage record not yet due could not be collected: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    // After the repairs, so that the keys they deleted leave the listing too.
    if (target.data.compactListing) {
      const { before, after } = await target.data.compactListing(target.keys.prefix);
      notes.push(`key listing compacted: ${before} keys recorded, ${after} still exist`);
    }
  }
  ctx.phase = 'done';
  ctx.report();
  return finish(problems, notes, ctx, options);
}

async function runRepairs(ctx: FsckContext): Promise<void> {
  const staged = ctx.problems.staged();
  for (const { problem, fix } of staged) {
    if (fix.offlineOnly && !ctx.offline) {
      problem.action = 'needs-offline';
      problem.done = 'safe only with --offline, when no mount is active';
    }
  }
  if (!ctx.repair) return;
  const runnable = staged.filter(({ problem }) => problem.action === 'left');
  ctx.repairsTotal = runnable.length;
  for (const { problem, fix } of runnable) {
    try {
      const result = await fix.run();
      problem.action = result.outcome;
      problem.done = result.done;
    } catch (err) {
      // Reported, not hidden: the problem stays listed as failed with the store's message.
      problem.action = 'failed';
      problem.done = err instanceof Error ? err.message : String(err);
    }
    ctx.repairsDone++;
    if (ctx.repairsDone % 64 === 0) ctx.report();
  }
}

function finish(problems: ProblemList, notes: string[], ctx: FsckContext | undefined, options: FsckOptions): FsckReport {
  const byKind: Partial<Record<ProblemKind, number>> = {};
  const byAction: Partial<Record<ProblemAction, number>> = {};
  for (const p of problems.all) {
    byKind[p.kind] = (byKind[p.kind] ?? 0) + 1;
    byAction[p.action] = (byAction[p.action] ?? 0) + 1;
  }
  const damageLeft = problems.damageLeft().length;
  const counts: FsckCounts = ctx?.counts ?? emptyCounts();
  return {
    summary: {
      ...counts,
      repairAsked: Boolean(options.repair),
      offline: Boolean(options.offline),
      listed: Boolean(ctx?.target.meta.scan),
      problems: problems.all.length,
      byKind,
      byAction,
      damageLeft,
    },
    problems: problems.all,
    notes,
    exitCode: damageLeft > 0 ? 1 : 0,
  };
}
