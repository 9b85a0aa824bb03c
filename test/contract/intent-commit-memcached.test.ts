/**
 * Intent commits on real memcached servers: the KvStore contract through the wrapper, and a
 * crash of the committing client at every point, read back by other clients and recovered
 * by fsck (whose scan is memcached's best-effort metadump).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import type { KvStore } from '../../src/backends/kv-store.js';
import { InjectedCrash, type FaultPoint } from '../../src/cas/fault-points.js';
import { ENVELOPE_OVERHEAD, TAG_ENVELOPE } from '../../src/cas/intent-codec.js';
import { IntentCommitStore, type IntentCommitOptions } from '../../src/cas/intent-store.js';
import { FakeClock, LOCK_TIMEOUT_MS, NAMESPACE, RENAME, crashAt, silentLog, snapshot } from '../helpers/intent-fixture.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { describeKvStoreContract } from './kv-store-contract.js';

/** As in memcached.test.ts: -I 1m minus the longest key and item overhead. */
const MAX_VALUE_BYTES = 1_048_576 - 250 - 59;
const TIMEOUT_MS = 2000;
const SERVERS = 3;

describe('intent commits on memcached', () => {
  let pool: MemcachedPool | undefined;

  beforeAll(async () => {
    pool = await startMemcachedServers(SERVERS, { memoryMb: 64 });
  });
  afterAll(async () => {
    await pool?.stop();
  });

  const openRaw = (): Promise<KvStore> => {
    if (!pool) throw new Error('memcached servers did not start');
    return memcachedBackend.create(
      memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_MC_TIMEOUT_MS: String(TIMEOUT_MS) }),
    );
  };

  describe('crash of the committing client at every point', () => {
    const clock = new FakeClock();
    const open = async (options: IntentCommitOptions = {}): Promise<IntentCommitStore> =>
      new IntentCommitStore(await openRaw(), {
        lockTimeoutMs: LOCK_TIMEOUT_MS,
        now: clock.now,
        monotonicNow: clock.now,
        log: silentLog,
        ...options,
      });

    it('every other client sees all or nothing, and recover() leaves no lock or intent', async () => {
      for (let k = 0; ; k++) {
        // Fresh keys per round: the servers are shared by every round.
        const prefix = `ic${Date.now().toString(36)}-${k}:`;
        const keys = RENAME.keys.map((key) => prefix + key);
        const rename = (key: string): string => prefix + key;
        const setup = await open();
        const raw = await openRaw();
        try {
          const versions = await RENAME.seed(prefixed(setup, prefix));
          const { ops, checks } = RENAME.commit(versions);
          const trace: FaultPoint[] = [];
          const owner = await open({ faults: crashAt(k, trace) });
          const outcome = await owner
            .commit(
              ops.map((op) => ({ ...op, key: rename(op.key) })),
              checks.map((c) => ({ ...c, key: rename(c.key) })),
            )
            .then(
              (ok) => ok,
              (err: unknown) => err,
            );
          await owner.close();
          const committed = trace.includes('intent.commit');
          const want = Object.fromEntries(
            Object.entries(committed ? RENAME.after : RENAME.before).map(([key, v]) => [rename(key), v]),
          );
          expect(await snapshot(setup, keys), `reader, crash after ${k} calls`).toEqual(want);
          clock.advance(LOCK_TIMEOUT_MS + 1);
          await setup.recover({ envelopePrefix: prefix });
          const left = await raw.getMany(keys);
          expect(left.filter((g) => g?.value[0] === TAG_ENVELOPE).length, `envelopes after ${k}`).toBe(0);
          const intents: string[] = [];
          for await (const key of raw.scan?.(NAMESPACE) ?? []) intents.push(key);
          expect(intents, `intents after ${k}`).toEqual([]);
          expect(await snapshot(setup, keys)).toEqual(want);
          if (outcome === true) break;
          expect(outcome).toBeInstanceOf(InjectedCrash);
        } finally {
          await setup.close();
          await raw.close();
        }
      }
    });
  });

  describeKvStoreContract('intent commits over memcached, pool of three', {
    open: async () => new IntentCommitStore(await openRaw(), { log: silentLog }),
    breakStore: async () => {
      await Promise.all(pool?.servers.map((s) => s.stop('SIGKILL')) ?? []);
    },
    expected: {
      maxValueBytes: Math.floor((MAX_VALUE_BYTES - ENVELOPE_OVERHEAD) / 2),
      atomicCommit: true,
      scan: true,
      domains: SERVERS,
    },
    unavailableWithinMs: TIMEOUT_MS,
  });
});

/** A view of `store` whose keys all get `prefix`, for RENAME.seed. */
function prefixed(store: KvStore, prefix: string): KvStore {
  return {
    name: store.name,
    capabilities: store.capabilities,
    get: (key) => store.get(prefix + key),
    getMany: (keys) => store.getMany(keys.map((k) => prefix + k)),
    put: (key, value, condition) => store.put(prefix + key, value, condition),
    delete: (key, condition) => store.delete(prefix + key, condition),
    close: () => Promise.resolve(),
  };
}
