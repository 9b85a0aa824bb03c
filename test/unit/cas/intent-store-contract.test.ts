import { MEMORY_DEFAULT_MAX_VALUE_BYTES } from '../../../src/backends/memory/index.js';
import { ENVELOPE_OVERHEAD } from '../../../src/cas/intent-codec.js';
import { IntentCommitStore } from '../../../src/cas/intent-store.js';
import { describeKvStoreContract } from '../../contract/kv-store-contract.js';
import { silentLog } from '../../helpers/intent-fixture.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';

// The wrapper is a KvStore with commit: the same suite every backend passes must pass over a
// store that has only single-key CAS.
const expected = {
  maxValueBytes: Math.floor((MEMORY_DEFAULT_MAX_VALUE_BYTES - ENVELOPE_OVERHEAD) / 2),
  atomicCommit: true,
  scan: true,
  maxCommitOps: 128,
  domains: 1,
};

describeKvStoreContract('intent commits over single-key CAS', {
  open: async () => new IntentCommitStore(new NoCommitStore(), { log: silentLog }),
  expected,
});

describeKvStoreContract('intent commits over single-key CAS, slow calls, spurious conflicts', {
  open: async () =>
    new IntentCommitStore(
      new NoCommitStore({
        spuriousConflicts: 0.05,
        beforeOperation: () => new Promise((resolve) => setTimeout(resolve, Math.random() * 2)),
      }),
      { log: silentLog },
    ),
  expected,
  spuriousConflicts: true,
});
