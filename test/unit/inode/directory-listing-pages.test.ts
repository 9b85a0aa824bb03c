import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { transact } from '../../../src/cas/transaction.js';
import { DirectoryTree, listingOrder, nameHash } from '../../../src/inode/directory-tree.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { VolumeKeys } from '../../../src/inode/keys.js';
import { S_IFREG } from '../../../src/inode/records.js';
import { testRuns } from '../../helpers/property-runs.js';

const DIR = 7;

/** A tree whose leaves split after a few names, so listings cross splits of several levels. */
async function smallLeafTree(names: Iterable<string>) {
  const store = new MemoryStore();
  const tree = new DirectoryTree(new VolumeKeys('t:'), 300);
  await transact(store, undefined, async (tx) => tree.createEmpty(tx, DIR));
  let ino = 100;
  const insert = (name: string) => transact(store, undefined, (tx) => tree.insert(tx, DIR, name, [ino++, S_IFREG]));
  const remove = (name: string) => transact(store, undefined, (tx) => tree.remove(tx, DIR, name));
  for (const name of names) await insert(name);
  return { store, tree, insert, remove };
}

/**
 * A page from `from` on: all the store page gave (continuing where it says), or only its first
 * `count` names (continuing after the last one, as the kernel does with a full buffer).
 */
async function page(tree: DirectoryTree, store: MemoryStore, from: number, count: number, takeAll = false) {
  const { entries, next } = await tree.listPage(store, DIR, from, count);
  const taken = takeAll ? entries : entries.slice(0, count);
  const resume = takeAll && next !== undefined ? next : taken.length > 0 ? taken[taken.length - 1].position + 1 : from;
  return { names: taken.map((e) => e.name), resume, atEnd: next === undefined && taken.length === entries.length };
}

const nameArb = fc.stringMatching(/^[a-z0-9._-]{1,40}$/);

describe('a directory listed a page at a time', () => {
  it('orders names by hash digits, low digit first, as the tree splits them', () => {
    // Two hashes that differ only in the lowest digit order by that digit, whatever the rest.
    expect(listingOrder(0xffffffc1)).toBeLessThan(listingOrder(0x00000002));
    expect(listingOrder(0x40)).toBeLessThan(listingOrder(0x80));
    expect(listingOrder(0)).toBe(0);
    expect(listingOrder(0xffffffff)).toBe(2 ** 32 - 1);
  });

  it('gives every name once, in pages of any size, across splits', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(nameArb, { minLength: 0, maxLength: 300, size: 'max' }), fc.integer({ min: 1, max: 40 }), fc.boolean(), async (names, size, takeAll) => {
        const { store, tree } = await smallLeafTree(names);
        const seen: string[] = [];
        let from = 0;
        for (;;) {
          const { names: got, resume, atEnd } = await page(tree, store, from, size, takeAll);
          seen.push(...got);
          if (atEnd) break;
          from = resume;
        }
        expect(seen.length).toBe(names.length);
        expect(new Set(seen)).toEqual(new Set(names));
        // The listing follows hash order: a resumed page never goes back.
        const orders = seen.map((n) => listingOrder(nameHash(n)));
        expect(orders).toEqual([...orders].sort((a, b) => a - b));
      }),
      { numRuns: testRuns(40) },
    );
  }, 120_000);

  it('lists each name present throughout exactly once while names come and go between pages', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(nameArb, { minLength: 1, maxLength: 200, size: 'max' }),
        fc.uniqueArray(nameArb, { maxLength: 150, size: 'max' }),
        fc.integer({ min: 1, max: 25 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.boolean(),
        async (initial, added, size, seed, takeAll) => {
          const { store, tree, insert, remove } = await smallLeafTree(initial);
          const toAdd = added.filter((n) => !initial.includes(n));
          // Every third original name goes during the listing; the others stay throughout.
          const toRemove = initial.filter((_, i) => (i + seed) % 3 === 0);
          const stay = initial.filter((n) => !toRemove.includes(n));
          const seen: string[] = [];
          let from = 0;
          for (let round = 0; ; round++) {
            const { names: got, resume, atEnd } = await page(tree, store, from, size, takeAll);
            seen.push(...got);
            from = resume;
            if (atEnd && toAdd.length === 0 && toRemove.length === 0) break;
            // Between pages: new names (which split leaves) and removals.
            for (const name of toAdd.splice(0, 7)) await insert(name);
            for (const name of toRemove.splice(0, 3)) await remove(name);
            if (round > 10_000) throw new Error('the listing does not end');
          }
          const counts = new Map<string, number>();
          for (const n of seen) counts.set(n, (counts.get(n) ?? 0) + 1);
          for (const n of stay) expect(counts.get(n), n).toBe(1);
          for (const [n, c] of counts) expect(c, n).toBe(1);
        },
      ),
      { numRuns: testRuns(30) },
    );
  }, 120_000);

  it('answers ENOENT, naming the record, for a directory whose root record is gone', async () => {
    const { store, tree } = await smallLeafTree(['a', 'b']);
    await store.delete(new VolumeKeys('t:').dirNode(DIR, 'r'));
    await expect(tree.listPage(store, DIR, 0, 10)).rejects.toSatisfy(
      (e: unknown) => e instanceof FsError && e.code === 'ENOENT' && /directory 7 has no record t:/.test(e.message),
    );
  });

  it('reads a page in a few round trips', async () => {
    const names = Array.from({ length: 2000 }, (_, i) => `file-number-${i}`);
    const { store, tree } = await smallLeafTree(names);
    let reads = 0;
    const counting = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'get') return (key: string) => (reads++, target.get(key));
        if (prop === 'getMany') return (keys: string[]) => (reads++, target.getMany(keys));
        return Reflect.get(target, prop, receiver);
      },
    });
    const { names: first, resume } = await page(tree, counting, 0, 5);
    expect(first).toHaveLength(5);
    const firstReads = reads;
    reads = 0;
    await page(tree, counting, resume, 5);
    // The root and a batch or two of children per level, from about 1,000 leaves.
    expect(firstReads).toBeLessThanOrEqual(8);
    expect(reads).toBeLessThanOrEqual(8);
  });
});
