// fsx-style property test: random sequences of file operations applied to a local reference
// directory and to the tree under test, comparing results, errnos and whole trees.
// Bounds: VOLDFS_FSX_RUNS (default 50) sequences of up to VOLDFS_FSX_OPS (default 40)
// operations; VOLDFS_FSX_SEED and VOLDFS_FSX_PATH (both printed on failure) replay a failure.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { useVoldfsMount } from '../helpers/mount-hooks.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { applyOp, opArb, type FsOp } from './fsx/ops.js';
import { runSequence, type FsxTarget } from './fsx/runner.js';

const RUNS = Number(process.env.VOLDFS_FSX_RUNS ?? 50);
const OPS = Number(process.env.VOLDFS_FSX_OPS ?? 40);
const SEED = process.env.VOLDFS_FSX_SEED === undefined ? undefined : Number(process.env.VOLDFS_FSX_SEED);
const PATH = process.env.VOLDFS_FSX_PATH;
const TIMEOUT_MS = 600_000;

/** Checks the property for `subjectRoot()` against a fresh local reference directory. */
async function check(subject: () => FsxTarget, params: fc.Parameters<[FsOp[]]> = {}): Promise<fc.RunDetails<[FsOp[]]>> {
  const refRoot = await makeTempDir('fsx-ref');
  let run = 0;
  const property = fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: OPS, size: 'max' }), async (ops) => {
    await runSequence(ops, { root: refRoot }, subject(), `run-${run++}`);
  });
  return fc.check(property, { numRuns: RUNS, seed: SEED, path: PATH, ...params });
}

function expectPass(details: fc.RunDetails<[FsOp[]]>): void {
  if (details.failed) {
    const replay = `replay with VOLDFS_FSX_SEED=${details.seed} VOLDFS_FSX_PATH=${details.counterexamplePath ?? ''}`;
    throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}\n${replay}\n${String(details.errorInstance)}`);
  }
  if (PATH === undefined) expect(details.numRuns).toBe(RUNS);
}

describe('fsx: local directory vs local directory (validates the harness)', () => {
  it('finds no difference between two local trees', async () => {
    const root = await makeTempDir('fsx-local');
    expectPass(await check(() => ({ root })));
  }, TIMEOUT_MS);

  it('catches a tree that corrupts writes past 1 MiB', async () => {
    const root = await makeTempDir('fsx-broken');
    const broken: FsxTarget = {
      root,
      apply: (dir, op) =>
        applyOp(dir, op.op === 'write' && op.offset + op.length > 1024 * 1024 ? { ...op, seed: op.seed + 1 } : op),
    };
    const details = await check(() => broken, { numRuns: 200, endOnFailure: true });
    expect(details.failed).toBe(true);
    expect(String(details.errorInstance)).toMatch(/content sha256|result/);
  }, TIMEOUT_MS);

  it('catches a tree that answers a different errno', async () => {
    const root = await makeTempDir('fsx-errno');
    const broken: FsxTarget = {
      root,
      apply: async (dir, op) => {
        const r = await applyOp(dir, op);
        return 'err' in r && r.err === 'ENOTEMPTY' ? { err: 'EEXIST' } : r;
      },
    };
    const details = await check(() => broken, { numRuns: 300, endOnFailure: true });
    expect(details.failed).toBe(true);
    expect(String(details.errorInstance)).toMatch(/"EEXIST"/);
  }, TIMEOUT_MS);
});

describe('fsx: voldfs vs local directory', () => {
  const mount = useVoldfsMount();
  it(`agrees with a local directory over ${RUNS} runs of up to ${OPS} operations`, async () => {
    expectPass(await check(() => ({ root: mount.get().dir })));
  }, TIMEOUT_MS);
});
