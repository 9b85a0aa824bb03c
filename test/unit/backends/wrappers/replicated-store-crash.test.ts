import { describe, expect, it } from 'vitest';
import { StoreUnavailable } from '../../../../src/backends/errors.js';
import { IF_ABSENT, ifVersion } from '../../../../src/backends/kv-store.js';
import { MemoryData, MemoryStore, crashAfter, type FaultHook } from '../../../../src/backends/memory/index.js';
import { suffixPlacement } from '../../../../src/backends/memory/placement.js';
import { IntentCommitStore } from '../../../../src/cas/intent-store.js';
import { ReplicatedStore } from '../../../../src/backends/wrappers/replicated-store.js';
import { silentLog } from '../../../helpers/intent-fixture.js';

const DOMAINS = 6;
const SENTINEL = 'v:alive';
const KEYS = ['v:d:1', 'v:d:2', 'v:i:3'];

/** A client of the shared six-domain data: intent layer over copies over the memory store. */
function client(data: MemoryData, hook?: FaultHook, down: ReadonlySet<number> = new Set()) {
  const placement = suffixPlacement(DOMAINS);
  const raw = new MemoryStore({
    data,
    domains: DOMAINS,
    beforeOperation: async (call) => {
      for (const key of call.keys) if (down.has(placement.domainOf(key))) throw new StoreUnavailable(`domain ${placement.domainOf(key)} down`);
      await hook?.(call);
    },
  });
  // States read once per client: the crash points are the commit's own calls and their copies.
  const copies = new ReplicatedStore(raw, { sentinelKey: SENTINEL, replicas: 3, trustMs: 3_600_000 });
  return { copies, intents: new IntentCommitStore(copies, { log: silentLog, lockTimeoutMs: 1 }) };
}

async function seed(data: MemoryData): Promise<void> {
  const { intents } = client(data);
  for (let d = 0; d < DOMAINS; d++) await intents.put(suffixPlacement(DOMAINS).keyInDomain(SENTINEL, d), Buffer.from('v'), IF_ABSENT);
  for (const key of KEYS) await intents.put(key, Buffer.from('old'));
}

/** The three values as one client reads them. */
async function values(intents: IntentCommitStore): Promise<string[]> {
  return (await intents.getMany(KEYS)).map((v) => v?.value.toString() ?? 'absent');
}

describe('ReplicatedStore under the intent layer: a crash after every store call of a commit', () => {
  it('leaves all old or all new with every server up; after recovery and resync, any two servers may go', async () => {
    const outcomes = new Set<string>();
    let points = 0;
    for (let calls = 0; ; calls++) {
      points = calls;
      const data = new MemoryData();
      await seed(data);
      const owner = client(data, crashAfter(calls));
      const read = await owner.intents.getMany(KEYS).catch(() => undefined);
      const done = read
        ? await owner.intents
            .commit(KEYS.map((key, i) => ({ key, value: Buffer.from('new'), condition: ifVersion(read[i]?.version ?? '') })))
            .catch((err: unknown) => err)
        : 'crashed before reading';
      // A fresh client, every server up: all or nothing, as without copies.
      const fresh = client(data);
      await fresh.intents.recover({ abortLive: true });
      const seen = await values(fresh.intents);
      expect(new Set(seen).size, `crash after ${calls} calls: ${seen.join(',')}`).toBe(1);
      outcomes.add(seen[0]);
      // What fsck --repair does, then two servers down: the same values from the other copies.
      for await (const key of fresh.copies.scan?.('') ?? []) await fresh.copies.resync(key);
      for (const pair of [[0, 1], [2, 3], [4, 5], [1, 4]]) {
        const degraded = client(data, undefined, new Set(pair));
        expect(await values(degraded.intents), `crash after ${calls} calls, servers ${pair.join(',')} down`).toEqual(seen);
      }
      if (done === true) break;
      expect(calls).toBeLessThan(200);
    }
    expect(outcomes).toEqual(new Set(['old', 'new']));
    // Copy writes are store calls of their own: crashes fell between a primary write and its copies.
    expect(points).toBeGreaterThan(3 * KEYS.length * 3);
  });
});
