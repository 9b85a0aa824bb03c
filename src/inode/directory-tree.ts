import { randomBytes } from 'node:crypto';
import type { KvStore } from '../backends/kv-store.js';
import type { Transaction } from '../cas/transaction.js';
import { FsError } from './fs-error.js';
import type { VolumeKeys } from './keys.js';
import type { LossDetector } from './loss-detector.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import type { DirEntry, DirNode } from './records.js';

const FANOUT_BITS = 6;
const FANOUT = 1 << FANOUT_BITS;
/** 32-bit hashes give five levels of 6 bits; a leaf at the bottom just grows. */
const MAX_DEPTH = 5;

/**
 * Mounts through libfuse 2 (voldfs before the low-level API) renamed a file unlinked while
 * open to `.fuse_hidden<id>` and unlinked it at the last close; a mount that crashed meanwhile
 * left the name behind. Today's mounts create no such names, but volumes may still hold them:
 * they stay out of listings and do not keep a directory from being removed, and fsck reports
 * them.
 */
export function isHiddenName(name: string): boolean {
  return name.startsWith('.fuse_hidden');
}

/** FNV-1a over the name's UTF-8 bytes: cheap, stable across processes and releases. */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A name of a directory with its place in the directory's listing order. */
export interface PositionedEntry {
  readonly name: string;
  readonly entry: DirEntry;
  /** Stable while the name exists: a listing resumed at `position + 1` continues after it. */
  readonly position: number;
}

/** A stretch of a directory's listing. */
export interface ListingPage {
  /** Every entry from the position asked for up to `next`, in position order. */
  readonly entries: PositionedEntry[];
  /** Where the listing goes on; undefined when `entries` reach its end. */
  readonly next: number | undefined;
}

/** Children of a split read in one batch while listing: at first, and at most. */
const FIRST_CHILDREN_READ = 2;
const MOST_CHILDREN_READ = 16;

/** Names that share a hash are told apart by their rank among themselves, below this. */
const RANK_SPAN = 2 ** 16;

/**
 * A hash's place in the tree's walking order. A split at depth d picks a child by the hash's
 * d-th 6-bit digit from the low end, so reading the digits low digit first (and the two bits
 * above the five levels last) orders names as a walk of any tree of theirs meets them.
 */
export function listingOrder(hash: number): number {
  let order = 0;
  for (let depth = 0; depth < MAX_DEPTH; depth++) order = order * FANOUT + ((hash >>> (FANOUT_BITS * depth)) & (FANOUT - 1));
  return order * 4 + (hash >>> (FANOUT_BITS * MAX_DEPTH));
}

/** How many listing orders the subtree of one child of a split at `depth` spans. */
function orderSpan(depth: number): number {
  return 4 * FANOUT ** (MAX_DEPTH - 1 - depth);
}

/** A name's listing position: its hash's order, then its rank among names of that hash. */
export function listingPosition(order: number, rank: number): number {
  return order * RANK_SPAN + rank;
}

/** A leaf's entries in listing order, by the decoded node (shared like the nodes). */
const positionedLeaves = new WeakMap<DirNode, PositionedEntry[]>();

function positionedLeaf(node: Extract<DirNode, { kind: 'leaf' }>): PositionedEntry[] {
  let positioned = positionedLeaves.get(node);
  if (positioned !== undefined) return positioned;
  const ordered = Object.entries(node.entries)
    .map(([name, entry]) => ({ name, entry, order: listingOrder(nameHash(name)) }))
    .sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  positioned = [];
  let rank = 0;
  for (let i = 0; i < ordered.length; i++) {
    rank = i > 0 && ordered[i - 1].order === ordered[i].order ? rank + 1 : 0;
    const { name, entry, order } = ordered[i];
    positioned.push({ name, entry, position: listingPosition(order, Math.min(rank, RANK_SPAN - 1)) });
  }
  positionedLeaves.set(node, positioned);
  return positioned;
}

interface LeafAt {
  key: string;
  node: Extract<DirNode, { kind: 'leaf' }>;
  depth: number;
}

/**
 * Decoded nodes by the bytes they were decoded from. Records are immutable buffers that the
 * record cache and the commit queue hand out again and again, and a leaf of a large directory
 * holds a few hundred names: decoding it on every lookup and create was the largest cost of a
 * create in such a directory. The nodes are shared: never change one; {@link mutableLeaf} copies.
 */
const decodedNodes = new WeakMap<Buffer, DirNode>();

/**
 * MessagePack's decoder renames a map key `__proto__` to `__proto_` (it guards objects against
 * prototype pollution), so names of the form `__proto` + two or more underscores are stored with
 * one underscore more: no stored key is ever `__proto__`, and every name reads back as written.
 */
const PROTO_LIKE = /^__proto__+$/;
const ESCAPED_PROTO_LIKE = /^__proto___+$/;

function storedName(name: string): string {
  return PROTO_LIKE.test(name) ? `${name}_` : name;
}

/** Entries of a leaf: without a prototype, so any name (`__proto__`, `constructor`) is a plain key. */
function newEntries(from?: Record<string, DirEntry>): Record<string, DirEntry> {
  return Object.assign(Object.create(null) as Record<string, DirEntry>, from);
}

/** A decoded node with its names as they were written (see {@link storedName}). */
export function withNamesAsWritten(node: DirNode): DirNode {
  if (node.kind !== 'leaf' || !Object.keys(node.entries).some((name) => ESCAPED_PROTO_LIKE.test(name))) return node;
  const entries = newEntries();
  for (const [name, entry] of Object.entries(node.entries)) entries[ESCAPED_PROTO_LIKE.test(name) ? name.slice(0, -1) : name] = entry;
  return { kind: 'leaf', entries };
}

function decodeNode(key: string, bytes: Buffer): DirNode {
  let node = decodedNodes.get(bytes);
  if (node === undefined) {
    node = withNamesAsWritten(decodeRecord<DirNode>(key, bytes));
    decodedNodes.set(bytes, node);
  }
  return node;
}

/** The record of `node`, known decoded: the next operation on the leaf reads it without decoding. */
function encodeNode(node: DirNode): Buffer {
  let stored = node;
  if (node.kind === 'leaf' && Object.keys(node.entries).some((name) => PROTO_LIKE.test(name))) {
    const entries = newEntries();
    for (const [name, entry] of Object.entries(node.entries)) entries[storedName(name)] = entry;
    stored = { kind: 'leaf', entries };
  }
  const bytes = encodeRecord(stored);
  decodedNodes.set(bytes, node);
  return bytes;
}

/** A leaf whose entries may be changed: a copy of the shared one. */
function mutableLeaf(leaf: LeafAt): LeafAt {
  return { ...leaf, node: { kind: 'leaf', entries: newEntries(leaf.node.entries) } };
}

/**
 * A directory as a hash tree of records, so it scales past what one record holds: a lookup
 * or insert touches the O(1) records on the path to one leaf (split nodes never change and
 * are cached), and a full leaf splits into FANOUT children within the same transaction.
 */
export class DirectoryTree {
  /**
   * @param maxLeafBytes encoded size above which a leaf splits (keep well under the store's
   *   item limit: every insert rewrites the leaf)
   */
  constructor(
    private readonly keys: VolumeKeys,
    private readonly maxLeafBytes: number,
    /** Tells lost records from absent ones; without it a missing node is just absent (fsck). */
    private readonly loss?: LossDetector,
  ) {}

  /** Stages the empty root leaf of a new directory. */
  createEmpty(tx: Transaction, dirIno: number): void {
    tx.create(this.keys.dirNode(dirIno, 'r'), encodeRecord({ kind: 'leaf', entries: {} } satisfies DirNode));
  }

  /**
   * @param freshMiss a name missing from a leaf served by the record cache is looked for again
   *   in the store's leaf (another mount may have just created it: close-to-open)
   */
  async lookup(tx: Transaction, dirIno: number, name: string, freshMiss = false): Promise<DirEntry | undefined> {
    let leaf = await this.findLeaf(tx, dirIno, name);
    if (!Object.hasOwn(leaf.node.entries, name) && freshMiss && tx.refresh(leaf.key)) leaf = await this.findLeaf(tx, dirIno, name);
    return Object.hasOwn(leaf.node.entries, name) ? leaf.node.entries[name] : undefined;
  }

  /** @throws FsError EEXIST if the name is taken */
  async insert(tx: Transaction, dirIno: number, name: string, entry: DirEntry): Promise<void> {
    const leaf = mutableLeaf(await this.findLeaf(tx, dirIno, name));
    if (Object.hasOwn(leaf.node.entries, name)) throw new FsError('EEXIST');
    leaf.node.entries[name] = entry;
    this.writeLeaf(tx, dirIno, leaf);
  }

  /** Points an existing or new name at `entry` (rename over an existing name). */
  async set(tx: Transaction, dirIno: number, name: string, entry: DirEntry): Promise<void> {
    const leaf = mutableLeaf(await this.findLeaf(tx, dirIno, name));
    leaf.node.entries[name] = entry;
    this.writeLeaf(tx, dirIno, leaf);
  }

  /** @throws FsError ENOENT if the name is not there */
  async remove(tx: Transaction, dirIno: number, name: string): Promise<DirEntry> {
    const leaf = mutableLeaf(await this.findLeaf(tx, dirIno, name));
    if (!Object.hasOwn(leaf.node.entries, name)) throw new FsError('ENOENT');
    const entry = leaf.node.entries[name];
    delete leaf.node.entries[name];
    tx.write(leaf.key, encodeNode(leaf.node));
    return entry;
  }

  /**
   * Every entry, by walking the tree level by level with batched reads (not in a transaction).
   * @param includeHidden also libfuse's `.fuse_hidden` names (fsck must see them: they hold
   *   files that are still open)
   */
  async list(store: KvStore, dirIno: number, includeHidden = false): Promise<[string, DirEntry][]> {
    const out: [string, DirEntry][] = [];
    const root = this.keys.dirNode(dirIno, 'r');
    let level = [root];
    while (level.length > 0) {
      const found = await store.getMany(level);
      const next: string[] = [];
      found.forEach((record, i) => {
        if (!record) {
          if (level[i] === root) throw new FsError('ENOENT');
          return;
        }
        const node = decodeNode(level[i], record.value);
        if (node.kind === 'leaf') {
          for (const entry of Object.entries(node.entries)) if (includeHidden || !isHiddenName(entry[0])) out.push(entry);
        }
        else for (let c = 0; c < node.fanout; c++) next.push(this.keys.dirNode(dirIno, `${node.nonce}.${c}`));
      });
      level = next;
    }
    return out;
  }

  /**
   * The entries at listing positions `from` and after, in position order: at least `wanted` of
   * them when the directory has that many, read a few leaves at a time, and where to continue.
   * Positions ({@link listingPosition}) follow the hash, not the tree's shape, so a split between
   * two pages neither repeats nor skips a name, and nothing is kept between pages.
   */
  async listPage(store: KvStore, dirIno: number, from: number, wanted: number): Promise<ListingPage> {
    const fromOrder = Math.floor(from / RANK_SPAN);
    const keys = this.keys;
    const entries: PositionedEntry[] = [];
    /** Takes the subtree of `value` from `from` on; answers the order where it stopped, or undefined at its end. */
    async function visit(key: string, value: Buffer, lowOrder: number, depth: number): Promise<number | undefined> {
      const node = decodeNode(key, value);
      if (node.kind === 'leaf') {
        for (const positioned of positionedLeaf(node)) if (positioned.position >= from && !isHiddenName(positioned.name)) entries.push(positioned);
        return undefined;
      }
      if (depth >= MAX_TREE_DEPTH) return undefined;
      const span = orderSpan(node.depth);
      // Children are read in batches that double: a page takes a round trip or two, not one per
      // leaf, and decodes little more than it lists.
      let batch = FIRST_CHILDREN_READ;
      for (let slot = Math.max(0, Math.floor((fromOrder - lowOrder) / span)); slot < node.fanout; slot += batch, batch = Math.min(2 * batch, MOST_CHILDREN_READ)) {
        if (entries.length >= wanted) return lowOrder + slot * span;
        const slots = Array.from({ length: Math.min(batch, node.fanout - slot) }, (_, i) => slot + i);
        const childKeys = slots.map((c) => keys.dirNode(dirIno, `${node.nonce}.${c}`));
        const children = await store.getMany(childKeys);
        for (let i = 0; i < slots.length; i++) {
          const child = children[i];
          if (!child) continue;
          const stopped = await visit(childKeys[i], child.value, lowOrder + slots[i] * span, depth + 1);
          if (stopped !== undefined) return stopped;
        }
      }
      return undefined;
    }
    const rootKey = this.keys.dirNode(dirIno, 'r');
    const root = await store.get(rootKey);
    if (!root) throw new FsError('ENOENT', `directory ${dirIno} has no record ${rootKey}`);
    const stopped = await visit(rootKey, root.value, 0, 0);
    return { entries, next: stopped === undefined ? undefined : listingPosition(stopped, 0) };
  }

  /**
   * The entries of a directory that holds nothing but hidden names, or undefined when it holds
   * any other name. Reads every node within the transaction (they become checks).
   */
  async hiddenOnly(tx: Transaction, dirIno: number): Promise<DirEntry[] | undefined> {
    const hidden: DirEntry[] = [];
    for (const node of await readTreeNodes(tx, this.keys, dirIno)) {
      if (node.node.kind !== 'leaf') continue;
      for (const [name, entry] of Object.entries(node.node.entries)) {
        if (!isHiddenName(name)) return undefined;
        hidden.push(entry);
      }
    }
    return hidden;
  }

  /** Stages the deletion of every node of an (empty) directory. */
  async destroy(tx: Transaction, dirIno: number): Promise<void> {
    for (const { key } of await readTreeNodes(tx, this.keys, dirIno)) tx.remove(key);
  }

  private async findLeaf(tx: Transaction, dirIno: number, name: string): Promise<LeafAt> {
    const hash = nameHash(name);
    let key = this.keys.dirNode(dirIno, 'r');
    for (let depth = 0; ; depth++) {
      const bytes = await tx.read(key);
      if (!bytes) {
        await this.loss?.checkMissing(key, `directory ${dirIno}`);
        throw new FsError('ENOENT', `directory ${dirIno} has no record ${key}`);
      }
      const node = decodeNode(key, bytes);
      if (node.kind === 'leaf') return { key, node, depth };
      const slot = (hash >>> (FANOUT_BITS * node.depth)) & (node.fanout - 1);
      key = this.keys.dirNode(dirIno, `${node.nonce}.${slot}`);
    }
  }

  /** Writes a changed leaf, splitting it when it has grown past the limit. */
  private writeLeaf(tx: Transaction, dirIno: number, leaf: LeafAt): void {
    const encoded = encodeNode(leaf.node);
    if (encoded.length <= this.maxLeafBytes || leaf.depth >= MAX_DEPTH) {
      tx.write(leaf.key, encoded);
      return;
    }
    // Children get a fresh nonce: a split that loses its commit leaves only unreachable
    // records behind (collected by fsck), never records a winner could mistake for its own.
    const nonce = randomBytes(6).toString('base64url');
    const children: Record<string, DirEntry>[] = Array.from({ length: FANOUT }, () => newEntries());
    for (const [name, entry] of Object.entries(leaf.node.entries)) {
      children[(nameHash(name) >>> (FANOUT_BITS * leaf.depth)) & (FANOUT - 1)][name] = entry;
    }
    children.forEach((entries, i) => {
      tx.create(this.keys.dirNode(dirIno, `${nonce}.${i}`), encodeNode({ kind: 'leaf', entries }));
    });
    tx.write(leaf.key, encodeRecord({ kind: 'split', nonce, fanout: FANOUT, depth: leaf.depth } satisfies DirNode));
  }
}

/** A node of a directory's tree and the key it is stored under. */
export interface TreeNodeAt {
  readonly key: string;
  readonly node: DirNode;
}

/**
 * Deepest tree {@link readTreeNodes} walks: far beyond any real directory (64-way splits), it
 * only stops a corrupt tree whose splits point back at themselves.
 */
const MAX_TREE_DEPTH = 16;

/** Every node of directory `dirIno`'s tree reachable from its root, read inside `tx`, level by level. */
export async function readTreeNodes(tx: Transaction, keys: Pick<VolumeKeys, 'dirNode'>, dirIno: number): Promise<TreeNodeAt[]> {
  const out: TreeNodeAt[] = [];
  let level = [keys.dirNode(dirIno, 'r')];
  for (let depth = 0; level.length > 0 && depth < MAX_TREE_DEPTH; depth++) {
    const found = await tx.readMany(level);
    const next: string[] = [];
    found.forEach((bytes, i) => {
      if (!bytes) return;
      const node = decodeNode(level[i], bytes);
      out.push({ key: level[i], node });
      if (node.kind === 'split') {
        for (let c = 0; c < node.fanout; c++) next.push(keys.dirNode(dirIno, `${node.nonce}.${c}`));
      }
    });
    level = next;
  }
  return out;
}
