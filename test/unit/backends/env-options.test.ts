import { describe, expect, it } from 'vitest';
import { blankToUndefined, hostPortList, integerOption } from '../../../src/backends/env-options.js';
import { ConfigError } from '../../../src/backends/errors.js';

describe('integerOption', () => {
  const limits = { fallback: 7, min: 1, max: 100, unit: 'milliseconds' };

  it('gives the fallback when the variable is unset or blank, and the number when it is valid', () => {
    expect(integerOption({}, 'X', limits)).toBe(7);
    expect(integerOption({ X: '  ' }, 'X', limits)).toBe(7);
    expect(integerOption({ X: ' 42 ' }, 'X', limits)).toBe(42);
    expect(integerOption({ X: '100' }, 'X', limits)).toBe(100);
  });

  it.each([['0'], ['101'], ['1.5'], ['-3'], ['1e2'], ['ten']])('refuses %j naming the variable, range and default', (text) => {
    expect(() => integerOption({ X: text }, 'X', limits)).toThrow(ConfigError);
    expect(() => integerOption({ X: text }, 'X', limits)).toThrow(
      `X=${JSON.stringify(text)} is invalid: expected milliseconds, an integer from 1 to 100 (default 7)`,
    );
  });
});

describe('hostPortList', () => {
  const parse = (text: string) => hostPortList('SERVERS', text, '127.0.0.1:11211,127.0.0.1:11212');

  it('keeps the order, trims entries and takes names, IPv4 and bracketed IPv6', () => {
    expect(parse('b.example:2, 10.0.0.1:1,[::1]:65535')).toEqual([
      { host: 'b.example', port: 2 },
      { host: '10.0.0.1', port: 1 },
      { host: '::1', port: 65535 },
    ]);
  });

  it.each([
    ['', /empty server entry/],
    ['a:1,,b:2', /empty server entry/],
    ['a', /"a" is not host:port/],
    ['::1:5', /is not host:port/],
    ['[zz]:5', /"zz" is not a host name or IP address/],
    ['a_b:5', /"a_b" is not a host name/],
    ['a:0', /port 0 is not in 1\.\.65535/],
    ['a:65536', /port 65536 is not in 1\.\.65535/],
    ['a:1,A:1', /A:1 is listed twice/],
  ])('refuses %j saying why and what is expected', (text, why) => {
    expect(() => parse(text)).toThrow(ConfigError);
    expect(() => parse(text)).toThrow(why);
    expect(() => parse(text)).toThrow(/^SERVERS=.* is invalid: .*; expected a comma-separated list of host:port, e\.g\. 127\.0\.0\.1:11211,127\.0\.0\.1:11212 \(IPv6 hosts in brackets: \[::1\]:11211\)$/);
  });
});

describe('blankToUndefined', () => {
  it('trims, and turns unset or blank into undefined', () => {
    expect(blankToUndefined(undefined)).toBeUndefined();
    expect(blankToUndefined(' \t')).toBeUndefined();
    expect(blankToUndefined(' a ')).toBe('a');
  });
});
