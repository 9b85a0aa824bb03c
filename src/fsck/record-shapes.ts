import { IntegrityError } from '../backends/errors.js';
import { decodeRecord } from '../chunk/record-codec.js';
import type { DirNode, InodeRecord } from '../inode/records.js';
import { isFileSize } from '../chunk/byte-offset.js';

/** The record, or undefined when it cannot be decoded or does not have the expected shape. */
export function decodeOr<T>(key: string, bytes: Buffer, valid: (value: unknown) => value is T): T | undefined {
  let value: unknown;
  try {
    value = decodeRecord<unknown>(key, bytes);
  } catch (err) {
    if (err instanceof IntegrityError) return undefined;
    throw err;
  }
  return valid(value) ? value : undefined;
}

/** An inode record with the fields fsck relies on. */
export function validInode(value: unknown): value is InodeRecord {
  const r = value as Partial<InodeRecord> | null;
  return (
    typeof r === 'object' && r !== null && Number.isInteger(r.mode) && Number.isInteger(r.nlink) && isFileSize(r.size)
  );
}

/** A directory node whose entries are [inode number, type bits]. */
export function validNode(value: unknown): value is DirNode {
  const n = value as Partial<Record<string, unknown>> | null;
  if (typeof n !== 'object' || n === null) return false;
  if (n.kind === 'split') {
    return typeof n.nonce === 'string' && Number.isInteger(n.fanout) && (n.fanout as number) > 0 && (n.fanout as number) <= 4096;
  }
  if (n.kind !== 'leaf' || typeof n.entries !== 'object' || n.entries === null) return false;
  return Object.values(n.entries as Record<string, unknown>).every(
    (e) => Array.isArray(e) && e.length === 2 && Number.isSafeInteger(e[0]) && (e[0] as number) > 0 && Number.isInteger(e[1]),
  );
}
