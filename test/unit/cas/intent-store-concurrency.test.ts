import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ifVersion } from '../../../src/backends/kv-store.js';
import { InjectedCrash } from '../../../src/cas/fault-points.js';
import { TAG_INTENT } from '../../../src/cas/intent-codec.js';
import type { IntentCommitStore } from '../../../src/cas/intent-store.js';
import { CONFLICT, retryOnConflict } from '../../../src/cas/retry.js';
import { LOCK_TIMEOUT_MS, NAMESPACE, SharedStore } from '../../helpers/intent-fixture.js';
import type { NoCommitStoreOptions } from '../../helpers/no-commit-store.js';
import { seededRandom } from '../../helpers/seeded-random.js';

const ACCOUNTS = ['acct:0', 'acct:1', 'acct:2', 'acct:3', 'acct:4'];
const INITIAL = 100;

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Outcome {
  readonly txid: string;
  readonly from: string;
  readonly to: string;
  readonly amount: number;
  /** true / false as commit returned, or 'crashed'. */
  readonly result: boolean | 'crashed';
}

interface Bank {
  readonly shared: SharedStore;
  /** Transactions whose intent reached "committed" in the store. */
  readonly committed: Set<string>;
  readonly outcomes: Outcome[];
}

function openBank(): Bank {
  return { shared: new SharedStore(), committed: new Set(), outcomes: [] };
}

/** Store options that record commit points and reorder calls as a network would. */
function storeOptions(bank: Bank, random: () => number, extra: NoCommitStoreOptions = {}): NoCommitStoreOptions {
  return {
    beforeOperation: () => (random() < 0.5 ? tick() : undefined),
    onPut: (key, value) => {
      if (key.startsWith(NAMESPACE) && value[0] === TAG_INTENT) {
        const state = (JSON.parse(value.subarray(1).toString()) as { s: string }).s;
        if (state === 'committed') bank.committed.add(key.slice(`${NAMESPACE}x:`.length));
      }
    },
    ...extra,
  };
}

async function seedAccounts(bank: Bank): Promise<void> {
  const setup = bank.shared.client();
  for (const key of ACCOUNTS) await setup.put(key, Buffer.from(String(INITIAL)));
}

/**
 * One client ("process") moving random amounts between random accounts, each transfer a
 * read-modify-write of two keys committed atomically and retried on conflict. Stops at its
 * first injected crash.
 */
async function runClient(
  bank: Bank,
  name: string,
  transfers: number,
  seed: number,
  make: (newTxId: () => string) => IntentCommitStore,
): Promise<void> {
  const random = seededRandom(seed);
  let lastTxid = '';
  let n = 0;
  const client = make(() => (lastTxid = `${name}-${n++}`));
  for (let i = 0; i < transfers; i++) {
    const from = ACCOUNTS[Math.floor(random() * ACCOUNTS.length)];
    const to = ACCOUNTS.filter((a) => a !== from)[Math.floor(random() * (ACCOUNTS.length - 1))];
    const amount = 1 + Math.floor(random() * 10);
    try {
      await retryOnConflict(
        async () => {
          // Cleared first, so a crash before commit() is not blamed on an earlier transaction.
          lastTxid = '';
          const [f, t] = await client.getMany([from, to]);
          if (!f || !t) throw new Error('an account vanished');
          const ok = await client.commit([
            { key: from, value: Buffer.from(String(Number(f.value.toString()) - amount)), condition: ifVersion(f.version) },
            { key: to, value: Buffer.from(String(Number(t.value.toString()) + amount)), condition: ifVersion(t.version) },
          ]);
          bank.outcomes.push({ txid: lastTxid, from, to, amount, result: ok });
          return ok ? true : CONFLICT;
        },
        { attempts: 500, baseDelayMs: 1, maxDelayMs: 20, random, sleep: tick, operation: 'transfer' },
      );
    } catch (err) {
      if (!(err instanceof InjectedCrash)) throw err;
      if (lastTxid) bank.outcomes.push({ txid: lastTxid, from, to, amount, result: 'crashed' });
      return;
    }
  }
}

/**
 * After every client finished or died and fsck ran: no lock or intent is left, money is
 * conserved, every commit that returned true (and no commit that returned false) reached its
 * commit point, and each balance is exactly the initial one plus the committed transfers.
 */
async function checkBank(bank: Bank): Promise<void> {
  bank.shared.clock.advance(LOCK_TIMEOUT_MS + 1);
  await bank.shared.client().recover();
  expect(bank.shared.leftovers()).toEqual({ intents: [], envelopes: [] });
  const expected = new Map(ACCOUNTS.map((a) => [a, INITIAL]));
  for (const o of bank.outcomes) {
    if (o.result === true) expect(bank.committed.has(o.txid), `${o.txid} returned true`).toBe(true);
    if (o.result === false) expect(bank.committed.has(o.txid), `${o.txid} returned false`).toBe(false);
    if (bank.committed.has(o.txid)) {
      expected.set(o.from, (expected.get(o.from) ?? 0) - o.amount);
      expected.set(o.to, (expected.get(o.to) ?? 0) + o.amount);
    }
  }
  const got = await bank.shared.client().getMany(ACCOUNTS);
  const balances = got.map((g) => Number(g?.value.toString()));
  expect(balances.reduce((a, x) => a + x, 0)).toBe(INITIAL * ACCOUNTS.length);
  expect(Object.fromEntries(ACCOUNTS.map((a, i) => [a, balances[i]]))).toEqual(Object.fromEntries(expected));
}

async function runBank(
  clients: number,
  transfers: number,
  seed: number,
  options: Parameters<SharedStore['client']>[0] = {},
  store: NoCommitStoreOptions = {},
): Promise<Bank> {
  const bank = openBank();
  await seedAccounts(bank);
  await Promise.all(
    Array.from({ length: clients }, (_v, c) =>
      runClient(bank, `c${c}`, transfers, seed * 100 + c, (newTxId) =>
        bank.shared.client(
          { newTxId, random: seededRandom(seed * 1000 + c), ...options },
          storeOptions(bank, seededRandom(seed * 7 + c), store),
        ),
      ),
    ),
  );
  await checkBank(bank);
  return bank;
}

describe('IntentCommitStore: concurrent commits from several clients', () => {
  it('4 clients x 25 transfers over 5 accounts: serializable, no lost update', async () => {
    const bank = await runBank(4, 25, 1);
    expect(bank.outcomes.filter((o) => o.result === true).length).toBe(100);
    // They did collide: some commits lost and were retried.
    expect(bank.outcomes.some((o) => o.result === false)).toBe(true);
  });

  it('stays correct when locks time out almost at once (live commits get aborted by others)', async () => {
    const bank = await runBank(4, 20, 2, { lockTimeoutMs: 1 });
    expect(bank.outcomes.filter((o) => o.result === true).length).toBe(80);
  });

  it('stays correct with spurious conflicts from the store', async () => {
    const bank = await runBank(3, 20, 3, {}, { spuriousConflicts: 0.1, random: seededRandom(33) });
    expect(bank.outcomes.filter((o) => o.result === true).length).toBe(60);
  });
});

describe('IntentCommitStore: random interleavings and crashes (property)', () => {
  it('any schedule of crashes keeps every commit all-or-nothing and fsck leaves nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }), { minLength: 3, maxLength: 3 }),
        fc.constantFrom(1, 50, LOCK_TIMEOUT_MS),
        async (seed, crashes, lockTimeoutMs) => {
          const bank = openBank();
          await seedAccounts(bank);
          await Promise.all(
            crashes.map((crashAt, c) => {
              let calls = 0;
              return runClient(bank, `c${c}`, 6, seed + c, (newTxId) =>
                bank.shared.client(
                  {
                    newTxId,
                    lockTimeoutMs,
                    random: seededRandom(seed * 31 + c),
                    faults: (point, key) => {
                      if (crashAt !== undefined && calls++ >= crashAt) throw new InjectedCrash(point, key);
                    },
                  },
                  storeOptions(bank, seededRandom(seed * 17 + c)),
                ),
              );
            }),
          );
          await checkBank(bank);
        },
      ),
      { numRuns: 40, seed: 20261122 },
    );
  });
});
