/**
 * The KvStore contract as one test suite, run unchanged against every backend and every
 * KvStore-shaped translator stack. A backend's test file calls
 * {@link describeKvStoreContract} once with a {@link ContractSetup}.
 *
 * Every test builds its keys under a fresh random prefix, so `open()` may return either a
 * fresh empty store or a new connection to a shared server: tests never see each other's
 * keys. Every await on the store is bounded, so a hanging backend fails a test with a message
 * naming the operation instead of stalling the run.
 */
import { randomBytes } from 'node:crypto';
import pMap from 'p-map';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreTimeout, StoreUnavailable, ValueTooLarge } from '../../src/backends/errors.js';
import {
  IF_ABSENT,
  MAX_KEY_BYTES,
  UNCONDITIONAL,
  ifVersion,
  type CommitOp,
  type KvStore,
  type Version,
} from '../../src/backends/kv-store.js';

/** What the suite expects the store to declare in `capabilities` (and whether it has scan). */
export interface ExpectedCapabilities {
  readonly maxValueBytes: number;
  readonly atomicCommit: boolean;
  /** Whether `store.scan` exists. */
  readonly scan: boolean;
  /** Checked when given. */
  readonly maxCommitOps?: number;
  /** Checked when given: `capabilities.placement.domains`. */
  readonly domains?: number;
  /** Whether `store.getValueInto` exists. Default false. */
  readonly valueInto?: boolean;
}

export interface ContractSetup {
  /**
   * A store to run one test on: fresh and empty, or a connection to a shared server (the
   * suite uses a fresh key prefix per test either way). Called once before every test.
   */
  open(): Promise<KvStore>;
  /** Releases what `open` returned; defaults to `store.close()`. Called after every test. */
  close?(store: KvStore): Promise<void>;
  /**
   * Makes the store unreachable (stops the server). Called once, in the last test, on a
   * store returned by `open()`; no test opens a store after it. Omit for embedded stores.
   */
  breakStore?(): Promise<void>;
  readonly expected: ExpectedCapabilities;
  /**
   * Store may report a conflict although the condition held (kumofs-style spurious
   * conflicts): races then require at most one winner instead of exactly one. Default false.
   */
  readonly spuriousConflicts?: boolean;
  /** How long an operation on a broken store may take before it must reject. Default 10 s. */
  readonly unavailableWithinMs?: number;
  /**
   * A fresh key prefix for one test; every key the test uses starts with it. Default
   * `ct:<12 random hex digits>:`. Redis Cluster can return `ct:{<hex>}:` so that one test's
   * keys share a hash slot and multi-key commits are possible.
   */
  newPrefix?(): string;
}

/** Bound on one ordinary store operation inside the suite. */
const OP_MS = 15_000;
/** Test timeout for cases that move many keys or large values. */
const SLOW_TEST_MS = 120_000;
/** Writers racing for the same version. */
const RACERS = 20;

/** Rejects with a message naming `what` if `promise` takes longer than `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}


/** Every byte value, so encodings that mangle NUL, high bytes or UTF-8 show up. */
function allBytes(repeat = 1): Buffer {
  const one = Buffer.from(Array.from({ length: 256 }, (_v, i) => i));
  return Buffer.concat(Array.from({ length: repeat }, () => one));
}

/** A value whose content depends on `seed`, so a round trip of the wrong record fails. */
function patterned(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (i + 4 <= size) buf.writeUInt32LE(x, i);
    else for (let j = i; j < size; j++) buf[j] = (x >>> (8 * (j - i))) & 0xff;
  }
  return buf;
}

export function describeKvStoreContract(label: string, setup: ContractSetup): void {
  const expected = setup.expected;
  const closeStore = (s: KvStore): Promise<void> => (setup.close ? setup.close(s) : s.close());

  describe(`KvStore contract: ${label}`, () => {
    let store: KvStore;
    let prefix: string;
    /** A key under this test's private prefix. */
    const k = (name: string): string => prefix + name;

    beforeEach(async () => {
      prefix = setup.newPrefix ? setup.newPrefix() : `ct:${randomBytes(6).toString('hex')}:`;
      store = await within(OP_MS, 'open()', setup.open());
    });

    afterEach(async () => {
      await within(OP_MS, 'close()', closeStore(store));
    });

    /** Puts and asserts success, returning the new version. */
    async function mustPut(key: string, value: Buffer, cond = UNCONDITIONAL): Promise<Version> {
      const r = await within(OP_MS, `put(${key})`, store.put(key, value, cond));
      if (!r.ok) throw new Error(`put(${key}, ${cond.kind}) unexpectedly reported a conflict`);
      expect(typeof r.version).toBe('string');
      return r.version;
    }

    const get = (key: string) => within(OP_MS, `get(${key})`, store.get(key));

    describe('capabilities', () => {
      it('declares the expected limits and features', () => {
        expect(store.capabilities.maxValueBytes).toBe(expected.maxValueBytes);
        expect(store.capabilities.atomicCommit).toBe(expected.atomicCommit);
        expect(typeof store.commit === 'function').toBe(expected.atomicCommit);
        expect(typeof store.scan === 'function').toBe(expected.scan);
        expect(typeof store.getValueInto === 'function').toBe(expected.valueInto ?? false);
        if (expected.maxCommitOps !== undefined) {
          expect(store.capabilities.maxCommitOps).toBe(expected.maxCommitOps);
        }
        if (expected.domains !== undefined) {
          expect(store.capabilities.placement.domains).toBe(expected.domains);
        }
        expect(typeof store.name).toBe('string');
        expect(store.name.length).toBeGreaterThan(0);
      });

      it('places keys deterministically, and keyInDomain lands on the asked domain', () => {
        const { placement } = store.capabilities;
        expect(placement.domains).toBeGreaterThanOrEqual(1);
        for (let i = 0; i < 50; i++) {
          const key = k(`place-${i}`);
          const d = placement.domainOf(key);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThan(placement.domains);
          expect(placement.domainOf(key)).toBe(d);
        }
        for (let d = 0; d < placement.domains; d++) {
          const derived = placement.keyInDomain(k('frag'), d);
          expect(placement.keyInDomain(k('frag'), d)).toBe(derived);
          expect(placement.domainOf(derived)).toBe(d);
        }
      });
    });

    describe('get and put', () => {
      it('get of a missing key is undefined', async () => {
        expect(await get(k('missing'))).toBeUndefined();
      });

      it('round-trips binary values, including every byte value and the empty value', async () => {
        const bin = allBytes(4);
        const v1 = await mustPut(k('bin'), bin);
        const got = await get(k('bin'));
        expect(got?.version).toBe(v1);
        expect(got?.value.equals(bin)).toBe(true);

        await mustPut(k('empty'), Buffer.alloc(0));
        const empty = await get(k('empty'));
        expect(empty).toBeDefined();
        expect(empty?.value.length).toBe(0);
      });

      it('round-trips a key of MAX_KEY_BYTES with punctuation', async () => {
        const head = k('p!#$%&()*+,-./:;<=>?@[]^_`{|}~');
        const key = head + 'x'.repeat(MAX_KEY_BYTES - head.length);
        expect(key.length).toBe(MAX_KEY_BYTES);
        await mustPut(key, Buffer.from('long key'));
        expect((await get(key))?.value.toString()).toBe('long key');
        expect(await get(key.slice(0, -1))).toBeUndefined();
      });

      it('keeps stored values apart from the caller’s buffers', async () => {
        const value = Buffer.from('original');
        await mustPut(k('iso'), value);
        value.fill(0x58);
        const first = await get(k('iso'));
        expect(first?.value.toString()).toBe('original');
        first?.value.fill(0x59);
        expect((await get(k('iso')))?.value.toString()).toBe('original');
      });

      it('an unconditional overwrite gives a new version and the new value', async () => {
        const v1 = await mustPut(k('ow'), Buffer.from('same'));
        const v2 = await mustPut(k('ow'), Buffer.from('same'));
        expect(v2).not.toBe(v1);
        const got = await get(k('ow'));
        expect(got?.version).toBe(v2);
        expect((await store.put(k('ow'), Buffer.from('x'), ifVersion(v1))).ok).toBe(false);
      });

      it('ifAbsent on an existing key fails and changes nothing', async () => {
        const v1 = await mustPut(k('abs'), Buffer.from('first'));
        const r = await within(OP_MS, 'put', store.put(k('abs'), Buffer.from('second'), IF_ABSENT));
        expect(r.ok).toBe(false);
        const got = await get(k('abs'));
        expect(got?.value.toString()).toBe('first');
        expect(got?.version).toBe(v1);
      });

      it('ifAbsent on a missing key creates it', async () => {
        const v = await mustPut(k('new'), Buffer.from('n'), IF_ABSENT);
        expect((await get(k('new')))?.version).toBe(v);
      });

      it('ifVersion with a stale version fails and changes nothing', async () => {
        const v1 = await mustPut(k('cas'), Buffer.from('a'));
        const v2 = await mustPut(k('cas'), Buffer.from('b'), ifVersion(v1));
        const r = await within(OP_MS, 'put', store.put(k('cas'), Buffer.from('c'), ifVersion(v1)));
        expect(r.ok).toBe(false);
        const got = await get(k('cas'));
        expect(got?.value.toString()).toBe('b');
        expect(got?.version).toBe(v2);
      });

      it('ifVersion with the current version succeeds with a new version', async () => {
        const v1 = await mustPut(k('cas'), Buffer.from('a'));
        const v2 = await mustPut(k('cas'), Buffer.from('b'), ifVersion(v1));
        expect(v2).not.toBe(v1);
        const got = await get(k('cas'));
        expect(got?.value.toString()).toBe('b');
        expect(got?.version).toBe(v2);
      });

      it('ifVersion on a missing key fails and does not create it', async () => {
        const v1 = await mustPut(k('other'), Buffer.from('a'));
        const r = await within(OP_MS, 'put', store.put(k('gone'), Buffer.from('x'), ifVersion(v1)));
        expect(r.ok).toBe(false);
        expect(await get(k('gone'))).toBeUndefined();
      });

      it('versions never repeat across delete and recreate (no ABA)', async () => {
        const seen = new Set<Version>();
        let previous: Version | undefined;
        for (let i = 0; i < 5; i++) {
          const v = await mustPut(k('aba'), Buffer.from('same'), IF_ABSENT);
          expect(seen.has(v)).toBe(false);
          seen.add(v);
          if (previous !== undefined) {
            const stale = await store.put(k('aba'), Buffer.from('x'), ifVersion(previous));
            expect(stale.ok).toBe(false);
          }
          expect(await within(OP_MS, 'delete', store.delete(k('aba')))).toBe(true);
          previous = v;
        }
      });
    });

    describe('delete', () => {
      it('deleting a missing key returns false', async () => {
        expect(await within(OP_MS, 'delete', store.delete(k('none')))).toBe(false);
      });

      it('an unconditional delete removes the record, and ifAbsent succeeds afterwards', async () => {
        await mustPut(k('d'), Buffer.from('x'));
        expect(await within(OP_MS, 'delete', store.delete(k('d'), UNCONDITIONAL))).toBe(true);
        expect(await get(k('d'))).toBeUndefined();
        await mustPut(k('d'), Buffer.from('y'), IF_ABSENT);
      });

      it('a delete with a stale version fails and keeps the record', async () => {
        const v1 = await mustPut(k('d'), Buffer.from('a'));
        const v2 = await mustPut(k('d'), Buffer.from('b'));
        expect(await within(OP_MS, 'delete', store.delete(k('d'), ifVersion(v1)))).toBe(false);
        const got = await get(k('d'));
        expect(got?.value.toString()).toBe('b');
        expect(got?.version).toBe(v2);
      });

      it('a delete with the current version removes the record', async () => {
        const v1 = await mustPut(k('d'), Buffer.from('a'));
        expect(await within(OP_MS, 'delete', store.delete(k('d'), ifVersion(v1)))).toBe(true);
        expect(await get(k('d'))).toBeUndefined();
      });
    });

    describe('races', () => {
      /** Asserts the race outcome: one winner (or at most one if spurious conflicts). */
      function expectOneWinner(wins: number): void {
        if (setup.spuriousConflicts) expect(wins).toBeLessThanOrEqual(1);
        else expect(wins).toBe(1);
      }

      it(`exactly one of ${RACERS} concurrent ifVersion puts from the same version wins`, async () => {
        const v0 = await mustPut(k('race'), Buffer.from('start'));
        const results = await within(
          OP_MS,
          'racing puts',
          Promise.all(
            Array.from({ length: RACERS }, (_v, i) =>
              store.put(k('race'), Buffer.from(`writer-${i}`), ifVersion(v0)),
            ),
          ),
        );
        const winners = results.flatMap((r, i) => (r.ok ? [{ i, version: r.version }] : []));
        expectOneWinner(winners.length);
        const got = await get(k('race'));
        if (winners.length === 1) {
          expect(got?.value.toString()).toBe(`writer-${winners[0].i}`);
          expect(got?.version).toBe(winners[0].version);
        } else {
          expect(got?.version).toBe(v0);
        }
      });

      it(`exactly one of ${RACERS} concurrent ifAbsent puts wins`, async () => {
        const results = await within(
          OP_MS,
          'racing puts',
          Promise.all(
            Array.from({ length: RACERS }, (_v, i) =>
              store.put(k('race'), Buffer.from(`writer-${i}`), IF_ABSENT),
            ),
          ),
        );
        const winners = results.flatMap((r, i) => (r.ok ? [{ i, version: r.version }] : []));
        expectOneWinner(winners.length);
        const got = await get(k('race'));
        if (winners.length === 1) {
          expect(got?.value.toString()).toBe(`writer-${winners[0].i}`);
          expect(got?.version).toBe(winners[0].version);
        } else {
          expect(got).toBeUndefined();
        }
      });

      it(`exactly one of ${RACERS} concurrent ifVersion deletes succeeds`, async () => {
        const v0 = await mustPut(k('race'), Buffer.from('start'));
        const results = await within(
          OP_MS,
          'racing deletes',
          Promise.all(Array.from({ length: RACERS }, () => store.delete(k('race'), ifVersion(v0)))),
        );
        expectOneWinner(results.filter(Boolean).length);
      });
    });

    describe('getMany', () => {
      it('returns [] for no keys', async () => {
        expect(await within(OP_MS, 'getMany', store.getMany([]))).toEqual([]);
      });

      it(
        'returns 1000 keys in order, with undefined for misses and repeats honoured',
        async () => {
          const keys = Array.from({ length: 1000 }, (_v, i) => k(`many-${i}`));
          const present = keys.filter((_key, i) => i % 3 !== 0);
          const versions = new Map<string, Version>();
          await within(
            SLOW_TEST_MS / 2,
            'putting 1000 keys',
            pMap(present, async (key) => {
              versions.set(key, await mustPut(key, Buffer.from(`v:${key}`)));
            }, { concurrency: 32 }),
          );
          const asked = [...keys, keys[1], keys[0]];
          const got = await within(OP_MS * 2, 'getMany(1002 keys)', store.getMany(asked));
          expect(got.length).toBe(asked.length);
          asked.forEach((key, i) => {
            const expectedVersion = versions.get(key);
            if (expectedVersion === undefined) {
              expect(got[i], `entry ${i}`).toBeUndefined();
            } else {
              expect(got[i]?.value.toString(), `entry ${i}`).toBe(`v:${key}`);
              expect(got[i]?.version, `entry ${i}`).toBe(expectedVersion);
            }
          });
        },
        SLOW_TEST_MS,
      );
    });

    if (expected.valueInto) {
      describe('getValueInto', () => {
        /** Memory handed out by the alloc under test, reused on purpose: dirty, as a pool's is. */
        const arena = Buffer.alloc(expected.maxValueBytes, 0xee);
        const calls: number[] = [];
        const alloc = (bytes: number): Buffer => {
          calls.push(bytes);
          return arena.subarray(0, bytes);
        };

        it('copies values of every size into the memory alloc gives, asking once for the exact length', async () => {
          const sizes = [0, 1, 4095, 32 * 1024 + 1, expected.maxValueBytes, 3];
          for (const [i, size] of sizes.entries()) {
            const value = patterned(size, 11 + i);
            await mustPut(k(`into-${i}`), value);
          }
          for (const [i, size] of sizes.entries()) {
            calls.length = 0;
            const got = await within(OP_MS, 'getValueInto', store.getValueInto!(k(`into-${i}`), alloc));
            expect(calls).toEqual([size]);
            expect(got?.buffer).toBe(arena.buffer);
            expect(got?.equals(patterned(size, 11 + i)), `value of ${size} bytes`).toBe(true);
          }
        }, SLOW_TEST_MS);

        it('a missing key gives undefined without asking for memory', async () => {
          calls.length = 0;
          expect(await within(OP_MS, 'getValueInto', store.getValueInto!(k('absent'), alloc))).toBeUndefined();
          expect(calls).toEqual([]);
        });

        it('a copy stays right after later reads and writes of other keys', async () => {
          const a = patterned(Math.min(200_000, expected.maxValueBytes), 21);
          const b = patterned(Math.min(300_000, expected.maxValueBytes), 22);
          await mustPut(k('a'), a);
          await mustPut(k('b'), b);
          const own = (bytes: number) => Buffer.alloc(bytes);
          const gotA = await store.getValueInto!(k('a'), own);
          await store.getValueInto!(k('b'), own);
          await store.get(k('b'));
          await mustPut(k('a'), b);
          expect(gotA?.equals(a)).toBe(true);
        });
      });
    }

    describe('value size limit', () => {
      it(
        `a value of exactly maxValueBytes (${expected.maxValueBytes}) round-trips`,
        async () => {
          const big = patterned(expected.maxValueBytes, 7);
          const v = await mustPut(k('max'), big, IF_ABSENT);
          const got = await get(k('max'));
          expect(got?.version).toBe(v);
          expect(got?.value.length).toBe(big.length);
          expect(got?.value.equals(big)).toBe(true);
        },
        SLOW_TEST_MS,
      );

      it(
        'one byte more throws ValueTooLarge and stores nothing',
        async () => {
          const tooBig = Buffer.alloc(expected.maxValueBytes + 1, 1);
          await expect(within(OP_MS, 'put', store.put(k('over'), tooBig))).rejects.toBeInstanceOf(
            ValueTooLarge,
          );
          expect(await get(k('over'))).toBeUndefined();
        },
        SLOW_TEST_MS,
      );
    });

    if (expected.scan) {
      describe('scan', () => {
        it('lists exactly the keys under a prefix', async () => {
          const scan = store.scan?.bind(store);
          if (!scan) throw new Error('store declares scan but has none');
          const inside = ['dir/a', 'dir/b', 'dir/c/d', 'dir/'].map(k);
          const outside = ['dia', 'dis', 'di', 'other/dir/a'].map(k);
          for (const key of [...inside, ...outside]) await mustPut(key, Buffer.from('s'));
          const listed: string[] = [];
          const collect = async (): Promise<void> => {
            for await (const key of scan(k('dir/'))) listed.push(key);
          };
          await within(OP_MS, 'scan', collect());
          expect(listed.sort()).toEqual([...inside].sort());

          await within(OP_MS, 'delete', store.delete(k('dir/b')));
          const after: string[] = [];
          for await (const key of scan(k('dir/'))) after.push(key);
          expect(after.sort()).toEqual(inside.filter((key) => key !== k('dir/b')).sort());
        });

        it('lists nothing under an unused prefix', async () => {
          const listed: string[] = [];
          for await (const key of store.scan?.(k('nothing/')) ?? []) listed.push(key);
          expect(listed).toEqual([]);
        });
      });
    }

    if (expected.atomicCommit) {
      describe('commit', () => {
        /** The store's commit, which the capabilities test already proved present. */
        const commit = (ops: readonly CommitOp[], checks?: Parameters<NonNullable<KvStore['commit']>>[1]) => {
          if (!store.commit) throw new Error('store declares atomicCommit but has no commit');
          return within(OP_MS, 'commit', store.commit(ops, checks));
        };

        /** Snapshot of keys as `value@version` strings, to prove nothing changed. */
        async function snapshot(keys: readonly string[]): Promise<(string | undefined)[]> {
          const got = await within(OP_MS, 'getMany', store.getMany(keys));
          return got.map((g) => (g ? `${g.value.toString('hex')}@${g.version}` : undefined));
        }

        it('applies puts (none, ifAbsent, ifVersion) and deletes together', async () => {
          const va = await mustPut(k('a'), Buffer.from('a0'));
          const vd = await mustPut(k('d'), Buffer.from('d0'));
          await mustPut(k('e'), Buffer.from('e0'));
          const attempt = () =>
            commit([
              { key: k('a'), value: Buffer.from('a1'), condition: ifVersion(va) },
              { key: k('b'), value: Buffer.from('b1'), condition: IF_ABSENT },
              { key: k('c'), value: allBytes(), condition: UNCONDITIONAL },
              { key: k('d'), value: null, condition: ifVersion(vd) },
              { key: k('e'), value: null, condition: UNCONDITIONAL },
            ]);
          // A store that fails CAS spuriously may fail a commit too; a failed one changed nothing.
          let ok = await attempt();
          for (let i = 0; !ok && setup.spuriousConflicts && i < 20; i++) ok = await attempt();
          expect(ok).toBe(true);
          const [a, b, c, d, e] = await store.getMany(['a', 'b', 'c', 'd', 'e'].map(k));
          expect(a?.value.toString()).toBe('a1');
          expect(a?.version).not.toBe(va);
          expect(b?.value.toString()).toBe('b1');
          expect(c?.value.equals(allBytes())).toBe(true);
          expect(d).toBeUndefined();
          expect(e).toBeUndefined();
          // The new versions are real versions: they allow the next CAS.
          if (!a) throw new Error('a vanished');
          await mustPut(k('a'), Buffer.from('a2'), ifVersion(a.version));
        });

        it('passes with checks that hold, including absent keys checked as null', async () => {
          const vx = await mustPut(k('x'), Buffer.from('x'));
          const attempt = () =>
            commit(
              [{ key: k('a'), value: Buffer.from('a'), condition: UNCONDITIONAL }],
              [
                { key: k('x'), version: vx },
                { key: k('absent'), version: null },
              ],
            );
          let ok = await attempt();
          // A store with spurious conflicts may refuse a commit that should pass; callers retry.
          for (let i = 0; !ok && setup.spuriousConflicts && i < 20; i++) ok = await attempt();
          expect(ok).toBe(true);
          expect((await get(k('a')))?.value.toString()).toBe('a');
          expect((await get(k('x')))?.version).toBe(vx);
        });

        it('a failing condition in the middle leaves every key unchanged', async () => {
          const keys = ['a', 'b', 'c', 'd'].map(k);
          const va = await mustPut(keys[0], Buffer.from('a0'));
          const vb1 = await mustPut(keys[1], Buffer.from('b0'));
          await mustPut(keys[1], Buffer.from('b1'));
          await mustPut(keys[3], Buffer.from('d0'));
          const before = await snapshot(keys);
          const ok = await commit([
            { key: keys[0], value: Buffer.from('a-new'), condition: ifVersion(va) },
            { key: keys[1], value: Buffer.from('b-new'), condition: ifVersion(vb1) },
            { key: keys[2], value: Buffer.from('c-new'), condition: IF_ABSENT },
            { key: keys[3], value: null, condition: UNCONDITIONAL },
          ]);
          expect(ok).toBe(false);
          expect(await snapshot(keys)).toEqual(before);
        });

        it('an ifAbsent on an existing key in the middle leaves every key unchanged', async () => {
          const keys = ['a', 'b', 'c'].map(k);
          await mustPut(keys[1], Buffer.from('b0'));
          const before = await snapshot(keys);
          const ok = await commit([
            { key: keys[0], value: Buffer.from('a-new'), condition: IF_ABSENT },
            { key: keys[1], value: Buffer.from('b-new'), condition: IF_ABSENT },
            { key: keys[2], value: Buffer.from('c-new'), condition: UNCONDITIONAL },
          ]);
          expect(ok).toBe(false);
          expect(await snapshot(keys)).toEqual(before);
        });

        it('a stale delete in the middle leaves every key unchanged', async () => {
          const keys = ['a', 'b', 'c'].map(k);
          const vb = await mustPut(keys[1], Buffer.from('b0'));
          await mustPut(keys[1], Buffer.from('b1'));
          const before = await snapshot(keys);
          const ok = await commit([
            { key: keys[0], value: Buffer.from('a-new'), condition: UNCONDITIONAL },
            { key: keys[1], value: null, condition: ifVersion(vb) },
            { key: keys[2], value: Buffer.from('c-new'), condition: IF_ABSENT },
          ]);
          expect(ok).toBe(false);
          expect(await snapshot(keys)).toEqual(before);
        });

        it('a failing check leaves every key unchanged', async () => {
          const keys = ['a', 'b', 'x', 'y'].map(k);
          const vx = await mustPut(keys[2], Buffer.from('x0'));
          await mustPut(keys[2], Buffer.from('x1'));
          const vy = await mustPut(keys[3], Buffer.from('y0'));
          const before = await snapshot(keys);
          const ops: CommitOp[] = [
            { key: keys[0], value: Buffer.from('a-new'), condition: UNCONDITIONAL },
            { key: keys[1], value: Buffer.from('b-new'), condition: IF_ABSENT },
          ];
          expect(await commit(ops, [{ key: keys[3], version: vy }, { key: keys[2], version: vx }])).toBe(false);
          expect(await snapshot(keys)).toEqual(before);
          // A key checked as absent that exists also fails the commit.
          expect(await commit(ops, [{ key: keys[3], version: null }])).toBe(false);
          expect(await snapshot(keys)).toEqual(before);
        });

        it('an oversized value in a commit throws ValueTooLarge and changes nothing', async () => {
          const keys = ['a', 'b'].map(k);
          await mustPut(keys[0], Buffer.from('a0'));
          const before = await snapshot(keys);
          const ops: CommitOp[] = [
            { key: keys[0], value: Buffer.from('a1'), condition: UNCONDITIONAL },
            { key: keys[1], value: Buffer.alloc(expected.maxValueBytes + 1), condition: UNCONDITIONAL },
          ];
          await expect(commit(ops)).rejects.toBeInstanceOf(ValueTooLarge);
          expect(await snapshot(keys)).toEqual(before);
        });

        it(`exactly one of ${RACERS} concurrent commits over overlapping keys wins`, async () => {
          const shared = [k('s1'), k('s2')];
          const v1 = await mustPut(shared[0], Buffer.from('s1'));
          const v2 = await mustPut(shared[1], Buffer.from('s2'));
          const results = await within(
            OP_MS,
            'racing commits',
            Promise.all(
              Array.from({ length: RACERS }, (_v, i) => {
                if (!store.commit) throw new Error('no commit');
                // Half the racers touch the shared keys in reverse order, to catch lock-order bugs.
                const ops: CommitOp[] = [
                  { key: shared[0], value: Buffer.from(`w${i}`), condition: ifVersion(v1) },
                  { key: k(`own-${i}`), value: Buffer.from(`w${i}`), condition: IF_ABSENT },
                  { key: shared[1], value: Buffer.from(`w${i}`), condition: ifVersion(v2) },
                ];
                return store.commit(i % 2 ? ops.slice().reverse() : ops);
              }),
            ),
          );
          const winners = results.flatMap((ok, i) => (ok ? [i] : []));
          if (setup.spuriousConflicts) expect(winners.length).toBeLessThanOrEqual(1);
          else expect(winners.length).toBe(1);
          const own = await store.getMany(Array.from({ length: RACERS }, (_v, i) => k(`own-${i}`)));
          own.forEach((g, i) => expect(g === undefined, `own-${i}`).toBe(!winners.includes(i)));
          const [s1, s2] = await store.getMany(shared);
          const want = winners.length === 1 ? `w${winners[0]}` : undefined;
          expect(s1?.value.toString()).toBe(want ?? 's1');
          expect(s2?.value.toString()).toBe(want ?? 's2');
        });

        it(`exactly one of ${RACERS} concurrent ifAbsent commits on one key wins`, async () => {
          const results = await within(
            OP_MS,
            'racing commits',
            Promise.all(
              Array.from({ length: RACERS }, (_v, i) => {
                if (!store.commit) throw new Error('no commit');
                return store.commit([
                  { key: k(`side-${i}`), value: Buffer.from(`w${i}`), condition: UNCONDITIONAL },
                  { key: k('one'), value: Buffer.from(`w${i}`), condition: IF_ABSENT },
                ]);
              }),
            ),
          );
          const winners = results.flatMap((ok, i) => (ok ? [i] : []));
          if (setup.spuriousConflicts) expect(winners.length).toBeLessThanOrEqual(1);
          else expect(winners.length).toBe(1);
          const side = await store.getMany(Array.from({ length: RACERS }, (_v, i) => k(`side-${i}`)));
          side.forEach((g, i) => expect(g === undefined, `side-${i}`).toBe(!winners.includes(i)));
        });

        it('takes maxCommitOps ops and checks in one commit', async () => {
          const n = Math.min(store.capabilities.maxCommitOps, 256);
          expect(n).toBeGreaterThanOrEqual(2);
          const vc = await mustPut(k('checked'), Buffer.from('c'));
          const ops: CommitOp[] = Array.from({ length: n - 1 }, (_v, i) => ({
            key: k(`bulk-${i}`),
            value: Buffer.from(`b${i}`),
            condition: IF_ABSENT,
          }));
          // A store with spurious conflicts may refuse a commit this wide now and then (each of
          // its keys can conflict); callers retry, and nothing was applied in between.
          let applied = await commit(ops, [{ key: k('checked'), version: vc }]);
          for (let retry = 0; !applied && setup.spuriousConflicts && retry < 10; retry++) {
            applied = await commit(ops, [{ key: k('checked'), version: vc }]);
          }
          expect(applied).toBe(true);
          const got = await store.getMany(ops.map((op) => op.key));
          got.forEach((g, i) => expect(g?.value.toString()).toBe(`b${i}`));
        });
      });
    }

    it('close() is idempotent', async () => {
      const extra = await within(OP_MS, 'open()', setup.open());
      await within(OP_MS, 'close()', closeStore(extra));
      await within(OP_MS, 'second close()', closeStore(extra));
    });

    const breakStore = setup.breakStore?.bind(setup);
    if (breakStore) {
      const limitMs = setup.unavailableWithinMs ?? 10_000;
      it(
        `rejects with StoreUnavailable or StoreTimeout within ${limitMs} ms once the server is gone`,
        async () => {
          const v = await mustPut(k('before'), Buffer.from('x'));
          await within(OP_MS * 2, 'breakStore()', breakStore());
          const attempts: [string, () => Promise<unknown>][] = [
            ['get', () => store.get(k('before'))],
            ['put', () => store.put(k('after'), Buffer.from('y'), IF_ABSENT)],
            ['put ifVersion', () => store.put(k('before'), Buffer.from('y'), ifVersion(v))],
            ['getMany', () => store.getMany([k('before'), k('after')])],
            ['delete', () => store.delete(k('before'))],
          ];
          for (const [what, attempt] of attempts) {
            const started = Date.now();
            // The margin lets a backend with a limitMs timeout report it as StoreTimeout.
            const outcome = await within(limitMs + 2_000, `${what} on a broken store`, attempt()).then(
              () => new Error(`${what} on a broken store resolved instead of rejecting`),
              (err: unknown) => err,
            );
            expect(
              outcome instanceof StoreUnavailable || outcome instanceof StoreTimeout,
              `${what}: ${String(outcome)}`,
            ).toBe(true);
            expect((outcome as Error).message.length).toBeGreaterThan(10);
            expect(Date.now() - started).toBeLessThanOrEqual(limitMs + 1_000);
          }
        },
        SLOW_TEST_MS,
      );
    }
  });
}
