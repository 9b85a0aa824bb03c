import { afterAll, beforeAll, describe } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';
import { describeChunkIndexContract } from './chunk-index-contract.js';
import { describeKvStoreContract } from './kv-store-contract.js';

const MAX_VALUE_BYTES = 4 * 1024 * 1024;

describe('redis, single server', () => {
  let servers: RedisServers;
  beforeAll(async () => {
    servers = await startRedis('single');
  });
  afterAll(async () => {
    await servers?.stop();
  });

  const open = () => redisBackend.create(redisBackend.parseOptions({ ...servers.env, VOLDFS_REDIS_TIMEOUT_MS: '2000' }));
  // Before the contract: its last test stops the servers.
  describeChunkIndexContract('redis (single server)', open);

  describeKvStoreContract('redis (single server)', {
    open,
    breakStore: async () => {
      for (const port of servers.ports) await servers.kill(port);
    },
    expected: { maxValueBytes: MAX_VALUE_BYTES, atomicCommit: true, scan: true, maxCommitOps: 128, domains: 1 },
  });
});

describe('redis, cluster of 3 masters and 3 replicas', () => {
  let servers: RedisServers;
  beforeAll(async () => {
    servers = await startRedis('cluster');
  });
  afterAll(async () => {
    await servers?.stop();
  });

  const open = () =>
    redisBackend.create(redisBackend.parseOptions({ ...servers.env, VOLDFS_REDIS_TIMEOUT_MS: '2000', VOLDFS_REDIS_RETRY_MS: '3000' }));
  describeChunkIndexContract('redis (cluster)', open);

  describeKvStoreContract('redis (cluster)', {
    open,
    breakStore: async () => {
      for (const port of servers.ports) await servers.kill(port);
    },
    expected: { maxValueBytes: MAX_VALUE_BYTES, atomicCommit: false, scan: true, maxCommitOps: 0, domains: 3 },
  });
});
