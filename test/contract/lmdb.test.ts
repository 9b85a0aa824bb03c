import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { LMDB_MAX_VALUE_BYTES, LmdbStore } from '../../src/backends/lmdb/index.js';
import { describeChunkIndexContract } from './chunk-index-contract.js';
import { describeKvStoreContract } from './kv-store-contract.js';

let dir: string;
let opened = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'voldfs-lmdb-contract-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeChunkIndexContract('lmdb', () => LmdbStore.open({ path: join(dir, 'chunk-index') }));

describeKvStoreContract('lmdb, a fresh store per test', {
  open: () => LmdbStore.open({ path: join(dir, `store-${opened++}`) }),
  expected: { maxValueBytes: LMDB_MAX_VALUE_BYTES, atomicCommit: true, scan: true, maxCommitOps: 1024, domains: 1, valueInto: true },
});
