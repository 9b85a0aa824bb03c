import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../../src/backends/memory/index.js';
import { MeteredStore } from '../../../../src/backends/wrappers/metered-store.js';
import { StoreUnavailable } from '../../../../src/backends/errors.js';
import type { KvStore } from '../../../../src/backends/kv-store.js';

describe('MeteredStore', () => {
  it('reports every request with its method, and passes results through', async () => {
    const seen: [string, boolean][] = [];
    const store = new MeteredStore(new MemoryStore(), (method, seconds, failed) => {
      expect(seconds).toBeGreaterThanOrEqual(0);
      seen.push([method, failed]);
    });
    const put = await store.put('k', Buffer.from('v'));
    expect(put.ok).toBe(true);
    expect((await store.get('k'))?.value.toString()).toBe('v');
    expect(await store.getMany(['k', 'absent'])).toHaveLength(2);
    expect(await store.commit!([{ key: 'a', value: Buffer.from('1'), condition: { kind: 'none' } }])).toBe(true);
    expect(await store.delete('k')).toBe(true);
    expect(seen).toEqual([
      ['put', false],
      ['get', false],
      ['getMany', false],
      ['commit', false],
      ['delete', false],
    ]);
  });

  it('has an optional method exactly when the store under it has it, and counts failures', async () => {
    const inner = new MemoryStore();
    const bare: KvStore = {
      name: 'bare',
      capabilities: inner.capabilities,
      get: () => Promise.reject(new StoreUnavailable('down')),
      getMany: (keys) => inner.getMany(keys),
      put: (k, v, c) => inner.put(k, v, c),
      delete: (k, c) => inner.delete(k, c),
      close: () => inner.close(),
    };
    const failures: string[] = [];
    const store = new MeteredStore(bare, (method, _s, failed) => failed && failures.push(method));
    expect(store.commit).toBeUndefined();
    expect(store.scan).toBeUndefined();
    expect(store.sync).toBeUndefined();
    expect(store.getValueInto).toBeUndefined();
    expect(store.compactListing).toBeUndefined();
    expect(store.commitAhead).toBeUndefined();
    expect(new MeteredStore({ ...bare, compactListing: async () => ({ before: 2, after: 1 }) }, () => undefined).compactListing).toBeDefined();
    await expect(store.get('x')).rejects.toBeInstanceOf(StoreUnavailable);
    expect(failures).toEqual(['get']);
    const full = new MeteredStore(inner, () => undefined);
    expect(full.commit).toBeDefined();
    expect(full.scan).toBeDefined();
    expect(full.name).toBe(inner.name);
    expect(full.capabilities).toBe(inner.capabilities);
  });
});
