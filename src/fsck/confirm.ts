import type { Version } from '../backends/kv-store.js';
import { transact } from '../cas/transaction.js';
import { decodeRecord } from '../chunk/record-codec.js';
import pMap from 'p-map';
import { FsError } from '../inode/fs-error.js';
import { S_IFDIR, S_IFMT, type InodeRecord } from '../inode/records.js';
import type { FsckContext } from './context.js';
import { FIX_ORDER } from './problems.js';
import type { Suspect, WalkResult } from './tree-walk.js';
import { fixEntryType, removeDanglingEntry, typeName } from './tx-repairs.js';

/**
 * A walk is not a snapshot: while mounts are active a record read early and one read late may
 * disagree only because a mount changed one in between. Findings that compare records are
 * therefore confirmed before they are reported, unless fsck runs offline (nothing changes
 * then). What cannot be confirmed is counted in a note instead of reported as damage.
 */

/** Current versions of inode records; undefined for a record that is gone. */
export async function inodeVersions(ctx: FsckContext, inos: readonly number[]): Promise<Map<number, Version | undefined>> {
  const found = await ctx.readMany(ctx.target.meta, inos.map((ino) => ctx.target.keys.inode(ino)));
  return new Map(inos.map((ino, i) => [ino, found[i]?.version]));
}

/** Reports the walk's suspects that still hold when re-read in a read-only transaction. */
export async function reportSuspects(ctx: FsckContext, walk: WalkResult): Promise<void> {
  const holds = ctx.offline ? walk.suspects.map(() => true) : await pMap(walk.suspects, (s) => stillHolds(ctx, s), { concurrency: ctx.concurrency });
  let changed = 0;
  walk.suspects.forEach((s, i) => {
    if (!holds[i]) {
      changed++;
      return;
    }
    if (s.kind === 'dangling-entry') {
      ctx.problems.add(
        { kind: 'dangling-entry', path: s.path, ino: s.ino, what: `the entry names inode ${s.ino}, which has no record` },
        { order: FIX_ORDER.entries, run: () => removeDanglingEntry(ctx, s.dir, s.name, s.ino) },
      );
    } else {
      const record = walk.dirs.get(s.ino)?.record ?? walk.files.get(s.ino)?.record;
      ctx.problems.add(
        { kind: 'type-mismatch', path: s.path, ino: s.ino, what: `the entry says ${typeName(s.type)}, the inode is a ${typeName(record?.mode ?? 0)}` },
        { order: FIX_ORDER.entries, run: () => fixEntryType(ctx, s.dir, s.name, s.ino) },
      );
    }
  });
  if (changed > 0) ctx.notes.push(`${changed} entries changed while they were checked (a mount at work) and were not judged`);
}

async function stillHolds(ctx: FsckContext, s: Suspect): Promise<boolean> {
  const key = ctx.target.keys.inode(s.ino);
  try {
    return await transact(ctx.target.meta, undefined, async (tx) => {
      const entry = await ctx.dirs.lookup(tx, s.dir, s.name);
      if (!entry || entry[0] !== s.ino || entry[1] !== s.type) return false;
      const bytes = await tx.read(key);
      if (s.kind === 'dangling-entry') return bytes === undefined;
      return bytes !== undefined && (decodeRecord<InodeRecord>(key, bytes).mode & S_IFMT) !== s.type;
    });
  } catch (err) {
    // The directory itself went meanwhile (its tree is gone): nothing to judge.
    if (err instanceof FsError && err.code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Directories whose record changed since the walk read it (created, removed or renamed a name
 * in it, or were themselves moved or removed). Every namespace operation rewrites the record
 * of each directory it changes, so a directory not in this set was listed as it still is.
 */
export async function changedDirectories(ctx: FsckContext, walk: WalkResult): Promise<Set<number>> {
  if (ctx.offline) return new Set();
  const dirs = [...walk.dirs.values()];
  const now = await inodeVersions(ctx, dirs.map((d) => d.ino));
  return new Set(dirs.filter((d) => now.get(d.ino) !== d.version).map((d) => d.ino));
}

/** How many entries of each non-directory the `dirs` hold now (a fresh listing). */
export async function namesIn(ctx: FsckContext, dirs: ReadonlySet<number>): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  await pMap([...dirs], async (dir) => {
    let entries;
    try {
      entries = await ctx.dirs.list(ctx.target.meta, dir, true);
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOENT') return; // removed meanwhile
      throw err;
    }
    for (const [, [ino, type]] of entries) if (type !== S_IFDIR) counts.set(ino, (counts.get(ino) ?? 0) + 1);
  }, { concurrency: ctx.concurrency });
  return counts;
}
