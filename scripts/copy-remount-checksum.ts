/**
 * copy-remount-checksum: proves that voldfs keeps a real tree intact across an unmount.
 *
 * Builds a fixture (real trees from this machine plus generated extras), mounts voldfs with the
 * store named by the VOLDFS_* variables, copies the fixture in preserving modes, owners, times
 * and hard links, unmounts, remounts, and compares every entry: type, mode, owner, size, nlink,
 * mtime (ns), SHA-256 of the content, symlink target and hard-link group. Prints a summary and
 * every difference; exits 0 if none, 1 if any, 2 if it could not run.
 *
 * With --target-dir DIR nothing is mounted: the copy goes to DIR (a plain directory), which is
 * how the comparison itself is tested.
 *
 * Run through the wrapper: scripts/copy-remount-checksum --help
 */
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultStoreEnv, mountVoldfs, type VoldfsMount } from '../test/helpers/mount.js';
import { buildFixture } from '../test/helpers/proof-fixture.js';
import { run } from '../test/helpers/run.js';
import { makeTempDir, removeTempDir } from '../test/helpers/temp-dir.js';
import { compareTreesDetailed, snapshotTree, type TreeDiff, type TreeSnapshot } from '../test/helpers/tree-snapshot.js';

const USAGE = `usage: copy-remount-checksum [options]

Source tree (default: a fresh fixture from /usr/share/doc and /usr/lib/python3 plus extras):
  --source DIR          real tree to copy into the fixture (repeatable)
  --no-extras           leave out the generated extras
  --big-mib N           size of the large extra file in MiB (default 110; 0 to leave it out)
  --wide-files N        files in the extras' wide directory (default 2000)
  --fixture DIR         build the fixture in DIR/tree, or reuse DIR/tree if DIR/ready exists
  --keep-fixture        do not delete a fixture built in a temp dir

Target (default: a voldfs mount; store from VOLDFS_DB etc., else LMDB in a temp dir):
  --target-dir DIR      copy into the plain directory DIR instead of mounting (no remount)
  --verify-only         skip the copy: compare the fixture with what the target already holds
  --no-mkfs             do not run 'voldfs mkfs' before mounting (store already formatted)
  --copy-tool TOOL      cp (cp -a, default), rsync (rsync -aH) or tar (pax format, ns mtimes)
  --mtime-granularity-ns N   compare mtimes truncated to N ns (default 1: exact)
  --max-diffs N         differences listed (default 200; all are counted)
  -h, --help

Exit status: 0 identical, 1 differences found, 2 could not run.`;

interface Options {
  sources: string[];
  extras: boolean;
  bigMiB: number;
  wideFiles: number;
  fixture?: string;
  keepFixture: boolean;
  targetDir?: string;
  verifyOnly: boolean;
  mkfs: boolean;
  copyTool: 'cp' | 'rsync' | 'tar';
  mtimeGranularityNs: bigint;
  maxDiffs: number;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      source: { type: 'string', multiple: true },
      'no-extras': { type: 'boolean' },
      'big-mib': { type: 'string' },
      'wide-files': { type: 'string' },
      fixture: { type: 'string' },
      'keep-fixture': { type: 'boolean' },
      'target-dir': { type: 'string' },
      'verify-only': { type: 'boolean' },
      'no-mkfs': { type: 'boolean' },
      'copy-tool': { type: 'string' },
      'mtime-granularity-ns': { type: 'string' },
      'max-diffs': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  const int = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const tool = values['copy-tool'] ?? 'cp';
  if (tool !== 'cp' && tool !== 'rsync' && tool !== 'tar') throw new UsageError(`--copy-tool must be cp, rsync or tar, got ${JSON.stringify(tool)}`);
  if (values['verify-only'] && values.fixture === undefined) throw new UsageError('--verify-only needs --fixture DIR (the fixture the target was copied from)');
  return {
    sources: (values.source ?? ['/usr/share/doc', '/usr/lib/python3']).map((s) => resolve(s)),
    extras: !values['no-extras'],
    bigMiB: int('big-mib', values['big-mib'], 110),
    wideFiles: int('wide-files', values['wide-files'], 2000),
    fixture: values.fixture === undefined ? undefined : resolve(values.fixture),
    keepFixture: values['keep-fixture'] ?? false,
    targetDir: values['target-dir'] === undefined ? undefined : resolve(values['target-dir']),
    verifyOnly: values['verify-only'] ?? false,
    mkfs: !values['no-mkfs'],
    copyTool: tool,
    mtimeGranularityNs: BigInt(int('mtime-granularity-ns', values['mtime-granularity-ns'], 1) || 1),
    maxDiffs: int('max-diffs', values['max-diffs'], 200),
  };
}

const log = (msg: string): void => {
  process.stderr.write(`copy-remount-checksum: ${msg}\n`);
};
const secondsSince = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;
const mbps = (bytes: number, s: number): string => (bytes / 1e6 / Math.max(s, 1e-9)).toFixed(1);

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function mustRun(cmd: string, args: readonly string[]): Promise<void> {
  const r = await run(cmd, args, { timeoutMs: 60 * 60_000 });
  if (r.code !== 0) throw new Error(`${[cmd, ...args].join(' ')} failed (exit ${r.code}):\n${r.stderr.trim().slice(0, 2000)}`);
}

/** Copies `src` (a directory) to `dest` (must not exist), preserving everything the tool can. */
async function copyTree(tool: Options['copyTool'], src: string, dest: string): Promise<void> {
  if (tool === 'cp') return mustRun('cp', ['-a', src, dest]);
  if (tool === 'rsync') return mustRun('rsync', ['-aH', '--numeric-ids', `${src}/`, `${dest}/`]);
  await mkdir(dest);
  return mustRun('bash', ['-c', 'set -o pipefail; tar --format=posix -C "$1" -cf - . | tar -C "$2" -xpf - --numeric-owner', 'bash', src, dest]);
}

function summarize(tree: TreeSnapshot): { files: number; dirs: number; symlinks: number; other: number; bytes: number; linkGroups: number } {
  const s = { files: 0, dirs: 0, symlinks: 0, other: 0, bytes: 0, linkGroups: 0 };
  const inos = new Map<bigint, number>();
  for (const e of tree.values()) {
    if (e.type === 'file') {
      s.files++;
      s.bytes += e.size;
      inos.set(e.ino, (inos.get(e.ino) ?? 0) + 1);
    } else if (e.type === 'dir') s.dirs++;
    else if (e.type === 'symlink') s.symlinks++;
    else s.other++;
  }
  s.linkGroups = [...inos.values()].filter((n) => n > 1).length;
  return s;
}

/** "mode 120, mtime 3": how many differences of each kind, most frequent first. */
function countKinds(diffs: readonly TreeDiff[]): string {
  const counts = new Map<string, number>();
  for (const d of diffs) counts.set(d.kind, (counts.get(d.kind) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
}

async function dropCaches(): Promise<void> {
  await mustRun('sync', []);
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
  } catch (err) {
    log(`note: cannot drop the page cache (${(err as Error).message}); the verify pass may read from cache`);
  }
}

async function main(argv: string[]): Promise<number> {
  let opts: Options | undefined;
  try {
    opts = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (opts === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (opts.targetDir === undefined && process.env.VOLDFS_DB === 'mem') {
    process.stderr.write('VOLDFS_DB=mem keeps records in the daemon process, so nothing survives the remount this script tests: use lmdb, mc, redis or http\n');
    return 2;
  }
  const cleanups: Array<() => Promise<void>> = [];
  let code: number;
  try {
    code = await proof(opts, cleanups);
  } catch (err) {
    process.stderr.write(`copy-remount-checksum: ${(err as Error).message}\n`);
    code = 2;
  }
  for (const c of cleanups) {
    try {
      await c();
    } catch (err) {
      process.stderr.write(`copy-remount-checksum: cleanup: ${(err as Error).message}\n`);
      code = 2;
    }
  }
  return code;
}

/** The proof itself; registers what must be undone in `cleanups` (run in order, even on failure). */
async function proof(opts: Options, cleanups: Array<() => Promise<void>>): Promise<number> {
  // Fixture.
  let fixtureBase = opts.fixture;
  if (fixtureBase === undefined) {
    fixtureBase = await makeTempDir('proof-fixture');
    const made = fixtureBase;
    if (!opts.keepFixture) cleanups.push(() => removeTempDir(made));
    else log(`fixture kept at ${made}`);
  }
  const fixture = join(fixtureBase, 'tree');
  if (!(await exists(join(fixtureBase, 'ready')))) {
    if (opts.verifyOnly) throw new Error(`${fixtureBase}/ready is missing: --verify-only needs a fixture built by an earlier run`);
    await mkdir(fixtureBase, { recursive: true });
    await rm(fixture, { recursive: true, force: true });
    log(`building fixture in ${fixture} from ${opts.sources.join(', ') || 'no real tree'}${opts.extras ? ' + extras' : ''}`);
    const t0 = process.hrtime.bigint();
    await buildFixture(fixture, { sources: opts.sources, extras: opts.extras, bigMiB: opts.bigMiB, wideFiles: opts.wideFiles });
    await writeFile(join(fixtureBase, 'ready'), new Date().toISOString() + '\n');
    log(`fixture built in ${secondsSince(t0).toFixed(1)} s`);
  }
  log('hashing the fixture');
  const expected = await snapshotTree(fixture);
  const stats = summarize(expected);

  // Target.
  let dest: string;
  let mount: VoldfsMount | undefined;
  if (opts.targetDir !== undefined) {
    dest = opts.targetDir;
    if (!opts.verifyOnly && (await exists(dest))) throw new Error(`--target-dir ${dest} already exists; give a path that does not exist yet`);
  } else {
    let env: Record<string, string> = {};
    if (process.env.VOLDFS_DB === undefined || process.env.VOLDFS_DB === '') {
      const storeDir = await makeTempDir('proof-store');
      cleanups.push(() => removeTempDir(storeDir));
      env = defaultStoreEnv(storeDir, {});
    }
    const mountBase = await makeTempDir('proof-mount');
    cleanups.push(() => removeTempDir(mountBase)); // runs after the unmount put first below
    log(`mounting voldfs (store ${env.VOLDFS_DB ?? process.env.VOLDFS_DB})`);
    mount = await mountVoldfs({ env, mkfs: opts.mkfs && !opts.verifyOnly, mountpoint: join(mountBase, 'mnt') });
    const m = mount;
    cleanups.unshift(() => m.unmount());
    dest = join(mount.dir, 'copy');
  }

  // Copy, unmount, remount.
  let copySeconds = 0;
  let unmountSeconds = 0;
  let remountSeconds = 0;
  if (!opts.verifyOnly) {
    log(`copying ${stats.files} files, ${(stats.bytes / 1e6).toFixed(1)} MB with ${opts.copyTool}`);
    const t0 = process.hrtime.bigint();
    await copyTree(opts.copyTool, fixture, dest);
    copySeconds = secondsSince(t0);
  }
  if (mount !== undefined) {
    log('unmounting');
    let t0 = process.hrtime.bigint();
    await mount.unmount();
    unmountSeconds = secondsSince(t0);
    log('remounting');
    t0 = process.hrtime.bigint();
    await mount.remount();
    remountSeconds = secondsSince(t0);
  } else {
    await dropCaches();
  }

  // Verify.
  log('hashing the copy');
  const t0 = process.hrtime.bigint();
  const actual = (await exists(dest)) ? await snapshotTree(dest) : new Map();
  const verifySeconds = secondsSince(t0);
  const diffs = compareTreesDetailed(expected, actual, { mtime: true, mtimeGranularityNs: opts.mtimeGranularityNs, owner: true, nlink: true, hardLinks: true });

  const lines = [
    `entries      ${expected.size} (${stats.files} files, ${stats.dirs} dirs, ${stats.symlinks} symlinks, ${stats.other} other; ${stats.linkGroups} hard-link groups)`,
    `bytes        ${stats.bytes} (${(stats.bytes / 1e6).toFixed(1)} MB)`,
    `target       ${mount === undefined ? `directory ${dest}` : `voldfs at ${dest} (store ${mount.env.VOLDFS_DB ?? 'default'})`}`,
    opts.verifyOnly ? 'copy         skipped (--verify-only)' : `copy         ${copySeconds.toFixed(2)} s, ${mbps(stats.bytes, copySeconds)} MB/s (${opts.copyTool})`,
    ...(mount === undefined ? [] : [`unmount      ${unmountSeconds.toFixed(2)} s (copy+unmount ${mbps(stats.bytes, copySeconds + unmountSeconds)} MB/s)`, `remount      ${remountSeconds.toFixed(2)} s`]),
    `verify       ${verifySeconds.toFixed(2)} s, ${mbps(stats.bytes, verifySeconds)} MB/s, ${(actual.size / Math.max(verifySeconds, 1e-9)).toFixed(0)} entries/s`,
    `differences  ${diffs.length}${diffs.length === 0 ? '' : ` (${countKinds(diffs)})`}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  for (const d of diffs.slice(0, opts.maxDiffs)) process.stdout.write(`DIFF ${d.text}\n`);
  if (diffs.length > opts.maxDiffs) process.stdout.write(`... and ${diffs.length - opts.maxDiffs} more differences\n`);
  process.stdout.write(diffs.length === 0 ? 'RESULT identical\n' : 'RESULT DIFFERENT\n');
  return diffs.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
