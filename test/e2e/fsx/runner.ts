/**
 * Runs one sequence of operations on a reference tree and a tree under test side by side,
 * comparing every result and the whole trees after every step, as fsx does.
 */
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { compareTrees, snapshotTree } from '../../helpers/tree-snapshot.js';
import { applyOp, describeOp, PRELUDE, type FsOp, type OpResult } from './ops.js';

/** A tree to run operations on. `apply` defaults to {@link applyOp}. */
export interface FsxTarget {
  readonly root: string;
  readonly apply?: (root: string, op: FsOp) => Promise<OpResult>;
}

const TREE_OPTS = { mtime: false, owner: false, nlink: true, hardLinks: true } as const;

/**
 * Applies {@link PRELUDE} then `ops` to a fresh directory `<target.root>/<runName>` in both targets.
 * @throws AssertionError naming the step, the operations up to it, and what differed.
 */
export async function runSequence(randomOps: readonly FsOp[], reference: FsxTarget, subject: FsxTarget, runName: string): Promise<void> {
  const refDir = join(reference.root, runName);
  const subDir = join(subject.root, runName);
  const ops = [...PRELUDE, ...randomOps];
  await mkdir(refDir, { mode: 0o755 });
  await mkdir(subDir, { mode: 0o755 });
  const history = (upTo: number): string => ops.slice(0, upTo + 1).map((o, i) => `  ${i}: ${describeOp(o)}`).join('\n');
  try {
    for (const [i, op] of ops.entries()) {
      const want = await (reference.apply ?? applyOp)(refDir, op);
      const got = await (subject.apply ?? applyOp)(subDir, op);
      assert.deepEqual(got, want, `step ${i} ${describeOp(op)}: result ${JSON.stringify(got)} != reference ${JSON.stringify(want)}\n${history(i)}`);
      const diffs = compareTrees(await snapshotTree(refDir, { hash: false }), await snapshotTree(subDir, { hash: false }), TREE_OPTS);
      assert.deepEqual(diffs, [], `trees differ after step ${i} ${describeOp(op)}:\n${diffs.join('\n')}\n${history(i)}`);
    }
    const diffs = compareTrees(await snapshotTree(refDir), await snapshotTree(subDir), TREE_OPTS);
    assert.deepEqual(diffs, [], `trees differ at the end (contents included):\n${diffs.join('\n')}\n${history(ops.length - 1)}`);
  } finally {
    await rm(refDir, { recursive: true, force: true });
    await rm(subDir, { recursive: true, force: true });
  }
}
