import { IntegrityError } from '../backends/errors.js';
import type { Version, VersionedValue } from '../backends/kv-store.js';

/**
 * Byte layouts of what {@link IntentCommitStore} keeps in the underlying store. Every record
 * starts with a tag byte, so a lock envelope can never be mistaken for a caller's value:
 *
 * - plain    `00 | value`
 * - envelope `01 | txidLen u8 | txid | flags u8 | [prevVersionLen u16 | prevVersion |
 *              prevLen u32 | prev] | [nextLen u32 | next]`  (flag 1: prev present, 2: next present)
 * - intent   `02 | JSON {s: state, t: createdAt ms, k: locked keys}`
 */
export const TAG_PLAIN = 0x00;
export const TAG_ENVELOPE = 0x01;
export const TAG_INTENT = 0x02;

/** Longest transaction id (ASCII). */
export const MAX_TXID_BYTES = 64;
/** Longest backend version an envelope can carry (memcached CAS: 20 digits). */
export const MAX_VERSION_BYTES = 1024;
/** Bytes an envelope adds to its two values, at most. */
export const ENVELOPE_OVERHEAD = 1 + 1 + MAX_TXID_BYTES + 1 + 2 + MAX_VERSION_BYTES + 4 + 4;

const PREV_PRESENT = 1;
const NEXT_PRESENT = 2;

/** A key locked by a transaction: what it held before and what the transaction writes. */
export interface Envelope {
  readonly txid: string;
  /** The key's state when locked: absent (`null`), or its value and the version it had. */
  readonly prev: VersionedValue | null;
  /** What the transaction leaves there: a value, or `null` to delete the key. */
  readonly next: Buffer | null;
}

export type IntentState = 'pending' | 'committed' | 'aborted';

/** The record whose state decides a transaction; any client may read it and act on it. */
export interface Intent {
  readonly state: IntentState;
  /** Owner's wall clock (ms since epoch) when the intent was written. */
  readonly createdAt: number;
  /** Every key the transaction locks, in lock order. */
  readonly keys: readonly string[];
}

export type StoredRecord =
  | { readonly kind: 'plain'; readonly value: Buffer }
  | { readonly kind: 'envelope'; readonly envelope: Envelope }
  | { readonly kind: 'intent'; readonly intent: Intent };

export function encodePlain(value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(value.length + 1);
  out[0] = TAG_PLAIN;
  value.copy(out, 1);
  return out;
}

export function encodeEnvelope(envelope: Envelope): Buffer {
  const txid = Buffer.from(envelope.txid, 'latin1');
  if (txid.length === 0 || txid.length > MAX_TXID_BYTES) {
    throw new RangeError(`transaction id must be 1 to ${MAX_TXID_BYTES} bytes, got ${txid.length}`);
  }
  const parts: Buffer[] = [Buffer.from([TAG_ENVELOPE, txid.length]), txid];
  const flags = (envelope.prev ? PREV_PRESENT : 0) | (envelope.next ? NEXT_PRESENT : 0);
  parts.push(Buffer.from([flags]));
  if (envelope.prev) {
    const version = Buffer.from(envelope.prev.version, 'utf8');
    if (version.length > MAX_VERSION_BYTES) {
      throw new IntegrityError(
        `the store's version token is ${version.length} bytes; intent commits carry at most ${MAX_VERSION_BYTES}`,
      );
    }
    parts.push(u16(version.length), version, u32(envelope.prev.value.length), envelope.prev.value);
  }
  if (envelope.next) parts.push(u32(envelope.next.length), envelope.next);
  return Buffer.concat(parts);
}

export function encodeIntent(intent: Intent): Buffer {
  const body = Buffer.from(JSON.stringify({ s: intent.state, t: intent.createdAt, k: intent.keys }), 'utf8');
  return Buffer.concat([Buffer.from([TAG_INTENT]), body]);
}

/**
 * @throws IntegrityError naming the key when the bytes are not a record this wrapper wrote
 *   (empty, unknown tag, truncated envelope, malformed intent).
 */
export function decodeStored(key: string, bytes: Buffer): StoredRecord {
  if (bytes.length === 0) throw new IntegrityError(`record ${key} is empty; it was not written through intent commits`);
  switch (bytes[0]) {
    case TAG_PLAIN:
      return { kind: 'plain', value: bytes.subarray(1) };
    case TAG_ENVELOPE:
      return { kind: 'envelope', envelope: decodeEnvelope(key, bytes) };
    case TAG_INTENT:
      return { kind: 'intent', intent: decodeIntent(key, bytes) };
    default:
      throw new IntegrityError(
        `record ${key} starts with tag ${bytes[0]}; intent commits write 0 to 2 (was the store written without them?)`,
      );
  }
}

function decodeEnvelope(key: string, bytes: Buffer): Envelope {
  const reader = new Reader(key, bytes, 1);
  const txid = reader.take(reader.u8()).toString('latin1');
  const flags = reader.u8();
  let prev: VersionedValue | null = null;
  if (flags & PREV_PRESENT) {
    const version: Version = reader.take(reader.u16()).toString('utf8');
    prev = { version, value: reader.take(reader.u32()) };
  }
  const next = flags & NEXT_PRESENT ? reader.take(reader.u32()) : null;
  reader.end();
  if (txid.length === 0) throw new IntegrityError(`lock envelope in ${key} has an empty transaction id`);
  return { txid, prev, next };
}

function decodeIntent(key: string, bytes: Buffer): Intent {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.subarray(1).toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`intent record ${key} is not valid JSON`, { cause: err });
  }
  const o = parsed as { s?: unknown; t?: unknown; k?: unknown };
  const stateOk = o.s === 'pending' || o.s === 'committed' || o.s === 'aborted';
  const keysOk = Array.isArray(o.k) && o.k.every((k) => typeof k === 'string');
  if (!stateOk || typeof o.t !== 'number' || !keysOk) {
    throw new IntegrityError(`intent record ${key} lacks a valid state, time or key list`);
  }
  return { state: o.s as IntentState, createdAt: o.t as number, keys: o.k as string[] };
}

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

/** Bounds-checked cursor: a truncated envelope is an IntegrityError, not a RangeError. */
class Reader {
  constructor(
    private readonly key: string,
    private readonly bytes: Buffer,
    private pos: number,
  ) {}

  u8(): number {
    return this.take(1)[0];
  }

  u16(): number {
    return this.take(2).readUInt16BE();
  }

  u32(): number {
    return this.take(4).readUInt32BE();
  }

  take(n: number): Buffer {
    if (this.pos + n > this.bytes.length) {
      throw new IntegrityError(`lock envelope in ${this.key} is truncated`);
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  end(): void {
    if (this.pos !== this.bytes.length) {
      throw new IntegrityError(`lock envelope in ${this.key} has ${this.bytes.length - this.pos} trailing bytes`);
    }
  }
}
