/**
 * Invariant checks of a voldfs volume, for crash and stress tests: one through a mount (every
 * path stats, link counts match the names found), one on the store itself with no mount
 * running (every name points at an inode of its type, every inode is named, nlink counts
 * names, every chunk map belongs to a live or dying inode and points at a block that exists,
 * no commit is left half done).
 *
 * The store check reads records with the volume's own decoders, as `voldfs fsck` does; it runs
 * the intent layer's recovery first when asked to (`repair`), which is what fsck --repair does
 * for commits a crashed mount left behind.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { larger } from '../../src/chunk/byte-offset.js';
import type { KvStore } from '../../src/backends/kv-store.js';
import { findBackend } from '../../src/backends/registry.js';
import { decodeStored } from '../../src/cas/intent-codec.js';
import { IntentCommitStore, withAtomicCommit, type RecoveryReport } from '../../src/cas/intent-store.js';
import { decodeRecord } from '../../src/chunk/record-codec.js';
import type { ChunkMapRecord } from '../../src/chunk/file-data.js';
import { DirectoryTree } from '../../src/inode/directory-tree.js';
import { VolumeKeys } from '../../src/inode/keys.js';
import { ROOT_INO, S_IFMT, isDir, isReg, type GarbageRecord, type InodeRecord } from '../../src/inode/records.js';

/** One entry of a tree as seen through a mount. */
export interface MountEntry {
  readonly path: string;
  readonly ino: number;
  readonly isDir: boolean;
  readonly nlink: number;
  readonly size: number;
}

/**
 * Stats every path below `root` (root excluded) and checks link counts against the names
 * found: a file's nlink is the number of its names in the tree (so keep every link of a file
 * inside `root`), a directory's is 2 plus its subdirectories. Each path is stat'ed and listed
 * once; any error (EIO, ENOENT for a name readdir just listed) is a problem.
 */
export async function checkMountedTree(root: string): Promise<{ entries: Map<string, MountEntry>; problems: string[] }> {
  const entries = new Map<string, MountEntry>();
  const problems: string[] = [];
  const subdirs = new Map<string, number>();
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(rel === '' ? root : join(root, rel));
    } catch (err) {
      problems.push(`readdir ${rel || '.'}: ${(err as Error).message}`);
      return;
    }
    subdirs.set(rel, 0);
    for (const name of names.sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      try {
        const s = await lstat(join(root, path));
        entries.set(path, { path, ino: s.ino, isDir: s.isDirectory(), nlink: s.nlink, size: s.size });
        if (s.isDirectory()) {
          subdirs.set(rel, (subdirs.get(rel) ?? 0) + 1);
          await walk(path);
        }
      } catch (err) {
        problems.push(`stat ${path}: ${(err as Error).message}`);
      }
    }
  };
  await walk('');
  const names = new Map<number, string[]>();
  for (const e of entries.values()) if (!e.isDir) names.set(e.ino, [...(names.get(e.ino) ?? []), e.path]);
  for (const e of entries.values()) {
    const expected = e.isDir ? 2 + (subdirs.get(e.path) ?? 0) : (names.get(e.ino)?.length ?? 0);
    if (e.nlink !== expected) {
      const where = e.isDir ? `${subdirs.get(e.path) ?? 0} subdirectories` : `names ${JSON.stringify(names.get(e.ino))}`;
      problems.push(`${e.path}: nlink ${e.nlink}, expected ${expected} (${where})`);
    }
  }
  return { entries, problems };
}

/** What {@link checkVolumeStore} found. */
export interface StoreCheckReport {
  /** What the intent layer's recovery did (repair on a store without native commit). */
  readonly recovery?: RecoveryReport;
  /** Intents listed before recovery. */
  readonly intentsBefore: number;
  readonly counts: {
    inodes: number;
    directories: number;
    chunkMaps: number;
    blocks: number;
    garbageRecords: number;
    /** Blocks no chunk map or garbage record refers to: garbage a crash may leave, not damage. */
    unreferencedBlocks: number;
  };
  /** Damage: anything here means the volume is inconsistent. */
  readonly problems: string[];
  /** Not damage, but worth knowing (left-overs a crash may leave). */
  readonly notes: string[];
}

/** Keys read per getMany. */
const BATCH = 64;

/**
 * Opens the store named by `env` (VOLDFS_DB, VOLDFS_MC_SERVERS, VOLDFS_LMDB_PATH,
 * VOLDFS_VOLUME ...) in this process and checks the volume's records. No mount may be running.
 * @param repair roll committed intents forward and abort every pending one first (fsck --repair)
 */
export async function checkVolumeStore(env: Record<string, string | undefined>, repair: boolean): Promise<StoreCheckReport> {
  const backend = findBackend(env.VOLDFS_DB ?? 'lmdb');
  if (!backend) throw new Error(`unknown VOLDFS_DB ${env.VOLDFS_DB}`);
  const raw = await backend.create(backend.parseOptions(env));
  try {
    const meta = withAtomicCommit(raw);
    return await checkOpened(raw, meta, new VolumeKeys(`${env.VOLDFS_VOLUME ?? 'voldfs'}:`), repair);
  } finally {
    await raw.close();
  }
}

async function checkOpened(raw: KvStore, meta: KvStore, keys: VolumeKeys, repair: boolean): Promise<StoreCheckReport> {
  const problems: string[] = [];
  const notes: string[] = [];
  if (!raw.scan) throw new Error(`store ${raw.name} cannot list keys; the store check needs scan`);
  const intentLayer = meta instanceof IntentCommitStore ? meta : undefined;
  const intentsBefore = (await intentLayer?.pendingIntents())?.length ?? 0;
  const inodePrefix = commonPrefix(keys.inode(1), keys.inode(2));
  const dirPrefix = commonPrefix(keys.dirNode(1, 'r'), keys.dirNode(2, 'r'));
  const chunkPrefix = commonPrefix(keys.chunkMap(1, 0), keys.chunkMap(2, 0));
  let recovery: RecoveryReport | undefined;
  if (repair && intentLayer) {
    // Blocks bypass the intent layer (untagged records): sweep the metadata prefixes only.
    const prefixes = [inodePrefix, dirPrefix, chunkPrefix, keys.garbagePrefix(), keys.superblock(), keys.inodeAllocator()];
    const reports: RecoveryReport[] = [];
    for (const envelopePrefix of prefixes) reports.push(await intentLayer.recover({ abortLive: true, envelopePrefix }));
    recovery = mergeReports(reports);
  }
  if (recovery?.unfinished.length) problems.push(`intents left unfinished by recovery: ${recovery.unfinished.join(', ')}`);

  const all: string[] = [];
  for await (const key of raw.scan(keys.prefix)) all.push(key);
  if (intentLayer) {
    const left = await intentLayer.pendingIntents();
    if (repair && left && left.length > 0) problems.push(`${left.length} intent record(s) still there after recovery`);
  }
  const blockKeys = new Set(all.filter((k) => k.startsWith(keys.blockPrefix())));
  const metaKeys = all.filter((k) => !blockKeys.has(k));
  // Envelopes are resolved by reads through the intent layer; count them on the raw values.
  const values = new Map<string, Buffer>();
  for (let i = 0; i < metaKeys.length; i += BATCH) {
    const batch = metaKeys.slice(i, i + BATCH);
    const rawFound = intentLayer ? await raw.getMany(batch) : [];
    const found = await meta.getMany(batch);
    batch.forEach((key, j) => {
      const r = rawFound[j];
      if (r && decodeStored(key, r.value).kind === 'envelope') {
        (repair ? problems : notes).push(`${key} still holds a lock envelope${repair ? ' after recovery' : ''}`);
      }
      const f = found[j];
      if (f) values.set(key, f.value);
    });
  }

  const inodes = new Map<number, InodeRecord>();
  const dirNodes = new Map<number, string[]>();
  const chunks: { key: string; ino: number; index: number; record: ChunkMapRecord }[] = [];
  const garbage: GarbageRecord[] = [];
  for (const [key, value] of values) {
    if (key.startsWith(inodePrefix)) inodes.set(Number(key.slice(inodePrefix.length)), decodeRecord<InodeRecord>(key, value));
    else if (key.startsWith(dirPrefix)) {
      const ino = Number(key.slice(dirPrefix.length).split(':')[0]);
      dirNodes.set(ino, [...(dirNodes.get(ino) ?? []), key]);
    } else if (key.startsWith(chunkPrefix)) {
      const [ino, index] = key.slice(chunkPrefix.length).split(':').map(Number);
      chunks.push({ key, ino, index, record: decodeRecord<ChunkMapRecord>(key, value) });
    } else if (key.startsWith(keys.garbagePrefix())) garbage.push(decodeRecord<GarbageRecord>(key, value));
  }
  if (!values.has(keys.superblock())) problems.push('no superblock');
  const alloc = values.get(keys.inodeAllocator());
  const next = alloc ? decodeRecord<{ next: number }>(keys.inodeAllocator(), alloc).next : undefined;
  if (next === undefined) problems.push('no inode allocator record');
  for (const ino of inodes.keys()) if (next !== undefined && ino >= next) problems.push(`inode ${ino} at or above the allocator's next number ${next}`);

  // Walk the namespace from the root.
  const tree = new DirectoryTree(keys, 1 << 20);
  const names = new Map<number, number>();
  const subdirs = new Map<number, number>();
  const reached = new Set<number>([ROOT_INO]);
  const queue = [ROOT_INO];
  if (!inodes.has(ROOT_INO)) problems.push('no root inode');
  while (queue.length > 0) {
    const dir = queue.shift() as number;
    let entries: [string, [number, number]][];
    try {
      entries = await tree.list(meta, dir);
    } catch (err) {
      problems.push(`directory ${dir}: cannot list: ${(err as Error).message}`);
      continue;
    }
    for (const [name, [ino, type]] of entries) {
      const record = inodes.get(ino);
      if (!record) {
        problems.push(`directory ${dir}: "${name}" points at inode ${ino}, which has no record`);
        continue;
      }
      if ((record.mode & S_IFMT) !== type) problems.push(`directory ${dir}: "${name}" says type ${type.toString(8)}, inode ${ino} is ${(record.mode & S_IFMT).toString(8)}`);
      if (isDir(record.mode)) {
        subdirs.set(dir, (subdirs.get(dir) ?? 0) + 1);
        if (reached.has(ino)) problems.push(`directory inode ${ino} has a second name "${name}" in directory ${dir}`);
        if (record.parent !== dir) problems.push(`directory inode ${ino} ("${name}") records parent ${record.parent}, is in ${dir}`);
        reached.add(ino);
        queue.push(ino);
      } else {
        names.set(ino, (names.get(ino) ?? 0) + 1);
        reached.add(ino);
      }
    }
  }
  for (const [ino, record] of inodes) {
    if (!reached.has(ino)) {
      problems.push(`inode ${ino} (mode ${record.mode.toString(8)}, nlink ${record.nlink}) has no name: orphan`);
      continue;
    }
    const expected = isDir(record.mode) ? 2 + (subdirs.get(ino) ?? 0) : (names.get(ino) ?? 0);
    if (record.nlink !== expected) problems.push(`inode ${ino}: nlink ${record.nlink}, but ${expected} counted`);
  }
  for (const [ino, nodes] of dirNodes) {
    const record = inodes.get(ino);
    if (!record || !isDir(record.mode)) problems.push(`directory records of inode ${ino}, which is not a directory: ${nodes.join(', ')}`);
  }

  // Data: every chunk map belongs to a file, or to a dead inode whose data a garbage record lists.
  const dying = new Set(garbage.flatMap((g) => (g.inodes ?? []).map((i) => i.ino)));
  const referenced = new Set<string>();
  for (const g of garbage) for (const b of g.blocks ?? []) referenced.add(b.id);
  for (const c of chunks) {
    for (const id of blockIds(c.record)) referenced.add(id);
    const record = inodes.get(c.ino);
    if (!record) {
      if (!dying.has(c.ino)) problems.push(`chunk map ${c.key} of inode ${c.ino}, which has no record and is not listed for deletion`);
      continue;
    }
    if (!isReg(record.mode)) problems.push(`chunk map ${c.key} of inode ${c.ino}, which is not a regular file`);
    for (const id of blockIds(c.record)) {
      if (!blockKeys.has(keys.blockPrefix() + id)) problems.push(`chunk map ${c.key} points at block ${id}, which is missing`);
    }
  }
  const sbBytes = values.get(keys.superblock());
  if (sbBytes) {
    const chunkSize = decodeRecord<{ chunkSize: number }>(keys.superblock(), sbBytes).chunkSize;
    for (const c of chunks) {
      const record = inodes.get(c.ino);
      const start = BigInt(c.index) * BigInt(chunkSize);
      if (record && isReg(record.mode) && start >= BigInt(larger(record.size, 1))) {
        notes.push(`chunk map ${c.key} lies wholly past the end of inode ${c.ino} (size ${record.size})`);
      } else if (record && isReg(record.mode) && start + BigInt(chunkLength(c.record)) > BigInt(record.size)) {
        notes.push(`chunk map ${c.key} holds ${start + BigInt(chunkLength(c.record)) - BigInt(record.size)} bytes past the end of inode ${c.ino} (size ${record.size})`);
      }
    }
  }
  const unreferenced = [...blockKeys].filter((k) => !referenced.has(k.slice(keys.blockPrefix().length)));
  if (unreferenced.length > 0) notes.push(`${unreferenced.length} unreferenced block(s)`);
  return {
    recovery,
    intentsBefore,
    counts: {
      inodes: inodes.size,
      directories: [...inodes.values()].filter((r) => isDir(r.mode)).length,
      chunkMaps: chunks.length,
      blocks: blockKeys.size,
      garbageRecords: garbage.length,
      unreferencedBlocks: unreferenced.length,
    },
    problems,
    notes,
  };
}

/** Ids of the block records a chunk map refers to (one block, or its erasure fragments). */
function blockIds(record: ChunkMapRecord): string[] {
  return record.block ? [record.block.id] : [];
}

/** Bytes a chunk map holds: its block's length, or its inline bytes. */
function chunkLength(record: ChunkMapRecord): number {
  return record.block ? record.block.length : record.inline.length;
}

function mergeReports(reports: RecoveryReport[]): RecoveryReport {
  const all = (pick: (r: RecoveryReport) => readonly string[]): string[] => [...new Set(reports.flatMap(pick))];
  return {
    listed: reports.every((r) => r.listed),
    rolledForward: all((r) => r.rolledForward),
    rolledBack: all((r) => r.rolledBack),
    live: all((r) => r.live),
    unfinished: all((r) => r.unfinished),
    orphanEnvelopes: all((r) => r.orphanEnvelopes),
    lockedKeys: all((r) => r.lockedKeys),
  };
}

function commonPrefix(a: string, b: string): string {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}
