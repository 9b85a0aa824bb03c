/**
 * The contract on the Voldemort dialect, against the in-memory Voldemort REST test server
 * (test/helpers/voldemort-rest-server.ts): Voldemort itself cannot be installed here.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { httpBackend } from '../../src/backends/kv-http/index.js';
import { VoldemortRestServer } from '../helpers/voldemort-rest-server.js';
import { describeKvStoreContract } from './kv-store-contract.js';

describe('voldemort REST coordinator (test server)', () => {
  let server: VoldemortRestServer;
  beforeAll(async () => {
    server = await VoldemortRestServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  describeKvStoreContract('http/voldemort (test server)', {
    open: () =>
      httpBackend.create(
        httpBackend.parseOptions({
          VOLDFS_HTTP_DIALECT: 'voldemort',
          VOLDFS_HTTP_URLS: server.url,
          VOLDFS_HTTP_TIMEOUT_MS: '3000',
          VOLDFS_HTTP_RETRY_MS: '1000',
        }),
      ),
    breakStore: () => server.stop(),
    expected: { maxValueBytes: 1024 * 1024 - 4096, atomicCommit: false, scan: false, domains: 1 },
  });
});
