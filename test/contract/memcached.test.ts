import { afterAll, beforeAll, describe } from 'vitest';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import type { KvStore } from '../../src/backends/kv-store.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { describeChunkIndexContract } from './chunk-index-contract.js';
import { describeKvStoreContract } from './kv-store-contract.js';

/** -I 1m: 1048576 bytes per item, minus 250 for the longest key and 59 of item overhead. */
const MAX_VALUE_BYTES = 1_048_576 - 250 - 59;
const TIMEOUT_MS = 2000;

function contractOnPool(label: string, servers: number): void {
  describe(label, () => {
    let pool: MemcachedPool | undefined;

    beforeAll(async () => {
      pool = await startMemcachedServers(servers, { memoryMb: 64 });
    });
    afterAll(async () => {
      await pool?.stop();
    });

    const open = (): Promise<KvStore> => {
      if (!pool) throw new Error('memcached servers did not start');
      return memcachedBackend.create(
        memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_MC_TIMEOUT_MS: String(TIMEOUT_MS) }),
      );
    };

    // Before the contract: its last test stops the servers.
    describeChunkIndexContract(label, open);

    describeKvStoreContract(label, {
      open,
      // Every server goes, so that every key's server is gone.
      breakStore: async () => {
        await Promise.all(pool?.servers.map((s) => s.stop('SIGKILL')) ?? []);
      },
      expected: { maxValueBytes: MAX_VALUE_BYTES, atomicCommit: false, scan: true, domains: servers },
      unavailableWithinMs: TIMEOUT_MS,
    });
  });
}

// One pool of three: a single server runs the same client code with every key in one place.
contractOnPool('memcached, pool of three', 3);
