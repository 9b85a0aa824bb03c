import memjs from 'memjs';

/**
 * The parts of the memcached binary protocol this backend uses. Frames are built and parsed
 * with memjs's exported helpers (`Header`, `Utils.parseMessage`); memjs's `Client` does not
 * expose CAS uniques, so the requests that need them are assembled here.
 */

/** Binary protocol request opcodes. */
export const Opcode = Object.freeze({
  get: 0x00,
  set: 0x01,
  add: 0x02,
  replace: 0x03,
  delete: 0x04,
  noop: 0x0a,
  version: 0x0b,
  stat: 0x10,
});

/** Binary protocol response statuses. */
export const Status = Object.freeze({
  ok: 0x0000,
  keyNotFound: 0x0001,
  keyExists: 0x0002,
  valueTooLarge: 0x0003,
  invalidArguments: 0x0004,
  itemNotStored: 0x0005,
  unknownCommand: 0x0081,
  outOfMemory: 0x0082,
  notSupported: 0x0083,
  internalError: 0x0084,
  busy: 0x0085,
  temporaryFailure: 0x0086,
});

const STATUS_TEXT: Readonly<Record<number, string>> = {
  [Status.keyNotFound]: 'key not found',
  [Status.keyExists]: 'key exists',
  [Status.valueTooLarge]: 'value too large',
  [Status.invalidArguments]: 'invalid arguments',
  [Status.itemNotStored]: 'item not stored',
  [Status.unknownCommand]: 'unknown command',
  [Status.outOfMemory]: 'out of memory',
  [Status.notSupported]: 'not supported',
  [Status.internalError]: 'internal error',
  [Status.busy]: 'busy',
  [Status.temporaryFailure]: 'temporary failure',
};

/** Human-readable name of a response status, for error messages. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? `status 0x${status.toString(16).padStart(4, '0')}`;
}

const REQUEST_MAGIC = 0x80;
const HEADER_BYTES = 24;
const CAS_BYTES = 8;
const MAX_CAS = (1n << 64n) - 1n;

/** One decoded response frame. `cas` is the 64-bit CAS unique as an unsigned integer. */
export interface Response {
  readonly opcode: number;
  readonly status: number;
  readonly opaque: number;
  readonly cas: bigint;
  readonly key: Buffer;
  readonly extras: Buffer;
  readonly value: Buffer;
}

/** A request to send: the frame split into parts so a large value is written without a copy. */
export interface Request {
  readonly opcode: number;
  readonly key: Buffer;
  readonly extras?: Buffer;
  readonly value?: Buffer;
  /** The value in several parts (sent one after the other, never concatenated); instead of `value`. */
  readonly valueParts?: readonly Buffer[];
  /** CAS unique the server must match; 0 (default) means unconditional. */
  readonly cas?: bigint;
}

/** The header and body parts of `request`, ready for a corked socket write. */
export function encodeRequest(request: Request, opaque: number): Buffer[] {
  const extras = request.extras ?? Buffer.alloc(0);
  const value = request.valueParts ?? [request.value ?? Buffer.alloc(0)];
  const valueBytes = value.reduce((sum, part) => sum + part.length, 0);
  const cas = Buffer.alloc(CAS_BYTES);
  cas.writeBigUInt64BE(request.cas ?? 0n);
  const header = memjs.Header.toBuffer({
    magic: REQUEST_MAGIC,
    opcode: request.opcode,
    keyLength: request.key.length,
    extrasLength: extras.length,
    totalBodyLength: extras.length + request.key.length + valueBytes,
    opaque,
    cas,
  });
  return [header, extras, request.key, ...value].filter((part) => part.length > 0);
}

/**
 * Length in bytes of the frame at the start of `data`, or `undefined` while the header is
 * incomplete.
 */
export function frameLength(data: Buffer): number | undefined {
  if (data.length < HEADER_BYTES) return undefined;
  return HEADER_BYTES + data.readUInt32BE(8);
}

/** Decodes one complete frame (exactly {@link frameLength} bytes). */
export function decodeResponse(frame: Buffer): Response {
  const message = memjs.Utils.parseMessage(frame) as ReturnType<typeof memjs.Utils.parseMessage> | false;
  if (!message) throw new Error('incomplete or malformed memcached response frame');
  return {
    opcode: message.header.opcode,
    status: message.header.status,
    opaque: message.header.opaque,
    cas: message.header.cas.readBigUInt64BE(0),
    key: message.key,
    extras: message.extras,
    value: message.val,
  };
}

/** Extras of SET, ADD and REPLACE: flags 0, expiration 0 (never expire). */
export const STORE_EXTRAS: Buffer = Buffer.alloc(8);

/** A version token as handed to callers: the CAS unique in decimal. */
export function versionOfCas(cas: bigint): string {
  return cas.toString(10);
}

/**
 * The CAS unique behind a version token, or `undefined` when the token cannot be one of ours
 * (not a decimal integer, zero, or out of range). Zero must never reach the server: memcached
 * reads CAS 0 as "unconditional".
 */
export function casOfVersion(version: string): bigint | undefined {
  if (!/^[1-9][0-9]{0,19}$/.test(version)) return undefined;
  const cas = BigInt(version);
  return cas <= MAX_CAS ? cas : undefined;
}
