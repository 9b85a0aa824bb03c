import { describe, expect, it } from 'vitest';
import { IntegrityError, ValueTooLarge } from '../../../src/backends/errors.js';
import { IF_ABSENT, UNCONDITIONAL, ifVersion, type CommitOp, type Version } from '../../../src/backends/kv-store.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { InjectedCrash, type FaultPoint } from '../../../src/cas/fault-points.js';
import { ENVELOPE_OVERHEAD, TAG_ENVELOPE, TAG_PLAIN } from '../../../src/cas/intent-codec.js';
import { IntentCommitStore, withAtomicCommit } from '../../../src/cas/intent-store.js';
import { LOCK_TIMEOUT_MS, NAMESPACE, SharedStore, crashAt, silentLog, snapshot } from '../../helpers/intent-fixture.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';

const b = (s: string): Buffer => Buffer.from(s);

async function mustPut(store: IntentCommitStore, key: string, value: string): Promise<Version> {
  const put = await store.put(key, b(value));
  if (!put.ok) throw new Error(`put ${key} failed`);
  return put.version;
}

/**
 * Leaves `a` locked by a young pending commit whose owner died right after locking it (the
 * commit would have written a -> A2 and b -> B2). Returns the versions before.
 */
async function deadLockOnA(shared: SharedStore): Promise<{ va: Version; vb: Version }> {
  const setup = shared.client();
  const va = await mustPut(setup, 'a', 'A1');
  const vb = await mustPut(setup, 'b', 'B1');
  // precheck.read, intent.create, lock.write(a), then crash before lock.write(b).
  const owner = shared.client({ faults: crashAt(3, []) });
  await expect(
    owner.commit([
      { key: 'a', value: b('A2'), condition: ifVersion(va) },
      { key: 'b', value: b('B2'), condition: ifVersion(vb) },
    ]),
  ).rejects.toBeInstanceOf(InjectedCrash);
  expect(shared.data.get('a')?.value[0]).toBe(TAG_ENVELOPE);
  return { va, vb };
}

/** Like deadLockOnA, but the owner died just after its commit point. */
async function committedLockOnA(shared: SharedStore): Promise<void> {
  const setup = shared.client();
  const va = await mustPut(setup, 'a', 'A1');
  const vb = await mustPut(setup, 'b', 'B1');
  const trace: FaultPoint[] = [];
  // precheck, create, lock a, lock b, commit point, crash before apply.
  const owner = shared.client({ faults: crashAt(5, trace) });
  await expect(
    owner.commit([
      { key: 'a', value: b('A2'), condition: ifVersion(va) },
      { key: 'b', value: null, condition: ifVersion(vb) },
    ]),
  ).rejects.toBeInstanceOf(InjectedCrash);
  expect(trace.at(-1)).toBe('intent.commit');
}

describe('IntentCommitStore: construction', () => {
  it('withAtomicCommit returns a store with native commit unchanged, and wraps one without', () => {
    const native = new MemoryStore();
    expect(withAtomicCommit(native)).toBe(native);
    const plain = new NoCommitStore();
    const wrapped = withAtomicCommit(plain, { log: silentLog });
    expect(wrapped).toBeInstanceOf(IntentCommitStore);
    expect(wrapped.capabilities.atomicCommit).toBe(true);
    expect(typeof wrapped.commit).toBe('function');
  });

  it('refuses a store with native commit, a bad namespace and bad options, with clear messages', () => {
    expect(() => new IntentCommitStore(new MemoryStore())).toThrow(/native commit; use withAtomicCommit/);
    expect(() => new IntentCommitStore(new NoCommitStore(), { namespace: 'has space' })).toThrow(/printable ASCII/);
    expect(() => new IntentCommitStore(new NoCommitStore(), { lockTimeoutMs: 0 })).toThrow(/lockTimeoutMs must be a positive/);
    expect(() => new IntentCommitStore(new NoCommitStore(), { lockWaitAttempts: 1.5 })).toThrow(/lockWaitAttempts/);
    expect(() => new IntentCommitStore(new NoCommitStore(), { backoffBaseMs: 50, backoffMaxMs: 10 })).toThrow(/backoffMaxMs/);
    expect(() => new IntentCommitStore(new NoCommitStore({ maxValueBytes: 1000 }))).toThrow(/too small for lock envelopes/);
  });

  it('declares half the store’s value size (envelopes hold two values) and keeps placement', () => {
    const inner = new NoCommitStore({ maxValueBytes: 64 * 1024 });
    const store = new IntentCommitStore(inner, { log: silentLog, maxCommitOps: 10 });
    expect(store.capabilities.maxValueBytes).toBe(Math.floor((64 * 1024 - ENVELOPE_OVERHEAD) / 2));
    expect(store.capabilities.maxCommitOps).toBe(10);
    expect(store.capabilities.placement).toBe(inner.capabilities.placement);
  });
});

describe('IntentCommitStore: plain operations', () => {
  it('stores values tagged, and hands out the store’s own versions', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v = await mustPut(store, 'k', 'hello');
    expect(shared.data.get('k')?.version).toBe(v);
    expect(shared.data.get('k')?.value).toEqual(Buffer.concat([Buffer.from([TAG_PLAIN]), b('hello')]));
    expect(await store.get('k')).toEqual({ value: b('hello'), version: v });
  });

  it('a record not written through the wrapper is an IntegrityError naming the key', async () => {
    const shared = new SharedStore();
    const raw = new NoCommitStore({ data: shared.data });
    await raw.put('foreign', Buffer.from([0x7f, 1, 2]));
    await expect(shared.client().get('foreign')).rejects.toThrow(IntegrityError);
    await expect(shared.client().get('foreign')).rejects.toThrow(/foreign starts with tag 127/);
  });

  it('refuses keys inside the intent namespace and values above maxValueBytes', async () => {
    const store = new SharedStore().client();
    await expect(store.put(`${NAMESPACE}x:1`, b('v'))).rejects.toThrow(/inside the intent namespace/);
    const tooBig = Buffer.alloc(store.capabilities.maxValueBytes + 1);
    await expect(store.put('big', tooBig)).rejects.toBeInstanceOf(ValueTooLarge);
    await expect(store.commit([{ key: 'big', value: tooBig, condition: UNCONDITIONAL }, { key: 'o', value: null, condition: UNCONDITIONAL }])).rejects.toBeInstanceOf(ValueTooLarge);
  });

  it('scan hides the wrapper’s intents; without scan underneath there is none', async () => {
    const shared = new SharedStore();
    await deadLockOnA(shared);
    const listed: string[] = [];
    for await (const key of shared.client().scan?.('') ?? []) listed.push(key);
    expect(listed.sort()).toEqual(['a', 'b']);
    expect(shared.leftovers().intents.length).toBe(1);
    expect(shared.client({}, { noScan: true }).scan).toBeUndefined();
  });
});

describe('IntentCommitStore: keys locked by a live commit', () => {
  it('a reader sees the last committed value and version while the owner may still commit', async () => {
    const shared = new SharedStore();
    const { va } = await deadLockOnA(shared);
    expect(await shared.client().get('a')).toEqual({ value: b('A1'), version: va });
    expect(shared.data.get('a')?.value[0]).toBe(TAG_ENVELOPE);
  });

  it('a conditional put with the version read fails as a conflict and keeps the lock', async () => {
    const shared = new SharedStore();
    const { va } = await deadLockOnA(shared);
    expect(await shared.client().put('a', b('mine'), ifVersion(va))).toEqual({ ok: false });
    expect(await shared.client().put('a', b('mine'), IF_ABSENT)).toEqual({ ok: false });
    expect(await shared.client().delete('a', ifVersion(va))).toBe(false);
    expect(shared.data.get('a')?.value[0]).toBe(TAG_ENVELOPE);
  });

  it('an unconditional put waits a bounded number of times, then reports a conflict: it never clobbers the lock', async () => {
    const shared = new SharedStore();
    await deadLockOnA(shared);
    const waits: number[] = [];
    const store = shared.client({ lockWaitAttempts: 5, sleep: async (ms) => void waits.push(ms) });
    expect(await store.put('a', b('blind'))).toEqual({ ok: false });
    expect(await store.delete('a')).toBe(false);
    expect(waits.length).toBe(10);
    expect(shared.data.get('a')?.value[0]).toBe(TAG_ENVELOPE);
  });

  it('a commit waiting for a live lock on an earlier key holds no later key meanwhile (no commits waiting on each other)', async () => {
    const shared = new SharedStore();
    const { vb } = await deadLockOnA(shared);
    const heldDuringWaits: (number | undefined)[] = [];
    const store = shared.client({
      sleep: async (ms) => {
        heldDuringWaits.push(shared.data.get('b')?.value[0]);
        shared.clock.advance(ms + LOCK_TIMEOUT_MS);
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
    const ok = await store.commit([
      // Rolling the dead commit back gives `a` a new version: only an unconditional write holds.
      { key: 'a', value: b('A3'), condition: UNCONDITIONAL },
      { key: 'b', value: b('B3'), condition: ifVersion(vb) },
    ]);
    expect(ok).toBe(true);
    expect(heldDuringWaits.length).toBeGreaterThan(0);
    expect(heldDuringWaits.every((tag) => tag === TAG_PLAIN)).toBe(true);
    expect(await snapshot(shared.client(), ['a', 'b'])).toEqual({ a: 'A3', b: 'B3' });
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
  });

  it('a commit over a live lock gives up as a conflict after its waits, leaving nothing of its own', async () => {
    const shared = new SharedStore();
    const { vb } = await deadLockOnA(shared);
    const store = shared.client({ lockWaitAttempts: 3 });
    const ok = await store.commit([
      { key: 'a', value: b('other'), condition: UNCONDITIONAL },
      { key: 'b', value: b('other'), condition: ifVersion(vb) },
    ]);
    expect(ok).toBe(false);
    expect(await snapshot(shared.client(), ['a', 'b'])).toEqual({ a: 'A1', b: 'B1' });
    expect(shared.leftovers()).toEqual({ intents: [expect.stringMatching(/^_cas\/x:/)], envelopes: ['a'] });
  });

  it('an owner whose clock runs ahead is still aborted once this client watched it long enough', async () => {
    const shared = new SharedStore();
    const setup = shared.client();
    const va = await mustPut(setup, 'a', 'A1');
    const ahead = shared.client({ now: () => shared.clock.t + 3_600_000, faults: crashAt(3, []) });
    await expect(
      ahead.commit([
        { key: 'a', value: b('A2'), condition: ifVersion(va) },
        { key: 'z', value: b('Z'), condition: IF_ABSENT },
      ]),
    ).rejects.toBeInstanceOf(InjectedCrash);
    const reader = shared.client();
    // First sighting: the intent looks an hour younger than our clock, so it is live.
    expect((await reader.get('a'))?.value.toString()).toBe('A1');
    expect(shared.data.get('a')?.value[0]).toBe(TAG_ENVELOPE);
    shared.clock.advance(LOCK_TIMEOUT_MS + 1);
    expect((await reader.get('a'))?.value.toString()).toBe('A1');
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
  });
});

describe('IntentCommitStore: leftovers of dead clients', () => {
  it('after the timeout, a reader aborts the dead commit and restores the old values', async () => {
    const shared = new SharedStore();
    await deadLockOnA(shared);
    shared.clock.advance(LOCK_TIMEOUT_MS + 1);
    const got = await shared.client().get('a');
    expect(got?.value.toString()).toBe('A1');
    expect(got?.version).toBe(shared.data.get('a')?.version);
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
  });

  it('a conditional put with the pre-lock version conflicts once, then works with the version a read gives', async () => {
    const shared = new SharedStore();
    const { va } = await deadLockOnA(shared);
    shared.clock.advance(LOCK_TIMEOUT_MS + 1);
    const store = shared.client();
    // The rollback rewrote A1 under a new version: the documented spurious conflict.
    expect((await store.put('a', b('A3'), ifVersion(va))).ok).toBe(false);
    const fresh = await store.get('a');
    expect(fresh?.value.toString()).toBe('A1');
    expect((await store.put('a', b('A3'), ifVersion(fresh?.version ?? ''))).ok).toBe(true);
  });

  it('an ifAbsent put succeeds over an abandoned lock on a key that did not exist', async () => {
    const shared = new SharedStore();
    const setup = shared.client();
    const va = await mustPut(setup, 'a', 'A1');
    const owner = shared.client({ faults: crashAt(4, []) });
    await expect(
      owner.commit([
        { key: 'a', value: b('A2'), condition: ifVersion(va) },
        { key: 'n', value: b('N'), condition: IF_ABSENT },
      ]),
    ).rejects.toBeInstanceOf(InjectedCrash);
    expect(shared.data.get('n')?.value[0]).toBe(TAG_ENVELOPE);
    expect(await shared.client().get('n')).toBeUndefined();
    expect((await shared.client().put('n', b('mine'), IF_ABSENT)).ok).toBe(false);
    shared.clock.advance(LOCK_TIMEOUT_MS + 1);
    expect((await shared.client().put('n', b('mine'), IF_ABSENT)).ok).toBe(true);
    expect(await snapshot(shared.client(), ['a', 'n'])).toEqual({ a: 'A1', n: 'mine' });
  });

  it('a commit whose owner died after the commit point is visible at once, and readers finish it', async () => {
    const shared = new SharedStore();
    await committedLockOnA(shared);
    const reader = shared.client();
    const got = await reader.get('a');
    expect(got?.value.toString()).toBe('A2');
    // The reader rolled its key forward: the version is that of a plain record.
    expect(shared.data.get('a')?.value[0]).toBe(TAG_PLAIN);
    expect(got?.version).toBe(shared.data.get('a')?.version);
    expect(await reader.get('b')).toBeUndefined();
    expect(shared.leftovers().envelopes).toEqual([]);
  });

  it('an unconditional delete of a key locked by a committed commit rolls it forward first', async () => {
    const shared = new SharedStore();
    await committedLockOnA(shared);
    expect(await shared.client().delete('a')).toBe(true);
    expect(await shared.client().get('a')).toBeUndefined();
    expect(await shared.client().delete('b')).toBe(false);
  });
});

describe('IntentCommitStore: commit semantics', () => {
  it('commitVersioned tells the version each key was left at, as a read then shows it', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const va = await mustPut(store, 'a', 'A1');
    const vb = await mustPut(store, 'b', 'B1');
    const versions = await store.commitVersioned([
      { key: 'a', value: b('A2'), condition: ifVersion(va) },
      { key: 'b', value: null, condition: ifVersion(vb) },
      { key: 'c', value: b('C1'), condition: IF_ABSENT },
    ]);
    const a = await store.get('a');
    const c = await store.get('c');
    expect(versions).toEqual([a?.version, undefined, c?.version]);
    expect(a?.version).not.toBe(va);
    expect(await store.get('b')).toBeUndefined();
    // Not applied: no versions.
    expect(await store.commitVersioned([{ key: 'a', value: b('A3'), condition: ifVersion(va) }, { key: 'd', value: b('D'), condition: IF_ABSENT }])).toBeUndefined();
  });

  it('a condition failing on a later key writes none of its keys, not even new versions, and leaves no intent', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v1 = await mustPut(store, 'k1', 'one');
    const v2 = await mustPut(store, 'k2', 'two');
    await mustPut(store, 'k3', 'three');
    const writes: FaultPoint[] = [];
    const ok = await shared.client({ faults: (p) => void writes.push(p) }).commit([
      { key: 'k1', value: b('x'), condition: ifVersion(v1) },
      { key: 'k2', value: b('x'), condition: ifVersion(v2) },
      { key: 'k3', value: b('x'), condition: IF_ABSENT },
    ]);
    expect(ok).toBe(false);
    // The intent went out with the first read; it alone is written, and deleted.
    expect(writes).toEqual(['precheck.read', 'intent.create', 'intent.delete']);
    expect((await store.get('k1'))?.version).toBe(v1);
    expect((await store.get('k2'))?.version).toBe(v2);
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
  });

  it('a condition that fails only under the lock rolls back the keys already locked', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v1 = await mustPut(store, 'k1', 'one');
    const v2 = await mustPut(store, 'k2', 'two');
    // Another client changes k2 between this commit's first read and its lock of k2.
    const racer = shared.client();
    const committer = shared.client({
      faults: async (point, key) => {
        if (point === 'lock.write' && key === 'k2') await racer.put('k2', b('raced'), ifVersion(v2));
      },
    });
    const ok = await committer.commit([
      { key: 'k1', value: b('x'), condition: ifVersion(v1) },
      { key: 'k2', value: b('x'), condition: ifVersion(v2) },
    ]);
    expect(ok).toBe(false);
    expect(await snapshot(store, ['k1', 'k2'])).toEqual({ k1: 'one', k2: 'raced' });
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
  });

  it('a checked key changed after the locks were taken fails the commit (validation after locking)', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v1 = await mustPut(store, 'k1', 'one');
    const vc = await mustPut(store, 'checked', 'c');
    const racer = shared.client();
    const committer = shared.client({
      faults: async (point) => {
        if (point === 'check.read') await racer.put('checked', b('c2'), ifVersion(vc));
      },
    });
    const ok = await committer.commit(
      [
        { key: 'k1', value: b('x'), condition: ifVersion(v1) },
        { key: 'k9', value: b('y'), condition: IF_ABSENT },
      ],
      [{ key: 'checked', version: vc }],
    );
    expect(ok).toBe(false);
    expect(await snapshot(store, ['k1', 'k9', 'checked'])).toEqual({ k1: 'one', k9: undefined, checked: 'c2' });
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
  });

  it('a key checked absent is locked for the commit, so a racing create waits or fails, and it stays absent', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v1 = await mustPut(store, 'k1', 'one');
    let raced: boolean | undefined;
    const racer = shared.client({ lockWaitAttempts: 1 });
    const committer = shared.client({
      faults: async (point) => {
        if (point === 'intent.commit') raced = (await racer.put('guard', b('g'), IF_ABSENT)).ok;
      },
    });
    const ok = await committer.commit(
      [
        { key: 'k1', value: b('x'), condition: ifVersion(v1) },
        { key: 'k2', value: b('y'), condition: IF_ABSENT },
      ],
      [{ key: 'guard', version: null }],
    );
    expect(ok).toBe(true);
    expect(raced).toBe(false);
    expect(await snapshot(store, ['k1', 'k2', 'guard'])).toEqual({ k1: 'x', k2: 'y', guard: undefined });
  });

  it('a single op without checks is one CAS, with no intent', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v = await mustPut(store, 'k', 'one');
    const points: FaultPoint[] = [];
    const single = shared.client({ faults: (p) => void points.push(p) });
    expect(await single.commit([{ key: 'k', value: b('two'), condition: ifVersion(v) }])).toBe(true);
    expect(points).toEqual(['put']);
    expect(await single.commit([{ key: 'gone', value: null, condition: UNCONDITIONAL }])).toBe(true);
    expect(await single.commit([{ key: 'gone', value: null, condition: ifVersion(v) }])).toBe(false);
  });

  it('a commit of version checks only is one read and writes nothing', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v = await mustPut(store, 'k', 'one');
    const points: FaultPoint[] = [];
    const checker = shared.client({ faults: (p) => void points.push(p) });
    expect(await checker.commit([], [{ key: 'k', version: v }])).toBe(true);
    expect(await checker.commit([], [{ key: 'k', version: 'stale' }])).toBe(false);
    expect(points).toEqual(['getMany', 'getMany']);
  });

  it('rejects duplicate op keys and too many ops before touching the store', async () => {
    const store = new SharedStore().client({ maxCommitOps: 3 });
    const op: CommitOp = { key: 'k', value: b('v'), condition: UNCONDITIONAL };
    await expect(store.commit([op, op])).rejects.toThrow(/writes key k twice/);
    const many = ['a', 'b', 'c', 'd'].map((key) => ({ ...op, key }));
    await expect(store.commit(many)).rejects.toThrow(/exceeds maxCommitOps 3/);
  });

  it('treats an ifVersion check on an op key as one more condition on it', async () => {
    const shared = new SharedStore();
    const store = shared.client();
    const v = await mustPut(store, 'k', 'one');
    const ops: CommitOp[] = [
      { key: 'k', value: b('two'), condition: UNCONDITIONAL },
      { key: 'o', value: b('o'), condition: UNCONDITIONAL },
    ];
    expect(await store.commit(ops, [{ key: 'k', version: 'stale' }])).toBe(false);
    expect(await store.commit(ops, [{ key: 'k', version: v }])).toBe(true);
    expect((await store.get('k'))?.value.toString()).toBe('two');
  });
});

describe('IntentCommitStore: recover() for fsck', () => {
  it('reports live intents, leaves them alone, and aborts them with abortLive', async () => {
    const shared = new SharedStore();
    await deadLockOnA(shared);
    const fsck = shared.client();
    const listed = await fsck.pendingIntents();
    expect(listed?.map((i) => [i.state, i.keys])).toEqual([['pending', ['a', 'b']]]);
    const report = await fsck.recover();
    expect(report.live.length).toBe(1);
    expect(report.lockedKeys).toEqual(['a']);
    expect(shared.leftovers().envelopes).toEqual(['a']);
    const forced = await fsck.recover({ abortLive: true });
    expect(forced.rolledBack.length).toBe(1);
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
    expect(await snapshot(fsck, ['a', 'b'])).toEqual({ a: 'A1', b: 'B1' });
  });

  it('rolls committed leftovers forward even when young', async () => {
    const shared = new SharedStore();
    await committedLockOnA(shared);
    const report = await shared.client().recover();
    expect(report.rolledForward.length).toBe(1);
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
    expect(await snapshot(shared.client(), ['a', 'b'])).toEqual({ a: 'A2', b: undefined });
  });

  it('reports and rolls back an envelope whose intent vanished', async () => {
    const shared = new SharedStore();
    await deadLockOnA(shared);
    const [intent] = shared.leftovers().intents;
    await new NoCommitStore({ data: shared.data }).delete(intent);
    const report = await shared.client().recover();
    expect(report.orphanEnvelopes).toEqual(['a']);
    expect(shared.leftovers()).toEqual({ intents: [], envelopes: [] });
    expect((await shared.client().get('a'))?.value.toString()).toBe('A1');
  });

  it('says it listed nothing on a store without scan', async () => {
    const shared = new SharedStore();
    const store = shared.client({}, { noScan: true });
    expect(await store.pendingIntents()).toBeUndefined();
    expect((await store.recover()).listed).toBe(false);
  });
});
