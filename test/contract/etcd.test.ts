import { afterAll, beforeAll, describe } from 'vitest';
import { httpBackend } from '../../src/backends/kv-http/index.js';
import { startEtcd, type EtcdServers } from '../helpers/etcd-servers.js';
import { describeChunkIndexContract } from './chunk-index-contract.js';
import { describeKvStoreContract } from './kv-store-contract.js';

const expected = { maxValueBytes: 1024 * 1024, atomicCommit: true, scan: true, maxCommitOps: 128, domains: 1 };

// Three members only: one member runs the same client code, minus the failover between members.
describe('etcd, three members', () => {
  let servers: EtcdServers;
  beforeAll(async () => {
    servers = await startEtcd('cluster');
  });
  afterAll(async () => {
    await servers?.stop();
  });

  const open = () =>
    httpBackend.create(httpBackend.parseOptions({ ...servers.env, VOLDFS_HTTP_TIMEOUT_MS: '3000', VOLDFS_HTTP_RETRY_MS: '1000' }));
  // Before the contract: its last test stops the servers.
  describeChunkIndexContract('http/etcd (3 members)', open);

  describeKvStoreContract('http/etcd (3 members)', {
    open,
    breakStore: async () => {
      for (let i = 0; i < servers.urls.length; i++) await servers.kill(i);
    },
    expected,
  });
});
