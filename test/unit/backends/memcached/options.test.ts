import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../src/backends/errors.js';
import { memcachedBackend, parseMemcachedOptions } from '../../../../src/backends/memcached/index.js';

describe('memcached options (VOLDFS_MC_*)', () => {
  it('defaults to one local server, 2000 ms, no eviction', () => {
    const options = parseMemcachedOptions({});
    expect(options.servers).toEqual([{ host: '127.0.0.1', port: 11211 }]);
    expect(options.timeoutMs).toBe(2000);
    expect(options.allowEviction).toBe(false);
    expect(Object.isFrozen(options)).toBe(true);
  });

  it('parses a list of servers in order, with host names and bracketed IPv6', () => {
    const options = parseMemcachedOptions({
      VOLDFS_MC_SERVERS: '127.0.0.1:21211, cache-1.example.org:11211,[::1]:11300',
      VOLDFS_MC_TIMEOUT_MS: '500',
      VOLDFS_MC_ALLOW_EVICTION: 'yes',
    });
    expect(options.servers).toEqual([
      { host: '127.0.0.1', port: 21211 },
      { host: 'cache-1.example.org', port: 11211 },
      { host: '::1', port: 11300 },
    ]);
    expect(options.timeoutMs).toBe(500);
    expect(options.allowEviction).toBe(true);
  });

  it.each([
    ['missing port', '127.0.0.1'],
    ['empty entry', '127.0.0.1:11211,,127.0.0.1:11212'],
    ['empty value', ''],
    ['port out of range', '127.0.0.1:70000'],
    ['port zero', '127.0.0.1:0'],
    ['URL instead of host:port', 'memcached://127.0.0.1:11211'],
    ['space inside', '127.0.0.1 :11211'],
    ['duplicate server', '127.0.0.1:11211,127.0.0.1:11211'],
    ['unbracketed IPv6', '::1:11211'],
    ['bad host', 'under_score:11211'],
  ])('rejects VOLDFS_MC_SERVERS with %s, naming the variable and the form', (_why, value) => {
    let caught: unknown;
    try {
      parseMemcachedOptions({ VOLDFS_MC_SERVERS: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    expect(message).toContain('VOLDFS_MC_SERVERS');
    expect(message).toContain('host:port');
  });

  it.each(['0', '-5', '1.5', 'fast', '600001'])('rejects VOLDFS_MC_TIMEOUT_MS=%s with the accepted range', (value) => {
    expect(() => parseMemcachedOptions({ VOLDFS_MC_TIMEOUT_MS: value })).toThrow(
      /VOLDFS_MC_TIMEOUT_MS=.* is invalid: expected milliseconds, an integer from 1 to 600000/,
    );
  });

  it('rejects a VOLDFS_MC_ALLOW_EVICTION that is not yes or no', () => {
    expect(() => parseMemcachedOptions({ VOLDFS_MC_ALLOW_EVICTION: 'maybe' })).toThrow(
      /VOLDFS_MC_ALLOW_EVICTION="maybe" is invalid: expected yes or no/,
    );
  });

  it('reads VOLDFS_MC_PROTOCOL (unset: probed) and VOLDFS_MC_ITEM_SIZE (default 1m, k and m suffixes)', () => {
    expect(parseMemcachedOptions({})).toMatchObject({ protocol: undefined, itemSizeBytes: 1_048_576 });
    expect(parseMemcachedOptions({ VOLDFS_MC_PROTOCOL: 'Text', VOLDFS_MC_ITEM_SIZE: '512k' })).toMatchObject({ protocol: 'text', itemSizeBytes: 524_288 });
    expect(parseMemcachedOptions({ VOLDFS_MC_PROTOCOL: 'binary', VOLDFS_MC_ITEM_SIZE: '2m' })).toMatchObject({ protocol: 'binary', itemSizeBytes: 2_097_152 });
    expect(() => parseMemcachedOptions({ VOLDFS_MC_PROTOCOL: 'ascii' })).toThrow(/VOLDFS_MC_PROTOCOL="ascii" is invalid: expected binary or text/);
    expect(() => parseMemcachedOptions({ VOLDFS_MC_ITEM_SIZE: '1g' })).toThrow(/VOLDFS_MC_ITEM_SIZE="1g" is invalid/);
    expect(() => parseMemcachedOptions({ VOLDFS_MC_ITEM_SIZE: '1000' })).toThrow(/from 64k to 128m/);
  });

  it('is the backend registered as mc, documenting every variable it reads', () => {
    expect(memcachedBackend.name).toBe('mc');
    expect(memcachedBackend.variables.map((v) => v.name)).toEqual([
      'VOLDFS_MC_SERVERS',
      'VOLDFS_MC_TIMEOUT_MS',
      'VOLDFS_MC_PROTOCOL',
      'VOLDFS_MC_ITEM_SIZE',
      'VOLDFS_MC_ALLOW_EVICTION',
    ]);
    expect(() => memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: 'nonsense' })).toThrow(ConfigError);
  });
});
