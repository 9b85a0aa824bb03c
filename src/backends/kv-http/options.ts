import type { Env } from '../backend.js';
import { blankToUndefined, integerOption } from '../env-options.js';
import { ConfigError } from '../errors.js';

/** Which HTTP key-value protocol the endpoints speak. */
export type HttpDialect = 'etcd' | 'voldemort';

/** Options of the http backend, parsed once from the environment. */
export interface HttpOptions {
  readonly dialect: HttpDialect;
  /**
   * Base URLs without a trailing slash, in the order they are tried; a request that cannot
   * connect to one moves on to the next.
   */
  readonly urls: readonly string[];
  /** Voldemort store name (the first path segment of every request). */
  readonly store: string;
  /** Time limit of one HTTP request, body included, in milliseconds. */
  readonly timeoutMs: number;
  /** Most requests in flight at once, over all endpoints. */
  readonly concurrency: number;
  /** How long a request keeps retrying while no endpoint can serve it, in milliseconds. */
  readonly retryMs: number;
  /** Largest value a put accepts, in bytes. */
  readonly maxValueBytes: number;
  /** etcd: the server's --max-txn-ops (ops per transaction). */
  readonly maxTxnOps: number;
  /** etcd: the server's --max-request-bytes. */
  readonly maxRequestBytes: number;
}

export const DEFAULT_URLS: Readonly<Record<HttpDialect, string>> = Object.freeze({
  etcd: 'http://127.0.0.1:2379',
  voldemort: 'http://127.0.0.1:8080',
});
export const DEFAULT_STORE = 'voldfs';
export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_CONCURRENCY = 16;
/** Long enough for an etcd leader election (about one election timeout, 1 s by default). */
export const DEFAULT_RETRY_MS = 5000;
/** etcd's default --max-txn-ops. */
export const DEFAULT_MAX_TXN_OPS = 128;
/** etcd's default --max-request-bytes (1.5 MiB). */
export const DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024;
/**
 * Default value limits. etcd: 1 MiB, well inside the 1.5 MiB request limit, which a put of
 * 1,572,342 bytes under a 240-byte key reaches (measured on etcd 3.4); the margin lets a
 * commit carry a full value plus metadata records. Voldemort: its coordinator refuses request
 * bodies above 1 MiB (HttpChunkAggregator(1048576)) and each record carries one marker byte;
 * 1 MiB - 4 KiB keeps block sizes page-aligned.
 */
export const DEFAULT_MAX_VALUE_BYTES: Readonly<Record<HttpDialect, number>> = Object.freeze({
  etcd: 1024 * 1024,
  voldemort: 1024 * 1024 - 4096,
});
const VOLDEMORT_BODY_LIMIT = 1024 * 1024;
const MAX_MS = 600_000;

/**
 * Reads VOLDFS_HTTP_DIALECT (`etcd` or `voldemort`, required), VOLDFS_HTTP_URLS (default
 * http://127.0.0.1:2379 for etcd, http://127.0.0.1:8080 for Voldemort), VOLDFS_HTTP_STORE
 * (default voldfs), VOLDFS_HTTP_TIMEOUT_MS (default 5000), VOLDFS_HTTP_CONCURRENCY (default 16),
 * VOLDFS_HTTP_RETRY_MS (default 5000),
 * VOLDFS_HTTP_MAX_VALUE_BYTES, VOLDFS_HTTP_ETCD_MAX_TXN_OPS (default 128) and
 * VOLDFS_HTTP_ETCD_MAX_REQUEST_BYTES (default 1572864).
 * @throws ConfigError naming the variable and the accepted values
 */
export function parseHttpOptions(env: Env): HttpOptions {
  const dialectText = blankToUndefined(env.VOLDFS_HTTP_DIALECT);
  if (dialectText !== 'etcd' && dialectText !== 'voldemort') {
    throw new ConfigError(
      `VOLDFS_HTTP_DIALECT=${JSON.stringify(env.VOLDFS_HTTP_DIALECT ?? '')} is invalid: expected etcd ` +
        '(etcd v3 JSON gateway) or voldemort (Voldemort REST coordinator)',
    );
  }
  const dialect: HttpDialect = dialectText;
  const maxRequestBytes = integerOption(env, 'VOLDFS_HTTP_ETCD_MAX_REQUEST_BYTES', {
    fallback: DEFAULT_MAX_REQUEST_BYTES,
    min: 4096,
    max: 2 ** 31 - 1,
    unit: 'bytes',
  });
  // Room for the key, the JSON/protobuf framing and a compare in the same request.
  const valueLimit = dialect === 'etcd' ? maxRequestBytes - 2048 : VOLDEMORT_BODY_LIMIT - 1;
  const maxValueBytes = integerOption(env, 'VOLDFS_HTTP_MAX_VALUE_BYTES', {
    fallback: Math.min(DEFAULT_MAX_VALUE_BYTES[dialect], valueLimit),
    min: 1,
    max: valueLimit,
    unit: 'bytes',
  });
  const store = blankToUndefined(env.VOLDFS_HTTP_STORE) ?? DEFAULT_STORE;
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(store)) {
    throw new ConfigError(
      `VOLDFS_HTTP_STORE=${JSON.stringify(env.VOLDFS_HTTP_STORE)} is invalid: expected a Voldemort store name ` +
        `(letters, digits, '.', '_', '-'; default ${DEFAULT_STORE})`,
    );
  }
  return Object.freeze({
    dialect,
    urls: Object.freeze(parseUrls(blankToUndefined(env.VOLDFS_HTTP_URLS) ?? DEFAULT_URLS[dialect])),
    store,
    timeoutMs: integerOption(env, 'VOLDFS_HTTP_TIMEOUT_MS', { fallback: DEFAULT_TIMEOUT_MS, min: 1, max: MAX_MS, unit: 'milliseconds' }),
    concurrency: integerOption(env, 'VOLDFS_HTTP_CONCURRENCY', { fallback: DEFAULT_CONCURRENCY, min: 1, max: 1024 }),
    retryMs: integerOption(env, 'VOLDFS_HTTP_RETRY_MS', { fallback: DEFAULT_RETRY_MS, min: 0, max: MAX_MS, unit: 'milliseconds' }),
    maxValueBytes,
    maxTxnOps: integerOption(env, 'VOLDFS_HTTP_ETCD_MAX_TXN_OPS', { fallback: DEFAULT_MAX_TXN_OPS, min: 2, max: 100_000 }),
    maxRequestBytes,
  });
}

/** Parses `http://host:port,http://host:port` into base URLs without trailing slashes. */
export function parseUrls(text: string): string[] {
  const bad = (why: string) =>
    new ConfigError(
      `VOLDFS_HTTP_URLS=${JSON.stringify(text)} is invalid: ${why}; expected a comma-separated list of ` +
        'http:// or https:// base URLs, e.g. http://127.0.0.1:2379,http://127.0.0.1:22379',
    );
  const seen = new Set<string>();
  return text.split(',').map((raw) => {
    const entry = raw.trim();
    if (entry === '') throw bad('empty entry');
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw bad(`${JSON.stringify(entry)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`${JSON.stringify(entry)} is not http(s)`);
    if (url.search !== '' || url.hash !== '') throw bad(`${JSON.stringify(entry)} has a query or fragment`);
    if (url.username !== '' || url.password !== '') throw bad(`${JSON.stringify(entry)} carries credentials`);
    const base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    if (seen.has(base)) throw bad(`${base} is listed twice`);
    seen.add(base);
    return base;
  });
}

