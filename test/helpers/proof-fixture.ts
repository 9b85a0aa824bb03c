/**
 * Builds the source tree of the copy-remount-checksum proof: copies of real trees from this
 * machine plus generated extras that real trees rarely hold (a file over 100 MB, sparse files,
 * hard-link groups, dangling and looping symlinks, odd modes, nanosecond and extreme mtimes,
 * odd names, a deep path, a wide directory, a FIFO).
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { run } from './run.js';
import { patternBytes } from './pattern.js';

/** Options of {@link buildFixture}. */
export interface FixtureOptions {
  /** Real trees copied in (with `cp -a`) under `real/<basename>`. */
  sources: readonly string[];
  /** Add the generated extras under `extras/` (default true). */
  extras?: boolean;
  /** Size of the large file in MiB (default 110: over 100 MB); 0 leaves it out. */
  bigMiB?: number;
  /** Files in the wide directory (default 2000). */
  wideFiles?: number;
}

const MiB = 1024 * 1024;

async function mustRun(cmd: string, args: readonly string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 30 * 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim().slice(0, 500)}`);
}

/** Sets mtime (and atime) with nanosecond precision; utimes() in node only takes floats. */
async function setTimeNs(path: string, epochNs: bigint, noDeref = false): Promise<void> {
  const s = epochNs / 1_000_000_000n;
  const ns = String(epochNs % 1_000_000_000n).padStart(9, '0');
  await mustRun('touch', [...(noDeref ? ['-h'] : []), '-d', `@${s}.${ns}`, path]);
}

async function writeSparse(path: string, pieces: ReadonlyArray<[offset: number, length: number]>, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const [offset, length] of pieces) await fh.write(patternBytes(length, offset + 1), 0, length, offset);
  } finally {
    await fh.close();
  }
  await truncate(path, size);
}

async function writeBig(path: string, mib: number): Promise<void> {
  const block = randomBytes(MiB);
  const fh = await open(path, 'w');
  try {
    for (let i = 0; i < mib; i++) {
      block.writeUInt32LE(i, 0); // every MiB differs, so a store that deduplicates blocks still stores them all
      await fh.write(block, 0, MiB);
    }
    await fh.write(block, 0, 123); // a size that is not a multiple of any block size
  } finally {
    await fh.close();
  }
}

async function buildExtras(root: string, opts: FixtureOptions): Promise<void> {
  await mkdir(root);
  const d = (...p: string[]): string => join(root, ...p);

  await mkdir(d('empty'));
  for (let i = 0; i < 10; i++) await writeFile(d('empty', `e${i}`), '');
  if ((opts.bigMiB ?? 110) > 0) await writeBig(d('big.bin'), opts.bigMiB ?? 110);

  await mkdir(d('sparse'));
  await writeSparse(d('sparse', 'head-hole'), [[64 * MiB, 4096]], 64 * MiB + 4096);
  await writeSparse(d('sparse', 'mid-hole'), [[0, MiB], [40 * MiB + 7, 1000]], 40 * MiB + 1007);
  await writeSparse(d('sparse', 'tail-hole'), [[0, 1024]], 32 * MiB);
  await writeSparse(d('sparse', 'all-hole'), [], 16 * MiB);

  await mkdir(d('links', 'sub'), { recursive: true });
  await writeFile(d('links', 'target.txt'), 'linked content\n');
  await link(d('links', 'target.txt'), d('links', 'hard1'));
  await link(d('links', 'target.txt'), d('links', 'sub', 'hard2'));
  await writeFile(d('links', 'pair-a'), patternBytes(70_000, 5));
  await link(d('links', 'pair-a'), d('links', 'sub', 'pair-b'));

  await mkdir(d('symlinks'));
  await symlink('../links/target.txt', d('symlinks', 'relative'));
  await symlink('/etc/hostname', d('symlinks', 'absolute'));
  await symlink('nowhere/at/all', d('symlinks', 'dangling'));
  await symlink('../links', d('symlinks', 'to-dir'));
  await symlink('loop', d('symlinks', 'loop'));
  await symlink(`${'long/'.repeat(200)}end`, d('symlinks', 'long-target'));

  await mkdir(d('modes'));
  for (const m of [0o600, 0o644, 0o755, 0o4755, 0o2755, 0o444, 0o000]) {
    const p = d('modes', `m${m.toString(8).padStart(4, '0')}`);
    await writeFile(p, `mode ${m.toString(8)}\n`);
    await chmod(p, m);
  }
  await mkdir(d('modes', 'dir1777'));
  await chmod(d('modes', 'dir1777'), 0o1777);
  await mkdir(d('modes', 'dir0700'));
  await writeFile(d('modes', 'dir0700', 'inside'), 'x');
  await chmod(d('modes', 'dir0700'), 0o700);
  await mkdir(d('owners'));
  await writeFile(d('owners', 'u1234'), 'owned');
  await mustRun('chown', ['1234:5678', d('owners', 'u1234')]);

  await mkdir(d('names'));
  for (const name of ['with space', 'new\nline', 'tab\there', 'ünïcødé-名前', '-dash', '.hidden', 'q"uote\'s', 'n'.repeat(255)]) {
    await writeFile(d('names', name), name);
  }

  let deep = d('deep');
  for (let i = 0; i < 30; i++) deep = join(deep, `level-${i}`);
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'bottom'), 'deep');

  await mkdir(d('wide'));
  for (let i = 0; i < (opts.wideFiles ?? 2000); i++) {
    await writeFile(d('wide', `f${String(i).padStart(5, '0')}`), patternBytes((i * 37) % 5000, i + 1));
  }

  await mustRun('mkfifo', [d('fifo')]);

  // Times last: creating entries above changed the directories' mtimes.
  await mkdir(d('times'));
  await writeFile(d('times', 'old'), 'old');
  await writeFile(d('times', 'future'), 'future');
  await writeFile(d('times', 'nanos'), 'nanos');
  await symlink('old', d('times', 'link'));
  await setTimeNs(d('times', 'old'), 315_532_800_123_456_789n); // 1980-01-01
  await setTimeNs(d('times', 'future'), 4_102_444_800_000_000_001n); // 2100-01-01
  await setTimeNs(d('times', 'nanos'), 1_700_000_000_999_999_999n);
  await setTimeNs(d('times', 'link'), 1_600_000_000_000_000_500n, true);
  await utimes(d('times'), 1_000_000_000, 1_000_000_000);
}

/**
 * Builds the fixture tree at `dir` (which must not exist): `real/<name>` per source, `extras/`.
 * Runs as root to keep owners, setuid bits and the chown'ed extra.
 */
export async function buildFixture(dir: string, opts: FixtureOptions): Promise<void> {
  await mkdir(dir);
  if (opts.sources.length > 0) {
    await mkdir(join(dir, 'real'));
    const seen = new Set<string>();
    for (const src of opts.sources) {
      let name = basename(src) || 'root';
      while (seen.has(name)) name += '_';
      seen.add(name);
      await mustRun('cp', ['-a', src, join(dir, 'real', name)]);
    }
  }
  if (opts.extras ?? true) await buildExtras(join(dir, 'extras'), opts);
}
