import { describe, expect, it } from 'vitest';
import { encodeKey, InvalidKey } from '../../../../src/backends/memcached/keys.js';
import {
  casOfVersion,
  decodeResponse,
  encodeRequest,
  frameLength,
  Opcode,
  versionOfCas,
} from '../../../../src/backends/memcached/protocol.js';

describe('memcached keys', () => {
  it('accepts printable ASCII up to 250 bytes', () => {
    expect(encodeKey('a!#~').toString()).toBe('a!#~');
    expect(encodeKey('k'.repeat(250)).length).toBe(250);
  });

  it.each([
    ['empty', '', /cannot be empty/],
    ['251 bytes', 'k'.repeat(251), /longer than memcached's limit of 250 bytes/],
    ['a space', 'a b', /printable ASCII without spaces/],
    ['a newline', 'a\nb', /printable ASCII without spaces/],
    ['a NUL', 'a\0b', /printable ASCII without spaces/],
    ['non-ASCII', 'caf\u00e9', /printable ASCII without spaces/],
  ])('rejects a key with %s', (_why, key, message) => {
    expect(() => encodeKey(key)).toThrow(InvalidKey);
    expect(() => encodeKey(key)).toThrow(message);
  });
});

describe('memcached binary frames', () => {
  it('encodes a SET carrying a CAS unique, header first', () => {
    const parts = encodeRequest(
      { opcode: Opcode.set, key: Buffer.from('key'), extras: Buffer.alloc(8), value: Buffer.from('value'), cas: 0x0102030405060708n },
      77,
    );
    const frame = Buffer.concat(parts);
    expect(frame.length).toBe(24 + 8 + 3 + 5);
    expect(frame[0]).toBe(0x80);
    expect(frame[1]).toBe(Opcode.set);
    expect(frame.readUInt16BE(2)).toBe(3);
    expect(frame[4]).toBe(8);
    expect(frame.readUInt32BE(8)).toBe(16);
    expect(frame.readUInt32BE(12)).toBe(77);
    expect(frame.readBigUInt64BE(16)).toBe(0x0102030405060708n);
    expect(frame.subarray(32).toString()).toBe('keyvalue');
  });

  it('decodes a response with its CAS unique and value', () => {
    const frame = Buffer.alloc(24 + 4 + 5);
    frame[0] = 0x81;
    frame[1] = Opcode.get;
    frame[4] = 4;
    frame.writeUInt32BE(9, 8);
    frame.writeUInt32BE(5, 12);
    frame.writeBigUInt64BE(123456789012345n, 16);
    frame.write('hello', 28);
    expect(frameLength(frame.subarray(0, 23))).toBeUndefined();
    expect(frameLength(frame)).toBe(frame.length);
    const response = decodeResponse(frame);
    expect(response.cas).toBe(123456789012345n);
    expect(response.opaque).toBe(5);
    expect(response.value.toString()).toBe('hello');
  });
});

describe('versions', () => {
  it('are CAS uniques in decimal and parse back', () => {
    const max = (1n << 64n) - 1n;
    expect(versionOfCas(42n)).toBe('42');
    expect(casOfVersion(versionOfCas(max))).toBe(max);
  });

  it.each(['0', '', '-1', '007', '1e3', 'abc', '18446744073709551616'])(
    'refuses %j, which the server would read as unconditional or cannot hold',
    (version) => {
      expect(casOfVersion(version)).toBeUndefined();
    },
  );
});
