/**
 * The copy-remount-checksum proof as the end-to-end tests run it on a store: a small source
 * tree, the script through a real mount, and fsck afterwards. Needs `npm run build`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { findRepoRoot } from '../helpers/mount.js';
import { patternBytes } from '../helpers/pattern.js';
import { run, type RunResult } from '../helpers/run.js';
import { runFsck } from './crash/fsck.js';

/** A small real-looking source tree: nested directories, text and binary files of mixed sizes (60 + 60 files). */
export async function makeProofSource(dir: string): Promise<void> {
  for (let d = 0; d < 4; d++) {
    const sub = join(dir, `dir-${d}`, 'nested');
    await mkdir(sub, { recursive: true });
    for (let f = 0; f < 15; f++) {
      const size = (f * 7919 + d * 104_729) % 300_000;
      await writeFile(join(sub, `file-${f}.bin`), patternBytes(size, d * 100 + f + 1));
      await writeFile(join(dir, `dir-${d}`, `note-${f}.txt`), `directory ${d}, note ${f}\n`.repeat(f + 1));
    }
  }
}

export interface ProofRun {
  /** The VOLDFS_* variables of the store. */
  readonly env: Record<string, string>;
  /** The tree from {@link makeProofSource}. */
  readonly source: string;
  /** The store name the script must report (`mc`, `redis`, `http`). */
  readonly store: string;
  readonly timeoutMs: number;
  /** Further script options (`--fixture DIR`, `--verify-only`, ...). */
  readonly args?: readonly string[];
  /** Names the run in the log. */
  readonly label: string;
}

/**
 * Runs scripts/copy-remount-checksum with extras of a 4 MiB file and 300 files in one
 * directory, and asserts that it went through a voldfs mount of `store` and found no difference.
 */
export async function runProof(proof: ProofRun): Promise<RunResult> {
  const script = join(await findRepoRoot(), 'scripts', 'copy-remount-checksum');
  const extra = proof.args ?? [];
  const r = await run(script, ['--source', proof.source, '--big-mib', '4', '--wide-files', '300', ...extra], {
    env: { ...process.env, ...proof.env },
    timeoutMs: proof.timeoutMs,
  });
  console.log(`[proof ${proof.label} ${extra.join(' ')}]\n${r.stdout}`);
  expect(r.timedOut, 'copy-remount-checksum timed out').toBe(false);
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-3000)}`).toBe(0);
  expect(r.stdout).toMatch(/^differences {2}0$/m);
  expect(r.stdout).toMatch(/^RESULT identical$/m);
  // The copy really went through voldfs, not into a plain directory.
  expect(r.stdout).toMatch(new RegExp(`^target +voldfs at .* \\(store ${proof.store}\\)$`, 'm'));
  return r;
}

/** `voldfs fsck --repair --offline`, then a check that finds nothing left. */
export async function expectFsckClean(env: Record<string, string>, label: string): Promise<void> {
  const fsck = await runFsck(env);
  expect(fsck, 'this build has no voldfs fsck').toBeDefined();
  console.log(`[fsck ${label}]\n${fsck?.output}`);
  expect(fsck?.problems).toEqual([]);
}
