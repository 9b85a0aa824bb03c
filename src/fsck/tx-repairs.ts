import { transact, type Transaction } from '../cas/transaction.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import {
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  isDir,
  type DirNode,
  type InodeRecord,
} from '../inode/records.js';
import type { FsckContext } from './context.js';
import { readTreeNodes, type TreeNodeAt } from '../inode/directory-tree.js';

/**
 * Repairs of metadata, each one transaction that re-reads what the check saw and changes
 * nothing if a live mount changed it meanwhile (outcome `gone`). Every read is validated at
 * commit, so a repair never overwrites a concurrent change.
 */
export type RepairResult = { readonly outcome: 'repaired' | 'gone'; readonly done: string };

const gone = (why: string): RepairResult => ({ outcome: 'gone', done: why });
const repaired = (done: string): RepairResult => ({ outcome: 'repaired', done });

function run(ctx: FsckContext, body: (tx: Transaction) => Promise<RepairResult>): Promise<RepairResult> {
  return transact(ctx.target.meta, undefined, body);
}

async function readInode(ctx: FsckContext, tx: Transaction, ino: number): Promise<InodeRecord | undefined> {
  const key = ctx.target.keys.inode(ino);
  const bytes = await tx.read(key);
  return bytes ? decodeRecord<InodeRecord>(key, bytes) : undefined;
}

function writeInode(ctx: FsckContext, tx: Transaction, ino: number, record: InodeRecord): void {
  tx.write(ctx.target.keys.inode(ino), encodeRecord(record));
}

/** Every node of a directory's tree reachable from its root, read inside `tx`. */
export function treeNodes(ctx: FsckContext, tx: Transaction, dirIno: number): Promise<TreeNodeAt[]> {
  return readTreeNodes(tx, ctx.target.keys, dirIno);
}

/** Removes `dir/name` if it still names `ino` and `stillWrong` holds within the transaction. */
export function removeEntry(
  ctx: FsckContext,
  dir: number,
  name: string,
  ino: number,
  stillWrong: (tx: Transaction) => Promise<boolean>,
): Promise<RepairResult> {
  return run(ctx, async (tx) => {
    const entry = await ctx.dirs.lookup(tx, dir, name);
    if (!entry || entry[0] !== ino) return gone('the entry changed since it was checked');
    if (!(await stillWrong(tx))) return gone('the entry is right now');
    await ctx.dirs.remove(tx, dir, name);
    return repaired('entry removed');
  });
}

/** A dangling entry: the inode it names has no record. */
export function removeDanglingEntry(ctx: FsckContext, dir: number, name: string, ino: number): Promise<RepairResult> {
  return removeEntry(ctx, dir, name, ino, async (tx) => (await readInode(ctx, tx, ino)) === undefined);
}

/** Sets an entry's type bits to its inode's. */
export function fixEntryType(ctx: FsckContext, dir: number, name: string, ino: number): Promise<RepairResult> {
  return run(ctx, async (tx) => {
    const entry = await ctx.dirs.lookup(tx, dir, name);
    const record = await readInode(ctx, tx, ino);
    if (!entry || entry[0] !== ino || !record) return gone('the entry or its inode changed since it was checked');
    const type = record.mode & S_IFMT;
    if (entry[1] === type) return gone('the type is right now');
    await ctx.dirs.set(tx, dir, name, [ino, type]);
    return repaired(`entry type set to ${typeName(type)}`);
  });
}

/** Points a directory's `parent` at the directory whose entry names it. */
export function fixParent(ctx: FsckContext, ino: number, parent: number, name: string | undefined): Promise<RepairResult> {
  return run(ctx, async (tx) => {
    const record = await readInode(ctx, tx, ino);
    if (!record || !isDir(record.mode)) return gone('the directory changed since it was checked');
    if (name !== undefined) {
      const entry = await ctx.dirs.lookup(tx, parent, name);
      if (!entry || entry[0] !== ino) return gone('the directory was moved since it was checked');
    }
    if (record.parent === parent) return gone('the parent is right now');
    record.parent = parent;
    writeInode(ctx, tx, ino, record);
    return repaired(`parent set to ${parent}`);
  });
}

/** Sets a directory's nlink to 2 + its subdirectories, counted within the transaction. */
export function recountDirectory(ctx: FsckContext, ino: number): Promise<RepairResult> {
  return run(ctx, async (tx) => {
    const record = await readInode(ctx, tx, ino);
    if (!record || !isDir(record.mode)) return gone('the directory is gone');
    let subdirs = 0;
    for (const { node } of await treeNodes(ctx, tx, ino)) {
      if (node.kind === 'leaf') for (const [, type] of Object.values(node.entries)) if (type === S_IFDIR) subdirs++;
    }
    if (record.nlink === 2 + subdirs) return gone('the link count is right now');
    const before = record.nlink;
    record.nlink = 2 + subdirs;
    writeInode(ctx, tx, ino, record);
    return repaired(`nlink ${before} -> ${record.nlink}`);
  });
}

/** Sets a non-directory's nlink (offline only: the count came from the whole walk). */
export function setLinkCount(ctx: FsckContext, ino: number, nlink: number): Promise<RepairResult> {
  return run(ctx, async (tx) => {
    const record = await readInode(ctx, tx, ino);
    if (!record) return gone('the inode is gone');
    if (record.nlink === nlink) return gone('the link count is right now');
    const before = record.nlink;
    record.nlink = nlink;
    writeInode(ctx, tx, ino, record);
    return repaired(`nlink ${before} -> ${nlink}`);
  });
}

/**
 * Deletes a directory node that no directory tree reaches: its inode is gone or not a
 * directory, or the node is outside the tree (a split that lost its commit). The tree is
 * read in the transaction, so a split committing meanwhile makes the repair retry.
 */
export function removeDirNode(ctx: FsckContext, dirIno: number, key: string): Promise<RepairResult> {
  return run(ctx, async (tx) => {
    const record = await readInode(ctx, tx, dirIno);
    if (record && isDir(record.mode)) {
      const reached = await treeNodes(ctx, tx, dirIno);
      if (reached.some((n) => n.key === key)) return gone('the node is part of the tree now');
    }
    if (!(await tx.read(key))) return gone('the node is gone');
    tx.remove(key);
    return repaired('node deleted');
  });
}

/**
 * Writes an empty leaf where a directory's tree expects a node that is missing, so the
 * directory works again; the names that node held are lost (their inodes become orphans).
 */
export function recreateDirNode(ctx: FsckContext, dirIno: number, key: string): Promise<RepairResult> {
  return run(ctx, async (tx) => {
    const record = await readInode(ctx, tx, dirIno);
    if (!record || !isDir(record.mode)) return gone('the directory is gone');
    if (key !== ctx.target.keys.dirNode(dirIno, 'r')) {
      // Only a node its tree still points at: the tree is read (and validated) in the tx.
      const expected = new Set<string>();
      for (const { node } of await treeNodes(ctx, tx, dirIno)) {
        if (node.kind === 'split') for (let c = 0; c < node.fanout; c++) expected.add(ctx.target.keys.dirNode(dirIno, `${node.nonce}.${c}`));
      }
      if (!expected.has(key)) return gone('the tree no longer points at the node');
    }
    if (await tx.read(key)) return gone('the node is back');
    tx.create(key, encodeRecord({ kind: 'leaf', entries: {} } satisfies DirNode));
    return repaired('empty node written: the names it held are lost');
  });
}

/** A file type's name for messages. */
export function typeName(mode: number): string {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return 'directory';
    case S_IFREG:
      return 'file';
    case S_IFLNK:
      return 'symlink';
    case S_IFIFO:
      return 'fifo';
    case S_IFCHR:
      return 'character device';
    case S_IFBLK:
      return 'block device';
    case S_IFSOCK:
      return 'socket';
    default:
      return `type 0${(mode & S_IFMT).toString(8)}`;
  }
}
