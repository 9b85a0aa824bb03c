import { Packr } from 'msgpackr';
import { IntegrityError } from '../backends/errors.js';

/**
 * Records are one format-version byte followed by MessagePack. The version byte lets a later
 * release read old records and refuse ones it does not know, instead of misreading them.
 * Only bigints are written as 64-bit integers (numbers past 2^32 go as doubles), so those read
 * back as bigints: file sizes past 2^53 - 1, exact up to 2^63 - 1.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });

export const RECORD_FORMAT = 1;

export function encodeRecord(value: unknown): Buffer {
  const body = packr.pack(value);
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = RECORD_FORMAT;
  body.copy(out, 1);
  return out;
}

/**
 * @throws IntegrityError naming the key when the record is empty, of an unknown format version,
 *   or not valid MessagePack.
 */
export function decodeRecord<T>(key: string, bytes: Buffer): T {
  if (bytes.length === 0) throw new IntegrityError(`record ${key} is empty`);
  if (bytes[0] !== RECORD_FORMAT) {
    throw new IntegrityError(`record ${key} has format version ${bytes[0]}; this voldfs reads version ${RECORD_FORMAT}`);
  }
  try {
    return packr.unpack(bytes.subarray(1)) as T;
  } catch (err) {
    throw new IntegrityError(`record ${key} cannot be decoded: ${(err as Error).message}`, { cause: err });
  }
}
