import { randomBytes } from 'node:crypto';
import { StoreError } from '../errors.js';

/**
 * How a CAS-only store frames the values it keeps: a first byte saying what the record is,
 * then for a live record the id of the write that made it, then the caller's bytes.
 * - `[0]`: the marker a delete leaves (the key is never removed, see cas-only-store.ts);
 * - `[1] value`: a live record from before write ids (still read);
 * - `[2] id(8) value`: a live record; the id is random per write, so it names this write and
 *   no other, and it is what the record's version is made of.
 */
const DELETED = 0;
const LIVE_UNTAGGED = 1;
const LIVE = 2;
export const WRITE_ID_BYTES = 8;
/** Bytes the framing adds to a value. */
export const FRAME_BYTES = 1 + WRITE_ID_BYTES;
/** The whole value of a deleted key. */
export const DELETED_MARKER: Buffer = Buffer.from([DELETED]);

/** A live record as framed: its bytes and the id of the write that made it (none on old records). */
export interface FramedRecord {
  readonly value: Buffer;
  readonly writeId?: string;
}

/** A fresh write id (16 hex digits) and the frame header that carries it. */
export function newWriteFrame(): { writeId: string; header: Buffer } {
  const header = Buffer.allocUnsafe(FRAME_BYTES);
  header[0] = LIVE;
  randomBytes(WRITE_ID_BYTES).copy(header, 1);
  return { writeId: header.toString('hex', 1), header };
}

/**
 * The record a stored value holds, or undefined for a deleted marker.
 * @throws StoreError when the value was not framed by voldfs (written some other way)
 */
export function unframe(stored: Buffer, key: string): FramedRecord | undefined {
  if (stored.length >= FRAME_BYTES && stored[0] === LIVE) {
    return { value: stored.subarray(FRAME_BYTES), writeId: stored.toString('hex', 1, FRAME_BYTES) };
  }
  if (stored.length >= 1 && stored[0] === LIVE_UNTAGGED) return { value: stored.subarray(1) };
  if (stored.length === 1 && stored[0] === DELETED) return undefined;
  throw new StoreError(
    `record ${key} was not written by voldfs over this protocol (voldfs frames every value on kumofs and the text protocol); ` +
      `a volume must be reached the same way every time, through the text protocol or kumofs`,
  );
}
