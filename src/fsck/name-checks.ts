import type { Version } from '../backends/kv-store.js';
import type { Transaction } from '../cas/transaction.js';
import { ROOT_INO } from '../inode/records.js';
import { changedDirectories, inodeVersions, namesIn } from './confirm.js';
import type { FsckContext } from './context.js';
import { FIX_ORDER, type Fix, type ProblemInput } from './problems.js';
import type { Name, WalkResult } from './tree-walk.js';
import { fixParent, recountDirectory, removeEntry, setLinkCount } from './tx-repairs.js';

interface Finding {
  readonly ino: number;
  /** Version of the inode record the finding was judged on. */
  readonly version: Version;
  readonly problem: ProblemInput;
  readonly fix: Fix;
}

/**
 * Link counts and parents, once the walk has seen every entry: a directory has exactly one
 * name (none for the root), `parent` is the directory holding that name, and nlink is 2 plus
 * its subdirectories; any other inode's nlink is the number of entries naming it.
 *
 * While mounts may be active, names in directories that changed during the walk are counted
 * afresh, and a finding about an inode whose record changed since the walk read it is not
 * judged (see confirm.ts).
 */
export async function checkNames(ctx: FsckContext, walk: WalkResult): Promise<void> {
  const findings: Finding[] = [];
  const subdirs = new Map<number, number>();
  for (const dir of walk.dirs.values()) {
    const keeper = dir.ino === ROOT_INO ? undefined : (dir.names.find((n) => n.dir === dir.record.parent) ?? dir.names[0]);
    for (const extra of dir.names) {
      if (extra === keeper) continue;
      findings.push({
        ino: dir.ino,
        version: dir.version,
        problem: {
          kind: 'directory-extra-name',
          path: extra.path,
          ino: dir.ino,
          what: keeper ? `a second name of directory ${keeper.path} (directories have one name)` : 'an entry naming the root directory',
        },
        fix: { order: FIX_ORDER.entries, run: () => removeEntry(ctx, extra.dir, extra.name, dir.ino, (tx) => keeperStands(ctx, tx, keeper, dir.ino)) },
      });
    }
    if (keeper) subdirs.set(keeper.dir, (subdirs.get(keeper.dir) ?? 0) + 1);
    const parent = keeper?.dir ?? ROOT_INO;
    if (dir.record.parent !== parent) {
      findings.push({
        ino: dir.ino,
        version: dir.version,
        problem: {
          kind: 'dir-parent',
          path: dir.path,
          ino: dir.ino,
          what: `parent is ${dir.record.parent ?? 'unset'}, but the directory is named in directory ${parent}`,
        },
        fix: { order: FIX_ORDER.dirFields, run: () => fixParent(ctx, dir.ino, parent, keeper?.name) },
      });
    }
  }
  for (const dir of walk.dirs.values()) {
    const expected = 2 + (subdirs.get(dir.ino) ?? 0);
    if (dir.record.nlink === expected) continue;
    findings.push({
      ino: dir.ino,
      version: dir.version,
      problem: { kind: 'dir-nlink', path: dir.path, ino: dir.ino, what: `nlink is ${dir.record.nlink}, but 2 + ${expected - 2} subdirectories make ${expected}` },
      fix: { order: FIX_ORDER.nlink, run: () => recountDirectory(ctx, dir.ino) },
    });
  }
  const changed = await changedDirectories(ctx, walk);
  const fresh = await namesIn(ctx, changed);
  for (const file of walk.files.values()) {
    const names = file.dirs.filter((d) => !changed.has(d)).length + (fresh.get(file.ino) ?? 0);
    if (file.record.nlink === names) continue;
    findings.push({
      ino: file.ino,
      version: file.version,
      problem: {
        kind: 'nlink',
        path: file.path,
        ino: file.ino,
        what: `nlink is ${file.record.nlink}, but ${names} ${names === 1 ? 'entry names' : 'entries name'} it`,
      },
      // The count is only right if no mount links or unlinks the file: offline only.
      fix: { order: FIX_ORDER.nlink, offlineOnly: true, run: () => setLinkCount(ctx, file.ino, names) },
    });
  }
  const now = ctx.offline ? undefined : await inodeVersions(ctx, [...new Set(findings.map((f) => f.ino))]);
  let unjudged = 0;
  for (const f of findings) {
    if (now && now.get(f.ino) !== f.version) unjudged++;
    else ctx.problems.add(f.problem, f.fix);
  }
  if (unjudged > 0) {
    ctx.notes.push(`${unjudged} link counts or parents changed while they were checked (a mount at work) and were not judged`);
  }
}

/** Whether the name kept for a directory still names it, so removing another leaves it one. */
async function keeperStands(ctx: FsckContext, tx: Transaction, keeper: Name | undefined, ino: number): Promise<boolean> {
  if (!keeper) return true;
  const entry = await ctx.dirs.lookup(tx, keeper.dir, keeper.name);
  return entry !== undefined && entry[0] === ino;
}
