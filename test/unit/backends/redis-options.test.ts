import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/backends/errors.js';
import { parseRedisOptions } from '../../../src/backends/redis/options.js';
import { SINGLE_DOMAIN } from '../../../src/backends/kv-store.js';
import { ClusterPlacement } from '../../../src/backends/redis/placement.js';
import { keySlot } from '../../../src/backends/redis/key-slot.js';

describe('parseRedisOptions', () => {
  it('defaults to one server on 127.0.0.1:6379, 5 s timeout, 4 MiB values, no retries', () => {
    expect(parseRedisOptions({})).toEqual({
      mode: 'single',
      url: 'redis://127.0.0.1:6379',
      timeoutMs: 5000,
      retryMs: 0,
      maxValueBytes: 4 * 1024 * 1024,
    });
  });

  it('reads a cluster node list, retrying 30 s by default', () => {
    const options = parseRedisOptions({ VOLDFS_REDIS_CLUSTER: '127.0.0.1:7000, localhost:7001' });
    expect(options).toMatchObject({
      mode: 'cluster',
      nodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: 'localhost', port: 7001 },
      ],
      retryMs: 30_000,
    });
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['a URL of another scheme', { VOLDFS_REDIS_URL: 'http://127.0.0.1:6379' }, /VOLDFS_REDIS_URL=.*scheme http:/],
    ['a URL that is not one', { VOLDFS_REDIS_URL: '127.0.0.1:6379' }, /VOLDFS_REDIS_URL=.*redis:\/\//],
    ['a URL with a bad port', { VOLDFS_REDIS_URL: 'redis://127.0.0.1:99999' }, /VOLDFS_REDIS_URL=/],
    ['a URL with a path', { VOLDFS_REDIS_URL: 'redis://127.0.0.1:6379/x/y' }, /VOLDFS_REDIS_URL=.*database number/],
    ['both URL and cluster', { VOLDFS_REDIS_URL: 'redis://h:1', VOLDFS_REDIS_CLUSTER: 'h:2' }, /VOLDFS_REDIS_URL and VOLDFS_REDIS_CLUSTER/],
    ['a cluster entry without port', { VOLDFS_REDIS_CLUSTER: '127.0.0.1' }, /VOLDFS_REDIS_CLUSTER=.*host:port/],
    ['an empty cluster entry', { VOLDFS_REDIS_CLUSTER: '127.0.0.1:7000,,127.0.0.1:7001' }, /VOLDFS_REDIS_CLUSTER=.*empty/],
    ['a cluster port out of range', { VOLDFS_REDIS_CLUSTER: '127.0.0.1:0' }, /VOLDFS_REDIS_CLUSTER=.*1\.\.65535/],
    ['a duplicate cluster node', { VOLDFS_REDIS_CLUSTER: 'a:1,a:1' }, /VOLDFS_REDIS_CLUSTER=.*twice/],
    ['a timeout that is not a number', { VOLDFS_REDIS_TIMEOUT_MS: '5s' }, /VOLDFS_REDIS_TIMEOUT_MS="5s".*milliseconds/],
    ['a zero timeout', { VOLDFS_REDIS_TIMEOUT_MS: '0' }, /VOLDFS_REDIS_TIMEOUT_MS/],
    ['a negative retry time', { VOLDFS_REDIS_RETRY_MS: '-1' }, /VOLDFS_REDIS_RETRY_MS/],
    ['a value limit above 512 MB', { VOLDFS_REDIS_MAX_VALUE_BYTES: '600000000' }, /VOLDFS_REDIS_MAX_VALUE_BYTES/],
  ];
  for (const [what, env, message] of bad) {
    it(`rejects ${what} with a ConfigError naming the variable`, () => {
      expect(() => parseRedisOptions(env)).toThrow(ConfigError);
      expect(() => parseRedisOptions(env)).toThrow(message);
    });
  }

  it('does not repeat a password in its messages', () => {
    expect(() => parseRedisOptions({ VOLDFS_REDIS_URL: 'redis://u:hunter2@h:1/a/b' })).toThrow(/u:\*\*\*@h/);
    expect(() => parseRedisOptions({ VOLDFS_REDIS_URL: 'redis://u:hunter2@h:1/a/b' })).not.toThrow(/hunter2/);
  });
});

describe('key slots', () => {
  it('matches the CRC16 of the Redis Cluster specification', () => {
    // The specification's test vector: CRC16 of "123456789" is 0x31C3, slot 0x31C3 % 16384.
    expect(keySlot('123456789')).toBe(0x31c3 % 16384);
    // Slots as CLUSTER KEYSLOT reports them.
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).toBe(keySlot('foo{}{bar}'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
  });
});

describe('placement', () => {
  it('a single server is one domain and keeps keys as they are', () => {
    expect(SINGLE_DOMAIN.domains).toBe(1);
    expect(SINGLE_DOMAIN.keyInDomain('k', 0)).toBe('k');
    expect(() => SINGLE_DOMAIN.keyInDomain('k', 1)).toThrow(RangeError);
  });

  it('numbers masters by their first slot and finds a tag for each', () => {
    const placement = new ClusterPlacement([
      { first: 10923, last: 16383, masterId: 'c' },
      { first: 0, last: 5460, masterId: 'a' },
      { first: 5461, last: 10922, masterId: 'b' },
    ]);
    expect(placement.domains).toBe(3);
    expect(placement.domainOf('foo')).toBe(2); // slot 12182
    for (let d = 0; d < 3; d++) expect(placement.domainOf(placement.keyInDomain('x:y', d))).toBe(d);
    expect(() => placement.keyInDomain('x', 3)).toThrow(RangeError);
  });

  it('refuses a slot map with holes', () => {
    expect(() => new ClusterPlacement([{ first: 0, last: 100, masterId: 'a' }])).toThrow(/slot 101 is served by no master/);
  });
});
