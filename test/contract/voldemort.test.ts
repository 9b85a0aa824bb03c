/**
 * The contract on the Voldemort dialect, against the in-memory Voldemort REST test server
 * (test/helpers/voldemort-rest-server.ts): Voldemort itself cannot be installed here.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { httpBackend } from '../../src/backends/kv-http/index.js';
import { VoldemortRestServer } from '../helpers/voldemort-rest-server.js';
import { describeChunkIndexContract } from './chunk-index-contract.js';
import { describeKvStoreContract } from './kv-store-contract.js';

describe('voldemort REST coordinator (test server)', () => {
  let server: VoldemortRestServer;
  beforeAll(async () => {
    server = await VoldemortRestServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const open = () =>
    httpBackend.create(
      httpBackend.parseOptions({
        VOLDFS_HTTP_DIALECT: 'voldemort',
        VOLDFS_HTTP_URLS: server.url,
        VOLDFS_HTTP_TIMEOUT_MS: '3000',
        VOLDFS_HTTP_RETRY_MS: '1000',
      }),
    );
  // Before the contract: its last test stops the server.
  describeChunkIndexContract('http/voldemort (test server)', open);

  describeKvStoreContract('http/voldemort (test server)', {
    open,
    breakStore: () => server.stop(),
    expected: { maxValueBytes: 1024 * 1024 - 4096, atomicCommit: false, scan: false, domains: 1 },
  });
});
