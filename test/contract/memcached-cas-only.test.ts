/**
 * The KvStore contract on memcached-protocol servers that lack add, conditional delete, stats
 * and metadump: a real kumofs cluster (its binary and its text gateway port, nothing set but
 * VOLDFS_MC_SERVERS), memcached on the text protocol, and twemproxy in front of three
 * memcached servers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvStore } from '../../src/backends/kv-store.js';
import { CasOnlyStore, memcachedBackend } from '../../src/backends/memcached/index.js';
import { describeOnKumofs } from '../helpers/describe-on-kumofs.js';
import { KumofsStandIn } from '../helpers/kumofs-stand-in.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { Twemproxy } from '../helpers/twemproxy.js';
import { describeKvStoreContract } from './kv-store-contract.js';

/** 1 MiB items (VOLDFS_MC_ITEM_SIZE default), minus the longest key, item overhead and the frame (9 bytes). */
const MAX_VALUE_BYTES = 1_048_576 - 250 - 59 - 9;
const TIMEOUT_MS = 4000;
/** kumofs's binary port answers GET with the value length modulo 65536: 65535 bytes, less the frame. */
const KUMOFS_BINARY_MAX_VALUE_BYTES = 65_526;

function open(servers: () => string | undefined, env: Record<string, string> = {}): () => Promise<KvStore> {
  return async () => {
    const value = servers();
    if (!value) throw new Error('servers did not start');
    const store = await memcachedBackend.create(
      memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: value, VOLDFS_MC_TIMEOUT_MS: String(TIMEOUT_MS), ...env }),
    );
    expect(store).toBeInstanceOf(CasOnlyStore);
    return store;
  };
}

describeOnKumofs('memcached-cas-only.test.ts', 'kumofs cluster of three servers', (cluster) => {
  for (const port of ['binary', 'text'] as const) {
    describeKvStoreContract(`kumofs gateway, ${port} port`, {
      open: open(() => cluster()[port]),
      expected: { maxValueBytes: port === 'binary' ? KUMOFS_BINARY_MAX_VALUE_BYTES : MAX_VALUE_BYTES, atomicCommit: false, scan: true, domains: 1 },
      spuriousConflicts: true,
    });
  }

  it('refuses VOLDFS_MC_PROTOCOL=text on the binary port, naming what to set', async () => {
    await expect(open(() => cluster().binary, { VOLDFS_MC_PROTOCOL: 'text' })()).rejects.toThrow(/VOLDFS_MC_PROTOCOL=binary or leave it unset/);
  });
  it('refuses VOLDFS_MC_PROTOCOL=binary on the text port, naming what to set', async () => {
    await expect(open(() => cluster().text, { VOLDFS_MC_PROTOCOL: 'binary' })()).rejects.toThrow(/set VOLDFS_MC_PROTOCOL=text/);
  });
});

describe('kumofs stand-in (test/helpers/kumofs-stand-in.ts, written from PROTOCOL.md)', () => {
  let standIn: KumofsStandIn | undefined;
  beforeAll(async () => {
    standIn = await KumofsStandIn.start();
  });
  afterAll(async () => {
    await standIn?.stop();
  });
  for (const port of ['binary', 'text'] as const) {
    describeKvStoreContract(`kumofs stand-in, ${port} port`, {
      open: open(() => standIn?.[port]),
      expected: { maxValueBytes: port === 'binary' ? KUMOFS_BINARY_MAX_VALUE_BYTES : MAX_VALUE_BYTES, atomicCommit: false, scan: true, domains: 1 },
    });
  }
});

describe('memcached, text protocol (VOLDFS_MC_PROTOCOL=text)', () => {
  let pool: MemcachedPool | undefined;
  beforeAll(async () => {
    pool = await startMemcachedServers(3, { memoryMb: 64 });
  });
  afterAll(async () => {
    await pool?.stop();
  });
  describeKvStoreContract('memcached text protocol, pool of three', {
    open: open(() => pool?.serversValue, { VOLDFS_MC_PROTOCOL: 'text' }),
    expected: { maxValueBytes: MAX_VALUE_BYTES, atomicCommit: false, scan: true, domains: 3 },
    breakStore: async () => {
      await Promise.all(pool?.servers.map((s) => s.stop('SIGKILL')) ?? []);
    },
    unavailableWithinMs: TIMEOUT_MS,
  });
});

describe('twemproxy in front of three memcached servers', () => {
  let proxy: Twemproxy | undefined;
  beforeAll(async () => {
    proxy = await Twemproxy.start(3);
  });
  afterAll(async () => {
    await proxy?.stop();
  });
  describeKvStoreContract('twemproxy', {
    open: open(() => proxy?.address),
    expected: { maxValueBytes: MAX_VALUE_BYTES, atomicCommit: false, scan: true, domains: 1 },
  });
});
