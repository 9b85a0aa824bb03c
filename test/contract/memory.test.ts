import { MemoryStore } from '../../src/backends/memory/index.js';
import { describeChunkIndexContract } from './chunk-index-contract.js';
import { describeKvStoreContract } from './kv-store-contract.js';

describeChunkIndexContract('memory', async () => new MemoryStore());

describeKvStoreContract('memory', {
  open: async () => new MemoryStore(),
  expected: { maxValueBytes: 1024 * 1024, atomicCommit: true, scan: true, maxCommitOps: 1024, domains: 1, valueInto: true },
});

describeKvStoreContract('memory, 64 KiB values, 4 domains, slow calls', {
  open: async () =>
    new MemoryStore({
      maxValueBytes: 64 * 1024,
      domains: 4,
      // Random delays reorder concurrent calls, as a network would.
      beforeOperation: () => new Promise((resolve) => setTimeout(resolve, Math.random() * 3)),
    }),
  expected: { maxValueBytes: 64 * 1024, atomicCommit: true, scan: true, domains: 4, valueInto: true },
});
