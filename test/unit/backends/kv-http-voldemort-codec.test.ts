import { describe, expect, it } from 'vitest';
import { parseMultipart } from '../../../src/backends/kv-http/multipart.js';
import { CREATION_CLOCK, mergeClocks, parseClock, sameEntries, serializeClock } from '../../../src/backends/kv-http/vector-clock.js';

/** A body as javax.mail's MimeMultipart.writeTo writes it in Voldemort's GetResponseSender. */
function javaxBody(parts: { clock: string; value: Buffer }[], boundary = '----=_Part_0_1807213917.1700000000000'): Buffer {
  const pieces: Buffer[] = [];
  for (const p of parts) {
    pieces.push(
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n` +
          `X-VOLD-Vector-Clock: ${p.clock}\r\nContent-Length: ${p.value.length}\r\n\r\n`,
      ),
      p.value,
      Buffer.from('\r\n'),
    );
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(pieces);
}

describe('parseMultipart', () => {
  const clockA = '{"versions":[{"nodeId":0,"version":2}],"timestamp":5}';
  const clockB = '{"versions":[{"nodeId":1,"version":1}],"timestamp":6}';

  it('reads every part with its headers and binary content', () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_v, i) => i));
    const parts = parseMultipart(javaxBody([{ clock: clockA, value: binary }, { clock: clockB, value: Buffer.alloc(0) }]));
    expect(parts.length).toBe(2);
    expect(parts[0].headers.get('x-vold-vector-clock')).toBe(clockA);
    expect(parts[0].body.equals(binary)).toBe(true);
    expect(parts[1].body.length).toBe(0);
  });

  it('trusts Content-Length when the content contains the boundary', () => {
    const boundary = 'XYZ';
    const tricky = Buffer.from('before\r\n--XYZ\r\nafter');
    const [part] = parseMultipart(javaxBody([{ clock: clockA, value: tricky }], boundary));
    expect(part.body.equals(tricky)).toBe(true);
  });

  it('skips a preamble and finds the boundary from the first "--" line', () => {
    const body = Buffer.concat([Buffer.from('This is a MIME message\r\n'), javaxBody([{ clock: clockA, value: Buffer.from('v') }])]);
    expect(parseMultipart(body)[0].body.toString()).toBe('v');
  });

  it('rejects truncated or malformed bodies', () => {
    const whole = javaxBody([{ clock: clockA, value: Buffer.from('value') }]);
    expect(() => parseMultipart(whole.subarray(0, whole.length - 20))).toThrow(/multipart/);
    expect(() => parseMultipart(Buffer.from('no boundary here'))).toThrow(/boundary/);
  });
});

describe('vector clocks', () => {
  it('parses and serializes as Jackson renders VectorClockWrapper, entries sorted by node', () => {
    const clock = parseClock('{"versions":[{"nodeId":3,"version":1},{"nodeId":0,"version":7}],"timestamp":1700000000000}');
    expect(clock).toEqual({
      versions: [
        { nodeId: 0, version: 7 },
        { nodeId: 3, version: 1 },
      ],
      timestamp: 1700000000000,
    });
    expect(serializeClock(clock!)).toBe('{"versions":[{"nodeId":0,"version":7},{"nodeId":3,"version":1}],"timestamp":1700000000000}');
  });

  it('refuses what ClockEntry refuses: negative or too large node ids, versions below 1, duplicates', () => {
    for (const text of [
      '{"versions":[{"nodeId":-1,"version":1}]}',
      '{"versions":[{"nodeId":32768,"version":1}]}',
      '{"versions":[{"nodeId":0,"version":0}]}',
      '{"versions":[{"nodeId":0,"version":1},{"nodeId":0,"version":2}]}',
      '{"versions":"x"}',
      'not json',
      '',
    ]) {
      expect(parseClock(text), text).toBeUndefined();
    }
  });

  it('merges siblings into a clock that descends from both', () => {
    const a = parseClock('{"versions":[{"nodeId":0,"version":3},{"nodeId":32767,"version":1}],"timestamp":5}')!;
    const b = parseClock('{"versions":[{"nodeId":1,"version":2},{"nodeId":32767,"version":1}],"timestamp":9}')!;
    expect(serializeClock(mergeClocks([a, b]))).toBe(
      '{"versions":[{"nodeId":0,"version":3},{"nodeId":1,"version":2},{"nodeId":32767,"version":1}],"timestamp":9}',
    );
    expect(sameEntries(a, { ...a, timestamp: 0 })).toBe(true);
    expect(sameEntries(a, b)).toBe(false);
    expect(CREATION_CLOCK.versions).toEqual([{ nodeId: 32767, version: 1 }]);
  });
});
