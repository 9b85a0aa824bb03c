import { pino } from 'pino';
import { MemoryData } from '../../src/backends/memory/index.js';
import { IF_ABSENT, ifVersion, type CommitCheck, type CommitOp, type KvStore, type Version } from '../../src/backends/kv-store.js';
import { InjectedCrash, type FaultHook, type FaultPoint } from '../../src/cas/fault-points.js';
import { TAG_ENVELOPE } from '../../src/cas/intent-codec.js';
import { IntentCommitStore, type IntentCommitOptions } from '../../src/cas/intent-store.js';
import { NoCommitStore, type NoCommitStoreOptions } from './no-commit-store.js';

export const NAMESPACE = '_cas/';
export const LOCK_TIMEOUT_MS = 10_000;
export const silentLog = pino({ level: 'silent' });

/** One clock for wall and monotonic time, moved by hand (or by fake sleeps). */
export class FakeClock {
  t = 1_700_000_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Records of one shared store and a way to open clients ("processes") on it. */
export class SharedStore {
  readonly data = new MemoryData();
  readonly clock = new FakeClock();

  client(options: IntentCommitOptions = {}, store: NoCommitStoreOptions = {}): IntentCommitStore {
    return new IntentCommitStore(new NoCommitStore({ data: this.data, ...store }), {
      lockTimeoutMs: LOCK_TIMEOUT_MS,
      now: this.clock.now,
      monotonicNow: this.clock.now,
      // Waiting for a lock moves time on, so abandoned locks time out without real waits.
      sleep: async (ms) => {
        this.clock.advance(ms);
        await new Promise((resolve) => setImmediate(resolve));
      },
      log: silentLog,
      ...options,
    });
  }

  /** Intent keys and keys holding a lock envelope, straight from the records. */
  leftovers(): { intents: string[]; envelopes: string[] } {
    const intents: string[] = [];
    const envelopes: string[] = [];
    for (const key of this.data.keys()) {
      if (key.startsWith(NAMESPACE)) intents.push(key);
      else if (this.data.get(key)?.value[0] === TAG_ENVELOPE) envelopes.push(key);
    }
    return { intents, envelopes };
  }
}

/** A hook that lets `calls` store calls through, then crashes; `trace` gets the points passed. */
export function crashAt(calls: number, trace: FaultPoint[]): FaultHook {
  return (point, key) => {
    if (trace.length >= calls) throw new InjectedCrash(point, key);
    trace.push(point);
  };
}

/** Values of `keys` as strings (undefined when absent). */
export async function snapshot(store: KvStore, keys: readonly string[]): Promise<Record<string, string | undefined>> {
  const got = await store.getMany(keys);
  return Object.fromEntries(keys.map((key, i) => [key, got[i]?.value.toString()]));
}

/**
 * A rename of `a` from directory `d:src` over an existing name in `d:dst`: both directories
 * change, the replaced inode `i:old` is deleted, a new record `e:new` is created ifAbsent,
 * the moved inode `i:moved` is checked unchanged and `d:guard` is checked absent.
 */
export const RENAME = {
  keys: ['d:src', 'd:dst', 'i:old', 'e:new', 'i:moved', 'd:guard'],
  before: {
    'd:src': 'src{a}',
    'd:dst': 'dst{b->old}',
    'i:old': 'old-inode',
    'e:new': undefined,
    'i:moved': 'moved-inode',
    'd:guard': undefined,
  } as Record<string, string | undefined>,
  after: {
    'd:src': 'src{}',
    'd:dst': 'dst{b->moved}',
    'i:old': undefined,
    'e:new': 'new',
    'i:moved': 'moved-inode',
    'd:guard': undefined,
  } as Record<string, string | undefined>,

  /** Writes the "before" state through `client`; returns the versions. */
  async seed(client: KvStore): Promise<Record<string, Version>> {
    const versions: Record<string, Version> = {};
    for (const [key, value] of Object.entries(RENAME.before)) {
      if (value === undefined) continue;
      const put = await client.put(key, Buffer.from(value), IF_ABSENT);
      if (!put.ok) throw new Error(`seeding ${key} failed`);
      versions[key] = put.version;
    }
    return versions;
  },

  commit(versions: Record<string, Version>): { ops: CommitOp[]; checks: CommitCheck[] } {
    return {
      ops: [
        { key: 'd:src', value: Buffer.from('src{}'), condition: ifVersion(versions['d:src']) },
        { key: 'd:dst', value: Buffer.from('dst{b->moved}'), condition: ifVersion(versions['d:dst']) },
        { key: 'i:old', value: null, condition: ifVersion(versions['i:old']) },
        { key: 'e:new', value: Buffer.from('new'), condition: IF_ABSENT },
      ],
      checks: [
        { key: 'i:moved', version: versions['i:moved'] },
        { key: 'd:guard', version: null },
      ],
    };
  },
};
