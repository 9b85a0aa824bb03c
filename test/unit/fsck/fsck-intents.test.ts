import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryData } from '../../../src/backends/memory/index.js';
import { InjectedCrash, type FaultPoint } from '../../../src/cas/fault-points.js';
import { TAG_ENVELOPE } from '../../../src/cas/intent-codec.js';
import { IntentCommitStore } from '../../../src/cas/intent-store.js';
import { fsckVolume } from '../../../src/fsck/index.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';
import { VolumeFixture, silent } from './fsck-fixture.js';

const PREFIX = 't:';

/** Intent records and lock envelopes left in the shared records. */
function leftovers(data: MemoryData): { intents: number; envelopes: number } {
  let intents = 0;
  let envelopes = 0;
  for (const key of data.keys()) {
    if (key.startsWith('_cas/')) intents++;
    else if (key.startsWith(PREFIX) && !key.startsWith(`${PREFIX}b:`) && data.get(key)?.value[0] === TAG_ENVELOPE) envelopes++;
  }
  return { intents, envelopes };
}

describe('fsck and pending intents (store without native commit)', () => {
  let data: MemoryData;
  let armed: FaultPoint | undefined;
  let fx: VolumeFixture;

  /** A client of the shared records, as another process would open it. */
  const client = (now: () => number = Date.now) =>
    new IntentCommitStore(new NoCommitStore({ data }), { log: silent, lockTimeoutMs: 20_000, now });
  const fsck = (options: Parameters<typeof fsckVolume>[1], now?: () => number) =>
    fsckVolume({ store: client(now), dataStore: new NoCommitStore({ data }), prefix: PREFIX }, options);

  beforeEach(async () => {
    data = new MemoryData();
    armed = undefined;
    const store = new IntentCommitStore(new NoCommitStore({ data }), {
      log: silent,
      lockTimeoutMs: 20_000,
      faults: (point, key) => {
        if (point === armed) {
          armed = undefined;
          throw new InjectedCrash(point, key);
        }
      },
    });
    fx = await VolumeFixture.create({ store, dataStore: new NoCommitStore({ data }) });
    await fx.mkdir('/from');
    await fx.mkdir('/to');
    for (let i = 0; i < 20; i++) await fx.writeFile(`/from/f${i}`, Buffer.from(`file ${i}`));
  });
  afterEach(async () => {
    await fx.close();
  });

  /** Moves /from/f7 to /to/g7, crashing at `point`. */
  async function crashRename(point: FaultPoint): Promise<void> {
    const from = await fx.fs.resolve('/from');
    const to = await fx.fs.resolve('/to');
    armed = point;
    await expect(fx.fs.namespace.rename(from, 'f7', to, 'g7')).rejects.toBeInstanceOf(InjectedCrash);
    expect(leftovers(data).intents).toBe(1);
  }

  it('rolls a committed but unapplied rename forward', async () => {
    await crashRename('apply.write');
    expect(leftovers(data).envelopes).toBeGreaterThan(0);

    const check = await fsck({});
    expect(check.problems).toMatchObject([{ kind: 'pending-intent', action: 'left' }]);
    expect(check.problems[0].what).toMatch(/^committed transaction over \d+ keys/);
    expect(check.exitCode).toBe(0);

    const repair = await fsck({ repair: true });
    expect(repair.problems).toMatchObject([{ kind: 'pending-intent', action: 'repaired', done: 'rolled forward' }]);
    expect(leftovers(data)).toEqual({ intents: 0, envelopes: 0 });
    const after = await fsck({});
    expect(after.problems).toEqual([]);
    expect(after.summary.files).toBe(20);
    // The rename took effect: the file is under its new name.
    const reader = await VolumeFixture.create({ store: client(), dataStore: new NoCommitStore({ data }) });
    expect((await reader.fs.readdir(await reader.fs.resolve('/to'))).map(([name]) => name)).toEqual(['g7']);
    await reader.close();
  });

  it('leaves a pending rename of a possibly live owner online, and aborts it offline', async () => {
    await crashRename('intent.commit');

    const online = await fsck({ repair: true });
    expect(online.problems).toMatchObject([{ kind: 'pending-intent', action: 'needs-offline' }]);
    expect(online.exitCode).toBe(0);
    expect(leftovers(data).intents).toBe(1);

    const offline = await fsck({ repair: true, offline: true });
    expect(offline.problems).toMatchObject([{ kind: 'pending-intent', action: 'repaired', done: 'rolled back' }]);
    expect(leftovers(data)).toEqual({ intents: 0, envelopes: 0 });
    expect((await fsck({})).problems).toEqual([]);
    const reader = await VolumeFixture.create({ store: client(), dataStore: new NoCommitStore({ data }) });
    expect(await reader.fs.namespace.lookup(await reader.fs.resolve('/from'), 'f7')).toBeDefined();
    expect(await reader.fs.readdir(await reader.fs.resolve('/to'))).toEqual([]);
    await reader.close();
  });

  it('rolls back a pending rename whose owner is past the lock timeout, online', async () => {
    await crashRename('lock.write');
    const later = () => Date.now() + 60_000;
    const repair = await fsck({ repair: true }, later);
    expect(repair.problems).toMatchObject([{ kind: 'pending-intent', action: 'repaired', done: 'rolled back' }]);
    expect(leftovers(data)).toEqual({ intents: 0, envelopes: 0 });
    expect((await fsck({})).problems).toEqual([]);
  });
});
