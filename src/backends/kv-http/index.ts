import type { BackendDefinition } from '../backend.js';
import type { KvStore } from '../kv-store.js';
import { EtcdStore } from './etcd-store.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TXN_OPS,
  DEFAULT_MAX_VALUE_BYTES,
  DEFAULT_RETRY_MS,
  DEFAULT_STORE,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_URLS,
  parseHttpOptions,
  type HttpOptions,
} from './options.js';
import { VoldemortStore } from './voldemort-store.js';

export { EtcdStore } from './etcd-store.js';
export { VoldemortStore } from './voldemort-store.js';
export { parseHttpOptions, type HttpDialect, type HttpOptions } from './options.js';

/**
 * `VOLDFS_DB=http`: a key-value service over HTTP, in one of two dialects. `etcd`: the etcd v3
 * JSON gateway (atomic multi-key transactions). `voldemort`: the Voldemort REST coordinator
 * (vector clocks, no multi-key transactions, no key listing).
 */
export const httpBackend: BackendDefinition<HttpOptions> = {
  name: 'http',
  summary: 'etcd v3 JSON gateway or Voldemort REST coordinator over HTTP (VOLDFS_HTTP_DIALECT)',
  variables: [
    { name: 'VOLDFS_HTTP_DIALECT', description: 'etcd or voldemort (required)' },
    {
      name: 'VOLDFS_HTTP_URLS',
      description: 'comma-separated base URLs of equivalent endpoints; a request that cannot connect moves to the next',
      default: `${DEFAULT_URLS.etcd} (etcd), ${DEFAULT_URLS.voldemort} (voldemort)`,
    },
    { name: 'VOLDFS_HTTP_STORE', description: 'voldemort: the store name', default: DEFAULT_STORE },
    {
      name: 'VOLDFS_HTTP_TIMEOUT_MS',
      description: 'milliseconds one HTTP request (body included) may take',
      default: String(DEFAULT_TIMEOUT_MS),
    },
    {
      name: 'VOLDFS_HTTP_RETRY_MS',
      description: 'milliseconds a request keeps retrying while no endpoint can serve it (down, no leader)',
      default: String(DEFAULT_RETRY_MS),
    },
    { name: 'VOLDFS_HTTP_CONCURRENCY', description: 'most requests in flight at once', default: String(DEFAULT_CONCURRENCY) },
    {
      name: 'VOLDFS_HTTP_MAX_VALUE_BYTES',
      description: 'largest value of one record, in bytes',
      default: `${DEFAULT_MAX_VALUE_BYTES.etcd} (etcd), ${DEFAULT_MAX_VALUE_BYTES.voldemort} (voldemort)`,
    },
    {
      name: 'VOLDFS_HTTP_ETCD_MAX_TXN_OPS',
      description: "etcd: the server's --max-txn-ops, the most ops and checks per commit",
      default: String(DEFAULT_MAX_TXN_OPS),
    },
    {
      name: 'VOLDFS_HTTP_ETCD_MAX_REQUEST_BYTES',
      description: "etcd: the server's --max-request-bytes",
      default: String(DEFAULT_MAX_REQUEST_BYTES),
    },
  ],
  parseOptions: parseHttpOptions,
  create: (options): Promise<KvStore> =>
    options.dialect === 'etcd' ? EtcdStore.connect(options) : VoldemortStore.connect(options),
};
