import { describe, expect, it } from 'vitest';
import { StoreFull, StoreUnavailable } from '../../../src/backends/errors.js';
import { IF_ABSENT } from '../../../src/backends/kv-store.js';
import {
  MemoryData,
  MemoryStore,
  SimulatedCrash,
  crashAfter,
  failCall,
  memoryBackend,
  type OperationCall,
} from '../../../src/backends/memory/index.js';

const buf = (s: string) => Buffer.from(s);

describe('MemoryStore beyond the contract', () => {
  it('shares records between clients opened on one MemoryData', async () => {
    const data = new MemoryData();
    const a = new MemoryStore({ data });
    const b = new MemoryStore({ data });
    await a.put('k', buf('from a'));
    expect((await b.get('k'))?.value.toString()).toBe('from a');
    expect((await b.put('k', buf('from b'), IF_ABSENT)).ok).toBe(false);
  });

  it('crashAfter lets N calls through, then fails every call and writes nothing more', async () => {
    const data = new MemoryData();
    const store = new MemoryStore({ data, beforeOperation: crashAfter(2) });
    await store.put('one', buf('1'));
    await store.put('two', buf('2'));
    await expect(store.put('three', buf('3'))).rejects.toBeInstanceOf(SimulatedCrash);
    await expect(store.get('one')).rejects.toBeInstanceOf(StoreUnavailable);
    const survivor = new MemoryStore({ data });
    expect((await survivor.getMany(['one', 'two', 'three'])).map((v) => v?.value.toString())).toEqual([
      '1',
      '2',
      undefined,
    ]);
  });

  it('failCall fails only the chosen call, leaving the data untouched', async () => {
    const store = new MemoryStore({ beforeOperation: failCall(1, () => new Error('injected')) });
    await store.put('a', buf('a'));
    await expect(store.commit([{ key: 'b', value: buf('b'), condition: IF_ABSENT }])).rejects.toThrow('injected');
    expect(await store.get('b')).toBeUndefined();
    expect((await store.get('a'))?.value.toString()).toBe('a');
  });

  it('passes each call with its index, operation and keys to the hook', async () => {
    const seen: OperationCall[] = [];
    const store = new MemoryStore({ beforeOperation: (call) => void seen.push(call) });
    await store.get('x');
    await store.getMany(['y', 'z']);
    await store.delete('x');
    expect(seen).toEqual([
      { op: 'get', index: 0, keys: ['x'] },
      { op: 'getMany', index: 1, keys: ['y', 'z'] },
      { op: 'delete', index: 2, keys: ['x'] },
    ]);
  });

  it('throws StoreFull past maxTotalBytes, for puts and commits, and frees space on delete', async () => {
    const store = new MemoryStore({ data: new MemoryData(20) });
    await store.put('a', Buffer.alloc(10));
    await expect(store.put('b', Buffer.alloc(10))).rejects.toThrow(StoreFull);
    await expect(
      store.commit([{ key: 'c', value: Buffer.alloc(10), condition: IF_ABSENT }]),
    ).rejects.toThrow(/memory store is full.*larger maxTotalBytes/);
    expect(await store.get('c')).toBeUndefined();
    await store.delete('a');
    expect((await store.put('b', Buffer.alloc(10))).ok).toBe(true);
  });

  it('refuses operations after close with a clear StoreUnavailable', async () => {
    const store = new MemoryStore();
    await store.close();
    await expect(store.get('k')).rejects.toThrow(/memory store was closed before get/);
  });

  it('rejects a commit that writes one key twice, or has more than maxCommitOps entries', async () => {
    const store = new MemoryStore({ maxCommitOps: 2 });
    const op = { key: 'k', value: buf('v'), condition: IF_ABSENT };
    await expect(store.commit([op, op])).rejects.toThrow(/writes key k twice/);
    await expect(store.commit([op], [{ key: 'a', version: null }, { key: 'b', version: null }])).rejects.toThrow(
      /exceeds maxCommitOps 2/,
    );
    expect(await store.get('k')).toBeUndefined();
  });

  it('rejects bad options', () => {
    expect(() => new MemoryStore({ maxValueBytes: 0 })).toThrow(/maxValueBytes must be a whole number/);
    expect(() => new MemoryStore({ domains: 0 })).toThrow(/whole number of domains/);
  });

  it('is created by the registry definition as "mem"', async () => {
    const store = await memoryBackend.create(memoryBackend.parseOptions({}));
    expect(store.name).toBe('mem');
    expect(memoryBackend.name).toBe('mem');
  });
});
