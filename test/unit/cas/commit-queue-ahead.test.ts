/**
 * The commit queue on a store that takes commits ahead (LMDB): operations are answered once the
 * store has taken their commit when no other process could look, later operations build on
 * writes taken but not applied, and a commit that does not apply takes the ones after it down
 * with it, so that the replays keep the order the operations were answered in.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ifVersion, type CommitCheck, type CommitOp, type KvStore, type TakenCommit, type Version } from '../../../src/backends/kv-store.js';
import { LmdbStore } from '../../../src/backends/lmdb/index.js';
import { CommitQueue, mergeBatch } from '../../../src/cas/commit-queue.js';
import { RecordCache } from '../../../src/cas/record-cache.js';
import { PENDING_CONDITION, type Transaction } from '../../../src/cas/transaction.js';
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.js';

const log = pino({ level: 'silent' });
const text = (b: Buffer | undefined) => b?.toString();

const append = (key: string, suffix: string) => async (tx: Transaction) => {
  const before = text(await tx.read(key)) ?? '';
  tx.write(key, Buffer.from(before + suffix));
  return before + suffix;
};

/**
 * The LMDB store, with the outcome of each commit the queue hands it held back until `open()`,
 * and a hook run before each one is handed over.
 */
function gated(store: LmdbStore) {
  let release!: () => void;
  let gate = new Promise<void>((resolve) => (release = resolve));
  const outcomes: boolean[] = [];
  const handed: string[][] = [];
  let before: (ops: readonly CommitOp[]) => Promise<void> = async () => undefined;
  const commitAhead = async (ops: readonly CommitOp[], checks?: readonly CommitCheck[]): Promise<TakenCommit> => {
    await before(ops);
    handed.push(ops.map((op) => op.key));
    const taken = await store.commitAhead(ops, checks);
    const applied = taken.applied.then(async (ok) => {
      await gate;
      outcomes.push(ok);
      return ok;
    });
    return { versions: taken.versions, applied };
  };
  const wrapped: KvStore = Object.assign(Object.create(store) as LmdbStore, { commitAhead });
  return {
    store: wrapped,
    outcomes,
    handed,
    open: () => release(),
    close: () => {
      gate = new Promise<void>((resolve) => (release = resolve));
    },
    beforeEach: (hook: (ops: readonly CommitOp[]) => Promise<void>) => {
      before = hook;
    },
  };
}

describe('CommitQueue on a store that takes commits ahead', () => {
  let dir: string;
  let lmdb: LmdbStore;
  beforeEach(async () => {
    dir = await makeTempDir('commit-ahead');
    lmdb = await LmdbStore.open({ path: join(dir, 'store') });
  });
  afterEach(async () => {
    await lmdb.close();
    await removeTempDir(dir);
  });

  it('answers once the store took the commit when nobody else could look, and builds on writes not applied yet', async () => {
    const g = gated(lmdb);
    const queue = new CommitQueue(g.store, new RecordCache(), log, { answerWhenTaken: () => true });
    expect(await queue.transact(append('a', '1'))).toBe('1');
    expect(await queue.transact(append('a', '2'))).toBe('12');
    expect(await queue.transact(append('b', 'x'))).toBe('x');
    // Answered, handed over, not one of them applied yet as far as the queue knows.
    expect(g.outcomes).toEqual([]);
    expect(g.handed.length).toBeGreaterThanOrEqual(2);
    g.open();
    await queue.settle();
    expect(g.outcomes.every(Boolean)).toBe(true);
    expect(text((await lmdb.get('a'))?.value)).toBe('12');
    expect(text((await lmdb.get('b'))?.value)).toBe('x');
    expect(queue.takeLostUpdate()).toBeUndefined();
  });

  it('makes a caller wait for the commit to apply when another process may be looking', async () => {
    const g = gated(lmdb);
    const queue = new CommitQueue(g.store, new RecordCache(), log, { answerWhenTaken: () => false });
    let answered = false;
    const op = queue.transact(append('a', '1')).then((v) => {
      answered = true;
      return v;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(false);
    g.open();
    expect(await op).toBe('1');
    expect(g.outcomes).toEqual([true]);
  });

  it('a commit that does not apply fails the ones taken after it, and all are replayed in order: nothing lost', async () => {
    const g = gated(lmdb);
    await lmdb.put('k', Buffer.from('0'));
    const queue = new CommitQueue(g.store, new RecordCache(), log, { answerWhenTaken: () => true });
    // Another writer changes k just before the first commit is handed over: that commit's
    // condition on k fails.
    let interfered = false;
    g.beforeEach(async (ops) => {
      if (!interfered && ops.some((op) => op.key === 'k')) {
        interfered = true;
        await lmdb.put('k', Buffer.from('X'));
      }
    });
    expect(await queue.transact(append('k', 'a'))).toBe('0a');
    // Touches nothing the first one does: only the link to it makes it wait for that one.
    expect(await queue.transact(append('j', 'b'))).toBe('b');
    g.open();
    await queue.settle();
    expect(g.outcomes).toEqual([false, false]);
    expect(text((await lmdb.get('k'))?.value)).toBe('Xa');
    expect(text((await lmdb.get('j'))?.value)).toBe('b');
    expect(queue.takeLostUpdate()).toBeUndefined();
  });

  it('reports an operation answered early that fails on replay, at the next takeLostUpdate', async () => {
    const g = gated(lmdb);
    await lmdb.put('file', Buffer.from('v1'));
    const queue = new CommitQueue(g.store, new RecordCache(), log, { answerWhenTaken: () => true });
    g.beforeEach(async () => {
      await lmdb.delete('file');
    });
    await queue.transact(async (tx) => {
      if (!(await tx.read('file'))) throw new Error('ENOENT');
      tx.write('file', Buffer.from('v2'));
    });
    g.open();
    await queue.settle();
    expect(await lmdb.get('file')).toBeUndefined();
    expect(queue.takeLostUpdate()).toBeInstanceOf(Error);
  });

  it('many operations answered early, on shared and separate records, all land as if run one by one', async () => {
    const g = gated(lmdb);
    const queue = new CommitQueue(g.store, new RecordCache(), log, { answerWhenTaken: () => true, maxDeferred: 16 });
    const expected = new Map<string, string>();
    const ops: Promise<unknown>[] = [];
    // Past 16 answered early, operations wait for their commits: those apply once the gate opens.
    setTimeout(() => g.open(), 30);
    for (let i = 0; i < 200; i++) {
      const key = `r${i % 7}`;
      expected.set(key, (expected.get(key) ?? '') + String.fromCharCode(97 + (i % 26)));
      ops.push(queue.transact(append(key, String.fromCharCode(97 + (i % 26)))));
      if (i % 9 === 0) await ops[ops.length - 1];
    }
    await Promise.all(ops);
    await queue.settle();
    for (const [key, value] of expected) expect(text((await lmdb.get(key))?.value)).toBe(value);
    expect(queue.takeLostUpdate()).toBeUndefined();
  });
});

describe('mergeBatch', () => {
  it('makes a write of a record read from an earlier commit still in flight conditional on the version that commit gives', () => {
    const v = '7' as Version;
    const pendingWrite = { ops: [{ key: 'k', value: Buffer.from('x'), condition: PENDING_CONDITION }], checks: [] };
    expect(mergeBatch([{ plan: pendingWrite }], (key) => (key === 'k' ? v : undefined))?.ops[0].condition).toEqual(ifVersion(v));
    expect(mergeBatch([{ plan: pendingWrite }], (key) => (key === 'k' ? null : undefined))?.ops[0].condition).toEqual({ kind: 'ifAbsent' });
    // Nothing in flight writes it: the batch cannot be one commit.
    expect(mergeBatch([{ plan: pendingWrite }])).toBeUndefined();
  });
});
