import type { Version } from '../backends/kv-store.js';
import { ROOT_INO, S_IFMT, isDir, isLnk, isReg, type DirEntry, type InodeRecord } from '../inode/records.js';
import { isHiddenName, withNamesAsWritten } from '../inode/directory-tree.js';
import type { ByteOffset } from '../chunk/byte-offset.js';
import { dropHiddenName } from './chunk-repairs.js';
import type { FsckContext } from './context.js';
import { decodeOr, validInode, validNode } from './record-shapes.js';
import { FIX_ORDER } from './problems.js';
import { recreateDirNode, typeName } from './tx-repairs.js';

/** One entry naming an inode. */
export interface Name {
  readonly dir: number;
  readonly name: string;
  readonly path: string;
}

export interface SeenDirectory {
  readonly ino: number;
  readonly record: InodeRecord;
  /** Version of the record as read, before the directory was listed. */
  readonly version: Version;
  /** The path the walk reached it by. */
  readonly path: string;
  /** Every entry naming it (a directory must have exactly one; the root none). */
  readonly names: Name[];
}

export interface SeenFile {
  readonly ino: number;
  readonly record: InodeRecord;
  readonly version: Version;
  readonly path: string;
  /** The directory of each entry naming it. */
  readonly dirs: number[];
}

/**
 * An entry that looked wrong when the walk met it. While mounts may be active it is confirmed
 * before it is reported: an unlink between reading the directory and reading the inode looks
 * like a dangling entry for a moment.
 */
export interface Suspect {
  readonly kind: 'dangling-entry' | 'type-mismatch';
  readonly dir: number;
  readonly name: string;
  readonly ino: number;
  readonly path: string;
  /** Type bits the entry holds. */
  readonly type: number;
}

/** A regular file for the data checks. */
export interface FileToCheck {
  readonly ino: number;
  readonly size: ByteOffset;
  readonly path: string;
}

/** What the walk from the root found. */
export interface WalkResult {
  readonly dirs: Map<number, SeenDirectory>;
  /** Everything reachable that is not a directory. */
  readonly files: Map<number, SeenFile>;
  /** Inodes named by an entry whose record cannot be decoded. */
  readonly corrupt: Set<number>;
  /** Inodes named by an entry but without a record. */
  readonly absent: Set<number>;
  /** Keys of the directory nodes reached from their trees' roots. */
  readonly reachedNodes: Set<string>;
  /** Directories with a missing or undecodable tree node: nodes past it cannot be reached. */
  readonly damagedTrees: Set<number>;
  /** Entries that looked dangling or mistyped, to be confirmed (confirm.ts). */
  readonly suspects: Suspect[];
}

/** Directories listed per round: their tree nodes and their entries' inodes are read together. */
const DIRS_PER_ROUND = 32;
/** 32-bit name hashes give at most 6 levels; more means a corrupt tree. */
const MAX_TREE_DEPTH = 8;

type Loaded = { readonly record: InodeRecord; readonly version: Version } | { readonly state: 'absent' | 'corrupt' };

/**
 * Walks the volume from the root, breadth-first: each round lists up to DIRS_PER_ROUND
 * directories level by level with batched reads of their tree nodes, then reads every inode
 * their entries name, checks each entry, and hands the regular files found to `onFiles` (the
 * data checks). Returns undefined when the root itself is unusable.
 */
export async function walkTree(ctx: FsckContext, onFiles: (files: FileToCheck[]) => Promise<void>): Promise<WalkResult | undefined> {
  const rootKey = ctx.target.keys.inode(ROOT_INO);
  const root = await load(ctx, [ROOT_INO]);
  const rootState = root.get(ROOT_INO);
  if (!rootState || !('record' in rootState) || !isDir(rootState.record.mode)) {
    const what =
      rootState && 'state' in rootState && rootState.state === 'corrupt'
        ? 'the root directory record cannot be decoded'
        : rootState && 'record' in rootState
          ? `the root inode is a ${typeName(rootState.record.mode)}, not a directory`
          : 'the root directory has no inode record';
    ctx.problems.add({ kind: 'root-missing', ino: ROOT_INO, key: rootKey, path: '/', what: `${what}: nothing below it can be checked` });
    return undefined;
  }
  const result: WalkResult = {
    dirs: new Map([[ROOT_INO, { ino: ROOT_INO, record: rootState.record, version: rootState.version, path: '/', names: [] }]]),
    files: new Map(),
    corrupt: new Set(),
    absent: new Set(),
    reachedNodes: new Set(),
    damagedTrees: new Set(),
    suspects: [],
  };
  const queue: SeenDirectory[] = [result.dirs.get(ROOT_INO) as SeenDirectory];
  while (queue.length > 0) {
    const round = queue.splice(0, DIRS_PER_ROUND);
    ctx.queuedDirectories = queue.length;
    const listings = await listDirectories(ctx, round, result);
    const wanted = new Set<number>();
    for (const entries of listings.values()) {
      for (const [, [ino]] of entries) if (!known(result, ino)) wanted.add(ino);
    }
    const loaded = await load(ctx, [...wanted]);
    const newFiles: FileToCheck[] = [];
    for (const dir of round) {
      ctx.counts.directories++;
      for (const [name, entry] of listings.get(dir.ino) ?? []) {
        visitEntry(ctx, result, loaded, dir, name, entry, queue, newFiles);
      }
    }
    ctx.queuedDirectories = queue.length;
    if (newFiles.length > 0) await onFiles(newFiles);
    ctx.report();
  }
  return result;
}

function known(result: WalkResult, ino: number): boolean {
  return result.dirs.has(ino) || result.files.has(ino) || result.corrupt.has(ino) || result.absent.has(ino);
}

function childPath(dir: SeenDirectory, name: string): string {
  return dir.path === '/' ? `/${name}` : `${dir.path}/${name}`;
}

function visitEntry(
  ctx: FsckContext,
  result: WalkResult,
  loaded: Map<number, Loaded>,
  dir: SeenDirectory,
  name: string,
  entry: DirEntry,
  queue: SeenDirectory[],
  newFiles: FileToCheck[],
): void {
  const [ino, type] = entry;
  const path = childPath(dir, name);
  const state = loaded.get(ino);
  if (state && 'state' in state && !known(result, ino)) {
    if (state.state === 'absent') result.absent.add(ino);
    else {
      result.corrupt.add(ino);
      ctx.problems.add({ kind: 'corrupt-record', path, ino, key: ctx.target.keys.inode(ino), what: 'the inode record cannot be decoded' });
    }
  }
  if (result.absent.has(ino)) {
    result.suspects.push({ kind: 'dangling-entry', dir: dir.ino, name, ino, path, type });
    return;
  }
  if (result.corrupt.has(ino)) return;
  const seenDir = result.dirs.get(ino);
  const seenFile = result.files.get(ino);
  const { record, version } = seenDir ?? seenFile ?? (state as { record: InodeRecord; version: Version });
  if ((record.mode & S_IFMT) !== type) result.suspects.push({ kind: 'type-mismatch', dir: dir.ino, name, ino, path, type });
  if (isDir(record.mode)) {
    if (seenDir) {
      seenDir.names.push({ dir: dir.ino, name, path });
      return;
    }
    const visit: SeenDirectory = { ino, record, version, path, names: [{ dir: dir.ino, name, path }] };
    result.dirs.set(ino, visit);
    queue.push(visit);
    return;
  }
  if (isHiddenName(name)) {
    ctx.problems.add(
      {
        kind: 'hidden-entry',
        path,
        ino,
        what: 'a name libfuse gave a file unlinked while open: the mount holding it crashed, or still has it open',
      },
      // A live mount unlinks it at the last close: only offline is it surely a leftover.
      { order: FIX_ORDER.hiddenNames, offlineOnly: true, run: () => dropHiddenName(ctx, dir.ino, name, ino) },
    );
  }
  if (seenFile) {
    seenFile.dirs.push(dir.ino);
    return;
  }
  result.files.set(ino, { ino, record, version, path, dirs: [dir.ino] });
  if (isReg(record.mode)) {
    ctx.counts.files++;
    ctx.counts.bytes += Number(record.size);
    newFiles.push({ ino, size: record.size, path });
  } else if (isLnk(record.mode)) {
    ctx.counts.symlinks++;
  } else {
    ctx.counts.others++;
  }
}

/** Reads inode records; absent and undecodable ones are told apart. */
async function load(ctx: FsckContext, inos: number[]): Promise<Map<number, Loaded>> {
  const keys = inos.map((ino) => ctx.target.keys.inode(ino));
  const found = await ctx.readMany(ctx.target.meta, keys);
  const out = new Map<number, Loaded>();
  inos.forEach((ino, i) => {
    const f = found[i];
    if (!f) {
      out.set(ino, { state: 'absent' });
      return;
    }
    const record = decodeOr(keys[i], f.value, validInode);
    out.set(ino, record ? { record, version: f.version } : { state: 'corrupt' });
  });
  return out;
}

/**
 * Lists the entries of `dirs`, reading their trees level by level (one batched read per level
 * for all of them). Missing and undecodable nodes are recorded as problems.
 */
async function listDirectories(ctx: FsckContext, dirs: SeenDirectory[], result: WalkResult): Promise<Map<number, [string, DirEntry][]>> {
  const { keys, meta } = ctx.target;
  const out = new Map<number, [string, DirEntry][]>(dirs.map((d) => [d.ino, []]));
  const byIno = new Map(dirs.map((d) => [d.ino, d]));
  let level = dirs.map((d) => ({ dir: d.ino, key: keys.dirNode(d.ino, 'r') }));
  for (let depth = 0; level.length > 0; depth++) {
    const found = await ctx.readMany(meta, level.map((n) => n.key));
    const next: typeof level = [];
    level.forEach(({ dir, key }, i) => {
      const seen = byIno.get(dir) as SeenDirectory;
      const f = found[i];
      if (!f) {
        result.damagedTrees.add(dir);
        ctx.problems.add(
          {
            kind: 'dir-node-missing',
            path: seen.path,
            ino: dir,
            key,
            what: `directory node ${key} is missing: the names it held are lost and lookups through it fail`,
          },
          { order: FIX_ORDER.dirNodes, run: () => recreateDirNode(ctx, dir, key) },
        );
        return;
      }
      const decoded = decodeOr(key, f.value, validNode);
      const node = decoded && withNamesAsWritten(decoded);
      if (!node || (node.kind === 'split' && depth + 1 >= MAX_TREE_DEPTH)) {
        result.damagedTrees.add(dir);
        ctx.problems.add({ kind: 'corrupt-record', path: seen.path, ino: dir, key, what: 'the directory node cannot be decoded' });
        return;
      }
      result.reachedNodes.add(key);
      if (node.kind === 'leaf') {
        const list = out.get(dir) as [string, DirEntry][];
        for (const name of Object.keys(node.entries).sort()) list.push([name, node.entries[name]]);
      } else {
        for (let c = 0; c < node.fanout; c++) next.push({ dir, key: keys.dirNode(dir, `${node.nonce}.${c}`) });
      }
    });
    level = next;
  }
  return out;
}
