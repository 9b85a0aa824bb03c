/**
 * Whole-tree snapshots and their comparison: names, types, modes, sizes, owners, nlink, mtimes,
 * content hashes, symlink targets and hard-link groups. Used by the fsx property test and by the
 * copy-remount-checksum proof script.
 */
import { createHash } from 'node:crypto';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** File type as reported by lstat. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';

/** One entry of a tree. `path` is relative to the root, '' for the root itself. */
export interface EntrySnapshot {
  path: string;
  type: EntryType;
  /** Permission bits incl. setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  /** Size in bytes (ignored for directories when comparing: it differs between filesystems). */
  size: number;
  uid: number;
  gid: number;
  nlink: number;
  ino: bigint;
  mtimeNs: bigint;
  /** SHA-256 of the content (regular files, when hashing). */
  sha256?: string;
  /** Symlink target. */
  target?: string;
}

/** A tree: entries by relative path. */
export type TreeSnapshot = Map<string, EntrySnapshot>;

/** Options of {@link snapshotTree}. */
export interface SnapshotOptions {
  /** Hash regular files (default true). */
  hash?: boolean;
  /** Files hashed at once (default 4). */
  concurrency?: number;
  /** Called with the byte count of each hashed file, e.g. for progress or throughput. */
  onHashed?: (bytes: number) => void;
}

function typeOf(s: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean }): EntryType {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isSocket()) return 'socket';
  return s.isCharacterDevice() ? 'char' : 'block';
}

/** SHA-256 (hex) of a file's content, read in 1 MiB pieces. */
export async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const fh = await open(path, 'r');
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    let bytes = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      bytes += bytesRead;
    }
    return { sha256: h.digest('hex'), bytes };
  } finally {
    await fh.close();
  }
}

/** Walks `root` without following symlinks and records every entry (root included, as ''). */
export async function snapshotTree(root: string, opts: SnapshotOptions = {}): Promise<TreeSnapshot> {
  const tree: TreeSnapshot = new Map();
  const toHash: EntrySnapshot[] = [];
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '' ? root : join(root, rel);
    const s = await lstat(abs, { bigint: true });
    const entry: EntrySnapshot = {
      path: rel,
      type: typeOf(s),
      mode: Number(s.mode & 0o7777n),
      size: Number(s.size),
      uid: Number(s.uid),
      gid: Number(s.gid),
      nlink: Number(s.nlink),
      ino: s.ino,
      mtimeNs: s.mtimeNs,
    };
    tree.set(rel, entry);
    if (entry.type === 'symlink') entry.target = await readlink(abs);
    else if (entry.type === 'file' && (opts.hash ?? true)) toHash.push(entry);
    else if (entry.type === 'dir') {
      for (const name of (await readdir(abs)).sort()) await walk(rel === '' ? name : `${rel}/${name}`);
    }
  };
  await walk('');
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < toHash.length) {
      const e = toHash[next++];
      const { sha256, bytes } = await hashFile(join(root, e.path));
      e.sha256 = sha256;
      opts.onHashed?.(bytes);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  return tree;
}

/** What {@link compareTrees} compares besides names, types, sizes, contents and targets. */
export interface CompareOptions {
  /** Permission bits (default true). */
  mode?: boolean;
  /** uid/gid (default false). */
  owner?: boolean;
  /** nlink of non-directories (default true). */
  nlink?: boolean;
  /** Same hard-link groups (default true). */
  hardLinks?: boolean;
  /** mtimes (default false). */
  mtime?: boolean;
  /** mtimes are compared after truncating to this many nanoseconds (default 1: exact). */
  mtimeGranularityNs?: bigint;
  /** Compare the root entry's own attributes too (default true). */
  root?: boolean;
}

const show = (p: string): string => (p === '' ? '(root)' : JSON.stringify(p));
const octal = (m: number): string => `0${m.toString(8).padStart(3, '0')}`;

/** Hard-link groups: for each non-directory path, the sorted paths sharing its inode. */
function linkGroups(tree: TreeSnapshot): Map<string, string[]> {
  const byIno = new Map<bigint, string[]>();
  for (const e of tree.values()) {
    if (e.type === 'dir') continue;
    const list = byIno.get(e.ino) ?? [];
    list.push(e.path);
    byIno.set(e.ino, list);
  }
  const groups = new Map<string, string[]>();
  for (const list of byIno.values()) {
    list.sort();
    for (const p of list) groups.set(p, list);
  }
  return groups;
}

/** Kinds of difference {@link compareTreesDetailed} reports. */
export type DiffKind = 'missing' | 'extra' | 'type' | 'mode' | 'owner' | 'size' | 'nlink' | 'content' | 'symlink target' | 'mtime' | 'hard links';

/** One difference: its kind, the entry's path, and a human-readable line. */
export interface TreeDiff {
  kind: DiffKind;
  path: string;
  text: string;
}

/**
 * Lists every difference between two trees, one human-readable line each; empty when equal.
 * Entry order: by path.
 */
export function compareTrees(expected: TreeSnapshot, actual: TreeSnapshot, opts: CompareOptions = {}): string[] {
  return compareTreesDetailed(expected, actual, opts).map((d) => d.text);
}

/** {@link compareTrees} with the kind and path of each difference. */
export function compareTreesDetailed(expected: TreeSnapshot, actual: TreeSnapshot, opts: CompareOptions = {}): TreeDiff[] {
  const diffs: TreeDiff[] = [];
  const add = (kind: DiffKind, path: string, text: string): void => {
    diffs.push({ kind, path, text });
  };
  const gran = opts.mtimeGranularityNs ?? 1n;
  const paths = [...new Set([...expected.keys(), ...actual.keys()])].sort();
  const eg = opts.hardLinks ?? true ? linkGroups(expected) : undefined;
  const ag = opts.hardLinks ?? true ? linkGroups(actual) : undefined;
  const reportedGroups = new Set<string>();
  for (const p of paths) {
    const e = expected.get(p);
    const a = actual.get(p);
    if (a === undefined) {
      add('missing', p, `missing: ${show(p)} (${e?.type})`);
      continue;
    }
    if (e === undefined) {
      add('extra', p, `extra: ${show(p)} (${a.type})`);
      continue;
    }
    if (e.type !== a.type) {
      add('type', p, `${show(p)}: type ${e.type} != ${a.type}`);
      continue;
    }
    if (p === '' && !(opts.root ?? true)) continue;
    if ((opts.mode ?? true) && e.mode !== a.mode && e.type !== 'symlink') add('mode', p, `${show(p)}: mode ${octal(e.mode)} != ${octal(a.mode)}`);
    if (opts.owner && (e.uid !== a.uid || e.gid !== a.gid)) add('owner', p, `${show(p)}: owner ${e.uid}:${e.gid} != ${a.uid}:${a.gid}`);
    if (e.type !== 'dir' && e.size !== a.size) add('size', p, `${show(p)}: size ${e.size} != ${a.size}`);
    if (e.type !== 'dir' && (opts.nlink ?? true) && e.nlink !== a.nlink) add('nlink', p, `${show(p)}: nlink ${e.nlink} != ${a.nlink}`);
    if (e.sha256 !== undefined && a.sha256 !== undefined && e.sha256 !== a.sha256) add('content', p, `${show(p)}: content sha256 ${e.sha256.slice(0, 16)}... != ${a.sha256.slice(0, 16)}...`);
    if (e.target !== a.target) add('symlink target', p, `${show(p)}: symlink target ${JSON.stringify(e.target)} != ${JSON.stringify(a.target)}`);
    if (opts.mtime && e.mtimeNs / gran !== a.mtimeNs / gran) add('mtime', p, `${show(p)}: mtime ${e.mtimeNs} != ${a.mtimeNs} (ns)`);
    if (eg !== undefined && ag !== undefined && e.type !== 'dir') {
      const ge = eg.get(p) ?? [p];
      const ga = ag.get(p) ?? [p];
      const key = ge.join('\0');
      if (ge.join('\0') !== ga.join('\0') && !reportedGroups.has(key)) {
        reportedGroups.add(key);
        add('hard links', p, `${show(p)}: hard links [${ge.map(show).join(', ')}] != [${ga.map(show).join(', ')}]`);
      }
    }
  }
  return diffs;
}
