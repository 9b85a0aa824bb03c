import { describe, expect, it } from 'vitest';
import { StoreUnavailable } from '../../../src/backends/errors.js';
import { crashAfter, type OperationCall } from '../../../src/backends/memory/index.js';
import { UNCONDITIONAL, ifVersion, type Version } from '../../../src/backends/kv-store.js';
import { InjectedCrash, type FaultPoint } from '../../../src/cas/fault-points.js';
import type { IntentCommitStore } from '../../../src/cas/intent-store.js';
import { LOCK_TIMEOUT_MS, RENAME, SharedStore, crashAt, snapshot } from '../../helpers/intent-fixture.js';

/** The owner's store calls for RENAME with no contention, in order. */
const FULL_TRACE: FaultPoint[] = [
  'precheck.read',
  'intent.create',
  // Sorted lock order: d:dst, d:guard (checked absent), d:src, e:new, i:old.
  ...(Array.from({ length: 5 }, () => 'lock.write') as FaultPoint[]),
  'check.read',
  'intent.commit',
  ...(Array.from({ length: 5 }, () => 'apply.write') as FaultPoint[]),
  'intent.delete',
];

async function setUp(): Promise<{ shared: SharedStore; versions: Record<string, Version> }> {
  const shared = new SharedStore();
  const versions = await RENAME.seed(shared.client());
  return { shared, versions };
}

/** Runs RENAME with the owner crashing after `k` store calls; what it passed and returned. */
async function crashOwner(
  shared: SharedStore,
  versions: Record<string, Version>,
  k: number,
): Promise<{ trace: FaultPoint[]; outcome: unknown }> {
  const trace: FaultPoint[] = [];
  const owner = shared.client({ faults: crashAt(k, trace) });
  const { ops, checks } = RENAME.commit(versions);
  const outcome = await owner.commit(ops, checks).then(
    (ok) => ok,
    (err: unknown) => err,
  );
  return { trace, outcome };
}

/** A second client's read-modify-write of both directories, itself atomic or not at all. */
async function followUp(client: IntentCommitStore): Promise<boolean> {
  const [src, dst, created] = await client.getMany(['d:src', 'd:dst', 'e:new']);
  if (!src || !dst) throw new Error('directories vanished');
  return client.commit(
    [
      { key: 'd:src', value: Buffer.from(`${src.value.toString()}+`), condition: ifVersion(src.version) },
      { key: 'd:dst', value: Buffer.from(`${dst.value.toString()}+`), condition: ifVersion(dst.version) },
    ],
    [{ key: 'e:new', version: created?.version ?? null }],
  );
}

describe('IntentCommitStore: a crash at every point of a commit', () => {
  it('makes exactly the expected store calls when nothing goes wrong', async () => {
    const { shared, versions } = await setUp();
    const { trace, outcome } = await crashOwner(shared, versions, Number.POSITIVE_INFINITY);
    expect(outcome).toBe(true);
    expect(trace).toEqual(FULL_TRACE);
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
    expect(await snapshot(shared.client(), RENAME.keys)).toEqual(RENAME.after);
  });

  it('names every call it makes to the store: hook calls equal store calls', async () => {
    const { shared, versions } = await setUp();
    const storeCalls: OperationCall[] = [];
    const trace: FaultPoint[] = [];
    const traced = shared.client({ faults: crashAt(Infinity, trace) }, { beforeOperation: (c) => void storeCalls.push(c) });
    const { ops, checks } = RENAME.commit(versions);
    expect(await traced.commit(ops, checks)).toBe(true);
    expect(storeCalls.length).toBe(trace.length);
  });

  it('shows all or nothing to another client right away, and nothing is left after recover()', async () => {
    const crashedAt = new Set<FaultPoint>();
    for (let k = 0; k < FULL_TRACE.length; k++) {
      const { shared, versions } = await setUp();
      const { trace, outcome } = await crashOwner(shared, versions, k);
      expect(outcome, `k=${k}`).toBeInstanceOf(InjectedCrash);
      crashedAt.add((outcome as InjectedCrash).point);
      const committed = trace.includes('intent.commit');
      const expected = committed ? RENAME.after : RENAME.before;

      // Another client at once: the owner's lock is young, so it counts as live.
      expect(await snapshot(shared.client(), RENAME.keys), `reader after crash at ${k}`).toEqual(expected);

      // fsck once the lock timed out.
      shared.clock.advance(LOCK_TIMEOUT_MS + 1);
      const fsck = shared.client();
      const report = await fsck.recover();
      expect(report.listed).toBe(true);
      expect(shared.leftovers(), `leftovers after crash at ${k}`).toEqual({ intents: [], envelopes: [] });
      expect(await snapshot(fsck, RENAME.keys), `after recover, crash at ${k}`).toEqual(expected);
      // A commit that reached the commit point is reported as rolled forward (if anything was left).
      if (committed) expect(report.rolledBack).toEqual([]);
      else expect(report.rolledForward).toEqual([]);
    }
    expect([...crashedAt].sort()).toEqual([...new Set(FULL_TRACE)].sort());
  });

  it('also holds when the store itself dies mid-call (every underlying call)', async () => {
    for (let n = 0; n < FULL_TRACE.length; n++) {
      const { shared, versions } = await setUp();
      const trace: FaultPoint[] = [];
      const owner = shared.client({ faults: crashAt(Infinity, trace) }, { beforeOperation: crashAfter(n) });
      const { ops, checks } = RENAME.commit(versions);
      const outcome = await owner.commit(ops, checks).then(
        (ok) => ok,
        (err: unknown) => err,
      );
      const committed = trace.slice(0, n).includes('intent.commit');
      // Before the commit point the wrapper tries to clean up, every later call fails too, and it
      // rethrows the first error; past it the commit is durable and reported as done.
      if (committed) expect(outcome, `n=${n}`).toBe(true);
      else expect(outcome, `n=${n}`).toBeInstanceOf(StoreUnavailable);
      const expected = committed ? RENAME.after : RENAME.before;
      expect(await snapshot(shared.client(), RENAME.keys), `n=${n}`).toEqual(expected);
      shared.clock.advance(LOCK_TIMEOUT_MS + 1);
      await shared.client().recover();
      expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
      expect(await snapshot(shared.client(), RENAME.keys)).toEqual(expected);
    }
  });

  it('cleans up after a transient store error at any point, without waiting for the timeout', async () => {
    for (let k = 0; k < FULL_TRACE.length; k++) {
      const { shared, versions } = await setUp();
      let calls = 0;
      const owner = shared.client({
        faults: () => {
          if (calls++ === k) throw new StoreUnavailable('connection reset');
        },
      });
      const { ops, checks } = RENAME.commit(versions);
      const outcome = await owner.commit(ops, checks).then(
        (ok) => ok,
        (err: unknown) => err,
      );
      // The failing call never reached the store: a thrown error means rolled back.
      const committed = FULL_TRACE.indexOf('intent.commit') < k;
      if (committed) expect(outcome, `k=${k}`).toBe(true);
      else expect(outcome, `k=${k}`).toBeInstanceOf(StoreUnavailable);
      expect(await snapshot(shared.client(), RENAME.keys)).toEqual(committed ? RENAME.after : RENAME.before);
      // No lock is left pending: a young (no timeout) recover finds nothing to wait for.
      const report = await shared.client().recover();
      expect(report.live).toEqual([]);
      expect(shared.leftovers(), `k=${k}`).toEqual({ intents: [], envelopes: [] });
    }
  });
});

describe('IntentCommitStore: a second client crashing while it settles a dead commit', () => {
  /** Runs `stage` at every crash point k2, after the owner crashed at every k1. */
  async function everyPair(
    stage: (client: IntentCommitStore) => Promise<unknown>,
    check: (ctx: { committed: boolean; stageTrace: FaultPoint[]; stageOutcome: unknown; shared: SharedStore }) => Promise<void>,
  ): Promise<{ pairs: number; points: Set<FaultPoint> }> {
    let pairs = 0;
    const points = new Set<FaultPoint>();
    for (let k1 = 0; k1 < FULL_TRACE.length; k1++) {
      for (let k2 = 0; ; k2++) {
        const { shared, versions } = await setUp();
        const { trace } = await crashOwner(shared, versions, k1);
        shared.clock.advance(LOCK_TIMEOUT_MS + 1);
        const stageTrace: FaultPoint[] = [];
        const stageOutcome = await stage(shared.client({ faults: crashAt(k2, stageTrace) })).then(
          (v) => v,
          (err: unknown) => err,
        );
        stageTrace.forEach((p) => points.add(p));
        await check({ committed: trace.includes('intent.commit'), stageTrace, stageOutcome, shared });
        // Then fsck, once the second client's locks timed out too: nothing may be left.
        shared.clock.advance(LOCK_TIMEOUT_MS + 1);
        await shared.client().recover();
        expect(shared.leftovers(), `k1=${k1} k2=${k2}`).toEqual({ intents: [], envelopes: [] });
        pairs++;
        if (!(stageOutcome instanceof InjectedCrash)) break;
      }
    }
    return { pairs, points };
  }

  it('recover() crashing anywhere: the next recover() still ends all-or-nothing', async () => {
    const { pairs, points } = await everyPair(
      (client) => client.recover(),
      async ({ committed, shared }) => {
        const expected = committed ? RENAME.after : RENAME.before;
        expect(await snapshot(shared.client(), RENAME.keys)).toEqual(expected);
      },
    );
    expect(pairs).toBeGreaterThan(FULL_TRACE.length * 2);
    for (const p of ['scan', 'resolve.intent.read', 'resolve.abort', 'finish.read', 'finish.write', 'finish.delete'] as const) {
      expect(points.has(p), p).toBe(true);
    }
  });

  it('a conflicting commit crashing anywhere: both commits stay all-or-nothing', async () => {
    const { points } = await everyPair(followUp, async ({ committed, stageTrace, stageOutcome, shared }) => {
      const base = committed ? RENAME.after : RENAME.before;
      const second = stageOutcome === true || (stageOutcome instanceof InjectedCrash && stageTrace.includes('intent.commit'));
      if (!(stageOutcome instanceof InjectedCrash)) expect(stageOutcome).toBe(true);
      const suffix = second ? '+' : '';
      expect(await snapshot(shared.client(), RENAME.keys)).toEqual({
        ...base,
        'd:src': `${base['d:src']}${suffix}`,
        'd:dst': `${base['d:dst']}${suffix}`,
      });
    });
    for (const p of ['getMany', 'resolve.intent.read', 'resolve.abort', 'precheck.read', 'lock.write', 'intent.commit'] as const) {
      expect(points.has(p), p).toBe(true);
    }
  });

  it('a blind commit meeting the dead locks in its lock phase, crashing anywhere', async () => {
    const blind = (client: IntentCommitStore): Promise<boolean> =>
      client.commit([
        { key: 'd:src', value: Buffer.from('blind'), condition: UNCONDITIONAL },
        { key: 'i:old', value: null, condition: UNCONDITIONAL },
      ]);
    const { points } = await everyPair(blind, async ({ committed, stageTrace, stageOutcome, shared }) => {
      const base = committed ? RENAME.after : RENAME.before;
      if (!(stageOutcome instanceof InjectedCrash)) expect(stageOutcome).toBe(true);
      const second = stageOutcome === true || stageTrace.includes('intent.commit');
      const want = second ? { ...base, 'd:src': 'blind', 'i:old': undefined } : base;
      expect(await snapshot(shared.client(), RENAME.keys)).toEqual(want);
    });
    for (const p of ['precheck.read', 'resolve.intent.read', 'resolve.abort', 'resolve.write', 'lock.read', 'lock.write'] as const) {
      expect(points.has(p), p).toBe(true);
    }
  });

  it('a plain get crashing while it resolves a lock: readers still see all-or-nothing', async () => {
    await everyPair(
      (client) => client.get('d:dst'),
      async ({ committed, stageOutcome, shared }) => {
        const expected = committed ? RENAME.after : RENAME.before;
        if (!(stageOutcome instanceof InjectedCrash)) {
          expect((stageOutcome as { value: Buffer } | undefined)?.value.toString()).toBe(expected['d:dst']);
        }
        expect(await snapshot(shared.client(), RENAME.keys)).toEqual(expected);
      },
    );
  });
});
