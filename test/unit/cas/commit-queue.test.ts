/**
 * The commit queue: operations in flight together share one store commit, deferred operations
 * are answered first and committed with the next commit, later operations read what queued ones
 * wrote, and a conflicting commit is undone by replaying each operation on its own.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CommitCheck, CommitOp, KvStore } from '../../../src/backends/kv-store.js';
import { MemoryData, MemoryStore } from '../../../src/backends/memory/index.js';
import { CommitQueue } from '../../../src/cas/commit-queue.js';
import { withAtomicCommit } from '../../../src/cas/intent-store.js';
import { RecordCache } from '../../../src/cas/record-cache.js';
import { transact } from '../../../src/cas/transaction.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';

const log = pino({ level: 'silent' });
const text = (b: Buffer | undefined) => b?.toString();

/** Records every commit (its keys) and single put that reaches the store. */
function counted<S extends KvStore>(store: S): { store: S; commits: string[][]; puts: string[] } {
  const commits: string[][] = [];
  const puts: string[] = [];
  const commit = store.commit!.bind(store);
  store.commit = (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => {
    commits.push(ops.map((o) => o.key));
    return commit(ops, checks);
  };
  const versioned = store.commitVersioned?.bind(store);
  if (versioned) {
    store.commitVersioned = (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => {
      commits.push(ops.map((o) => o.key));
      return versioned(ops, checks);
    };
  }
  const put = store.put.bind(store);
  store.put = (key, value, condition) => {
    puts.push(key);
    return put(key, value, condition);
  };
  return { store, commits, puts };
}

/** Appends `suffix` to the record under `key` (a read-modify-write). */
const append = (key: string, suffix: string) => async (tx: Parameters<Parameters<CommitQueue['transact']>[0]>[0]) => {
  const before = text(await tx.read(key)) ?? '';
  tx.write(key, Buffer.from(before + suffix));
  return before + suffix;
};

describe('CommitQueue', () => {
  it('commits operations in flight together in one store commit, each getting its own answer', async () => {
    const { store, commits, puts } = counted(new MemoryStore());
    const queue = new CommitQueue(store, new RecordCache(), log);
    // The first goes alone (one put); the nine that arrive while it is in the store's hands share one commit.
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => queue.transact(append(`k${i}`, 'x'))));
    expect(answers).toEqual(Array.from({ length: 10 }, () => 'x'));
    expect(puts).toEqual(['k0']);
    expect(commits).toEqual([Array.from({ length: 9 }, (_, i) => `k${i + 1}`)]);
  });

  it('answers a deferred operation at once, lets later ones read it, and commits it with the next one', async () => {
    const { store, commits, puts } = counted(new MemoryStore());
    const queue = new CommitQueue(store, new RecordCache(), log, { deferMs: 10_000 });
    expect(await queue.transact(append('a', '1'), { defer: true })).toBe('1');
    expect(await queue.transact(append('a', '2'), { defer: true })).toBe('12');
    expect(await store.get('a')).toBeUndefined();
    expect(commits).toEqual([]);
    // A waiting operation takes the deferred ones into its commit.
    expect(await queue.transact(append('b', 'x'))).toBe('x');
    expect(commits).toEqual([['a', 'b']]);
    expect(puts).toEqual([]);
    expect(text((await store.get('a'))?.value)).toBe('12');
    await queue.close();
  });

  it('commits deferred operations after the delay when nothing else comes', async () => {
    const store = new MemoryStore();
    const queue = new CommitQueue(store, new RecordCache(), log, { deferMs: 5 });
    await queue.transact(append('a', '1'), { defer: true });
    expect(await store.get('a')).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(text((await store.get('a'))?.value)).toBe('1');
    await queue.close();
  });

  it('drops a record created and removed before the commit, and keeps the create unconditional on nothing else', async () => {
    const { store, commits } = counted(new MemoryStore());
    const queue = new CommitQueue(store, new RecordCache(), log, { deferMs: 10_000 });
    await queue.transact(async (tx) => tx.create('tmp', Buffer.from('t')), { defer: true });
    await queue.transact(
      async (tx) => {
        expect(text(await tx.read('tmp'))).toBe('t');
        tx.remove('tmp');
        tx.write('kept', Buffer.from('k'));
      },
      { defer: true },
    );
    await queue.settle();
    expect(commits).toEqual([['kept']]);
    expect(await store.get('tmp')).toBeUndefined();
    expect(text((await store.get('kept'))?.value)).toBe('k');
  });

  it('replays each operation on its own when another client changed a record: nothing is lost', async () => {
    const data = new MemoryData();
    const mine = new MemoryStore({ data });
    const theirs = new MemoryStore({ data });
    await mine.put('shared', Buffer.from('0'));
    const queue = new CommitQueue(mine, new RecordCache(), log, { deferMs: 10_000 });
    expect(await queue.transact(append('shared', 'a'), { defer: true })).toBe('0a');
    // Another mount appends in between; the queued append read '0' and must not overwrite it.
    await transact(theirs, undefined, append('shared', 'b'));
    expect(await queue.transact(append('other', 'x'))).toBe('x');
    expect(text((await mine.get('shared'))?.value)).toBe('0ba');
    expect(text((await mine.get('other'))?.value)).toBe('x');
    expect(queue.takeLostUpdate()).toBeUndefined();
  });

  it('reports a deferred operation that fails on replay, and still commits the rest', async () => {
    const data = new MemoryData();
    const mine = new MemoryStore({ data });
    const theirs = new MemoryStore({ data });
    await mine.put('file', Buffer.from('v1'));
    const queue = new CommitQueue(mine, new RecordCache(), log, { deferMs: 10_000 });
    const chmod = async (tx: Parameters<Parameters<CommitQueue['transact']>[0]>[0]) => {
      const before = await tx.read('file');
      if (!before) throw new Error('ENOENT');
      tx.write('file', Buffer.from('v2'));
    };
    await queue.transact(chmod, { defer: true });
    await theirs.delete('file');
    await queue.transact(append('other', 'x'));
    expect(await mine.get('file')).toBeUndefined();
    expect(text((await mine.get('other'))?.value)).toBe('x');
    expect(queue.takeLostUpdate()).toBeInstanceOf(Error);
    expect(queue.takeLostUpdate()).toBeUndefined();
  });

  it('a store failure reaches the operation that waits, and the deferred ones are reported lost', async () => {
    let failing = false;
    const store = new MemoryStore({
      beforeOperation: (call) => {
        if (failing && call.op === 'commit') throw new Error('store down');
      },
    });
    const queue = new CommitQueue(store, new RecordCache(), log, { deferMs: 10_000 });
    await queue.transact(append('a', '1'), { defer: true });
    failing = true;
    await expect(queue.transact(append('b', '1'))).rejects.toThrow('store down');
    expect(queue.takeLostUpdate()).toBeInstanceOf(Error);
    failing = false;
    // Nothing of the failed batch is shown as written.
    expect(await queue.transact(async (tx) => text(await tx.read('a')))).toBeUndefined();
  });

  it('keeps what it committed in the record cache with the new versions: reading it back asks the store nothing', async () => {
    const store = new MemoryStore();
    const queue = new CommitQueue(store, new RecordCache(), log);
    await store.put('seed', Buffer.from('s'));
    await queue.transact(async (tx) => {
      await tx.read('seed');
      tx.write('seed', Buffer.from('s2'));
      tx.create('fresh', Buffer.from('f'));
    });
    let gets = 0;
    const get = store.get.bind(store);
    store.get = (key) => {
      gets++;
      return get(key);
    };
    // A second update of both: its conditions are the cached versions, and it commits.
    await queue.transact(async (tx) => {
      expect(text(await tx.read('seed'))).toBe('s2');
      expect(text(await tx.read('fresh'))).toBe('f');
      tx.write('seed', Buffer.from('s3'));
      tx.write('fresh', Buffer.from('f2'));
    });
    expect(gets).toBe(0);
    expect(text((await get('seed'))?.value)).toBe('s3');
    expect(text((await get('fresh'))?.value)).toBe('f2');
  });

  it('on a store whose commits are intent records, every operation commits by itself', async () => {
    const store = withAtomicCommit(new NoCommitStore());
    const queue = new CommitQueue(store, new RecordCache(), log);
    expect(queue.enabled).toBe(false);
    expect(await queue.transact(append('a', '1'), { defer: true })).toBe('1');
    expect(text((await store.get('a'))?.value)).toBe('1');
  });
});
