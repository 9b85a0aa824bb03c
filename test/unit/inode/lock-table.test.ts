import fc from 'fast-check';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { decodeRecord } from '../../../src/chunk/record-codec.js';
import { VolumeKeys } from '../../../src/inode/keys.js';
import { TO_EOF, type LockType } from '../../../src/inode/locks/lock-ranges.js';
import { LockTable, type LockRecord } from '../../../src/inode/locks/lock-table.js';

const log = pino({ level: 'silent' });
const keys = new VolumeKeys('t:');
const INO = 7;

function table(store: MemoryStore, mountId: string, now?: () => number, leaseMs = 1000): LockTable {
  return new LockTable({ store, keys, log, mountId, now, leaseMs });
}

const posix = (owner: string, type: LockType | undefined, start: number, end: number, fh = 1) => ({ owner, fh, pid: 100, kind: 'posix' as const, type, start, end });

describe('LockTable on the memory store', () => {
  let store: MemoryStore;
  let a: LockTable;
  let b: LockTable;

  beforeEach(() => {
    store = new MemoryStore();
    a = table(store, 'A');
    b = table(store, 'B');
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it('a write lock on one mount refuses an overlapping lock on another, and reports it to getlk', async () => {
    expect(await a.set(INO, posix('1', 'write', 0, 100))).toBeUndefined();
    const conflict = await b.set(INO, posix('2', 'read', 50, 60));
    expect(conflict).toMatchObject({ mount: 'A', owner: '1', type: 'write', start: 0, end: 100 });
    expect(await b.test(INO, { ...posix('2', 'read', 99, TO_EOF), type: 'read' })).toMatchObject({ mount: 'A' });
    expect(await b.set(INO, posix('2', 'write', 100, TO_EOF))).toBeUndefined();
    await a.releaseOwner(INO, '1', 'posix');
    expect(await b.set(INO, posix('2', 'write', 0, 10))).toBeUndefined();
  });

  it('read locks share; flock and posix locks do not see each other', async () => {
    expect(await a.set(INO, posix('1', 'read', 0, TO_EOF))).toBeUndefined();
    expect(await b.set(INO, posix('2', 'read', 0, TO_EOF))).toBeUndefined();
    expect(await b.set(INO, { ...posix('3', 'write', 0, TO_EOF), kind: 'flock' })).toBeUndefined();
    expect(await a.set(INO, { ...posix('4', 'read', 0, TO_EOF), kind: 'flock' })).toMatchObject({ kind: 'flock', owner: '3' });
  });

  it('the last close of a file drops the locks taken through it, and the record goes with the last lock', async () => {
    await a.set(INO, posix('1', 'write', 0, 10, 5));
    await a.set(INO, posix('1', 'write', 20, 30, 6));
    await a.releaseHandle(INO, 5);
    expect(await b.set(INO, posix('2', 'write', 0, 10))).toBeUndefined();
    expect(await b.set(INO, posix('2', 'write', 25, 26))).toMatchObject({ start: 20, end: 30 });
    await a.releaseHandle(INO, 6);
    await b.releaseOwner(INO, '2', 'posix');
    expect(await store.get(keys.locks(INO))).toBeUndefined();
  });

  it("a dead mount's locks stop counting once its lease expires, and are dropped from the record", async () => {
    await a.set(INO, posix('1', 'write', 0, TO_EOF));
    const late = table(store, 'C', () => Date.now() + 1001);
    try {
      expect(await b.set(INO, posix('2', 'write', 0, 1))).toBeDefined();
      expect(await late.set(INO, posix('3', 'write', 0, 1))).toBeUndefined();
      const record = decodeRecord<LockRecord>('l', (await store.get(keys.locks(INO)))!.value);
      expect(record.locks.map((h) => h.mount)).toEqual(['C']);
    } finally {
      await late.close();
    }
  });

  it('close drops the mount\'s locks and its lease record', async () => {
    await a.set(INO, posix('1', 'write', 0, 10));
    expect(await store.get(keys.mountLease('A'))).toBeDefined();
    await a.close();
    expect(await store.get(keys.mountLease('A'))).toBeUndefined();
    expect(await b.set(INO, posix('2', 'write', 0, 10))).toBeUndefined();
  });

  it('after close, a new lock is refused (EIO) and no lease is written again', async () => {
    await a.set(INO, posix('1', 'write', 0, 10));
    await a.close();
    await expect(a.set(INO, posix('1', 'write', 0, 10))).rejects.toMatchObject({ code: 'EIO' });
    expect(await store.get(keys.mountLease('A'))).toBeUndefined();
  });

  it('changed() wakes a waiter when a lock of the mount is released', async () => {
    await a.set(INO, posix('1', 'write', 0, 10));
    const started = Date.now();
    const woken = a.changed(INO, 10_000);
    await a.releaseOwner(INO, '1', 'posix');
    await woken;
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

/** The model: per owner, the type held on each byte of [0, SPAN); TO_EOF ends at SPAN. */
const SPAN = 32;
type Cells = (LockType | undefined)[];

describe('LockTable against a byte-by-byte model (fast-check)', () => {
  const owners = [
    { mount: 'A', owner: '1' },
    { mount: 'A', owner: '2' },
    { mount: 'B', owner: '1' },
  ];
  const op = fc.record({
    who: fc.integer({ min: 0, max: owners.length - 1 }),
    type: fc.constantFrom<LockType | undefined>('read', 'write', undefined),
    start: fc.integer({ min: 0, max: 12 }),
    len: fc.integer({ min: 0, max: 6 }),
    probe: fc.boolean(),
  });

  it('grants, refuses, reports and keeps ranges as the model does', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
        const store = new MemoryStore();
        const tables = { A: table(store, 'A'), B: table(store, 'B') };
        const model: Cells[] = owners.map(() => Array<LockType | undefined>(SPAN).fill(undefined));
        try {
          for (const { who, type, start, len, probe } of ops) {
            const end = len === 0 ? TO_EOF : start + len;
            const modelEnd = len === 0 ? SPAN : start + len;
            const { mount, owner } = owners[who];
            const conflicting = (t: LockType) =>
              model.some((cells, other) => other !== who && cells.slice(start, modelEnd).some((c) => c !== undefined && (c === 'write' || t === 'write')));
            if (probe && type !== undefined) {
              const found = await tables[mount as 'A' | 'B'].test(INO, { ...posix(owner, type, start, end), type });
              expect(found !== undefined).toBe(conflicting(type));
              if (found) {
                const holder = owners.findIndex((o) => o.mount === found.mount && o.owner === found.owner);
                const foundEnd = found.end === TO_EOF ? SPAN : found.end;
                expect(holder).not.toBe(who);
                for (let i = found.start; i < foundEnd; i++) expect(model[holder][i]).toBe(found.type);
              }
              continue;
            }
            const refused = await tables[mount as 'A' | 'B'].set(INO, posix(owner, type, start, end));
            const expected = type !== undefined && conflicting(type);
            expect(refused !== undefined).toBe(expected);
            if (!expected) model[who].fill(type, start, modelEnd);
          }
          const bytes = await store.get(keys.locks(INO));
          const held = bytes ? decodeRecord<LockRecord>('l', bytes.value).locks : [];
          const stored: Cells[] = owners.map(() => Array<LockType | undefined>(SPAN).fill(undefined));
          for (const h of held) {
            const who = owners.findIndex((o) => o.mount === h.mount && o.owner === h.owner);
            for (let i = h.start; i < (h.end === TO_EOF ? SPAN : h.end); i++) {
              expect(stored[who][i], 'ranges of one owner never overlap').toBeUndefined();
              stored[who][i] = h.type;
            }
          }
          expect(stored).toEqual(model);
        } finally {
          await tables.A.close();
          await tables.B.close();
        }
      }),
      { numRuns: 200, seed: 12 },
    );
  });
});
