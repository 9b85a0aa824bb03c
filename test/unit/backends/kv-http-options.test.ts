import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/backends/errors.js';
import { parseHttpOptions } from '../../../src/backends/kv-http/options.js';

describe('parseHttpOptions', () => {
  it('etcd defaults: one local member, 1 MiB values, 128 ops per transaction', () => {
    expect(parseHttpOptions({ VOLDFS_HTTP_DIALECT: 'etcd' })).toEqual({
      dialect: 'etcd',
      urls: ['http://127.0.0.1:2379'],
      store: 'voldfs',
      timeoutMs: 5000,
      concurrency: 16,
      retryMs: 5000,
      maxValueBytes: 1024 * 1024,
      maxTxnOps: 128,
      maxRequestBytes: 1536 * 1024,
    });
  });

  it('voldemort defaults: a local coordinator, store voldfs, 1 MiB - 4 KiB values', () => {
    expect(parseHttpOptions({ VOLDFS_HTTP_DIALECT: 'voldemort' })).toMatchObject({
      urls: ['http://127.0.0.1:8080'],
      store: 'voldfs',
      maxValueBytes: 1024 * 1024 - 4096,
    });
  });

  it('reads several endpoints and strips trailing slashes', () => {
    const options = parseHttpOptions({
      VOLDFS_HTTP_DIALECT: 'etcd',
      VOLDFS_HTTP_URLS: 'http://127.0.0.1:2379/, https://etcd.example:2379',
    });
    expect(options.urls).toEqual(['http://127.0.0.1:2379', 'https://etcd.example:2379']);
  });

  it('lets the value limit grow with the server request limit, never beyond it', () => {
    const options = parseHttpOptions({
      VOLDFS_HTTP_DIALECT: 'etcd',
      VOLDFS_HTTP_ETCD_MAX_REQUEST_BYTES: String(8 * 1024 * 1024),
      VOLDFS_HTTP_MAX_VALUE_BYTES: String(4 * 1024 * 1024),
    });
    expect(options.maxValueBytes).toBe(4 * 1024 * 1024);
    expect(() =>
      parseHttpOptions({ VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_MAX_VALUE_BYTES: String(1536 * 1024) }),
    ).toThrow(/VOLDFS_HTTP_MAX_VALUE_BYTES=.*1570816/);
  });

  const bad: [string, Record<string, string>, RegExp][] = [
    ['a missing dialect', {}, /VOLDFS_HTTP_DIALECT="".*etcd.*voldemort/],
    ['an unknown dialect', { VOLDFS_HTTP_DIALECT: 'consul' }, /VOLDFS_HTTP_DIALECT="consul"/],
    ['a URL that is not one', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: '127.0.0.1:2379' }, /VOLDFS_HTTP_URLS=.*not (a URL|http)/],
    ['a non-http URL', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: 'ftp://h:1' }, /VOLDFS_HTTP_URLS=.*not http/],
    ['an empty URL entry', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: 'http://a:1,,http://b:1' }, /VOLDFS_HTTP_URLS=.*empty/],
    ['a duplicate URL', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: 'http://a:1,http://a:1/' }, /VOLDFS_HTTP_URLS=.*twice/],
    ['credentials in a URL', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: 'http://u:p@a:1' }, /VOLDFS_HTTP_URLS=.*credentials/],
    ['a store name with a slash', { VOLDFS_HTTP_DIALECT: 'voldemort', VOLDFS_HTTP_STORE: 'a/b' }, /VOLDFS_HTTP_STORE="a\/b"/],
    ['a bad timeout', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_TIMEOUT_MS: 'soon' }, /VOLDFS_HTTP_TIMEOUT_MS="soon"/],
    ['zero concurrency', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_CONCURRENCY: '0' }, /VOLDFS_HTTP_CONCURRENCY/],
    ['a bad retry time', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_RETRY_MS: '1.5' }, /VOLDFS_HTTP_RETRY_MS/],
    ['a txn limit of 1', { VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_ETCD_MAX_TXN_OPS: '1' }, /VOLDFS_HTTP_ETCD_MAX_TXN_OPS/],
    ['a value limit above the Voldemort body limit', { VOLDFS_HTTP_DIALECT: 'voldemort', VOLDFS_HTTP_MAX_VALUE_BYTES: '1048576' }, /VOLDFS_HTTP_MAX_VALUE_BYTES/],
  ];
  for (const [what, env, message] of bad) {
    it(`rejects ${what} with a ConfigError naming the variable`, () => {
      expect(() => parseHttpOptions(env)).toThrow(ConfigError);
      expect(() => parseHttpOptions(env)).toThrow(message);
    });
  }
});
