import { describe, expect, it } from 'vitest';
import { MemoryData, MemoryStore } from '../../../src/backends/memory/index.js';
import { IntentCommitStore } from '../../../src/cas/intent-store.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { S_IFREG } from '../../../src/inode/records.js';
import { patternBytes } from '../../helpers/pattern.js';
import { seededRandom } from '../../helpers/seeded-random.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';
import { VolumeFixture, caller, silent } from './fsck-fixture.js';

const stores = {
  'native commit': () => ({ store: new MemoryStore({ maxValueBytes: 16 * 1024 }) }),
  'intent layer': () => {
    const data = new MemoryData();
    return { store: new IntentCommitStore(new NoCommitStore({ data }), { log: silent }), dataStore: new NoCommitStore({ data }) };
  },
};

describe('fsck --repair while a mount is busy', () => {
  it.each(Object.keys(stores) as (keyof typeof stores)[])('(%s) judges no damage and changes nothing a live mount relies on', async (kind) => {
    const mount = await VolumeFixture.create({ ...stores[kind](), graceMs: 50 });
    const random = seededRandom(kind.length);
    const dirs = [await mount.mkdir('/a'), await mount.mkdir('/b'), await mount.mkdir('/c')];
    const names = new Map<number, Set<string>>(dirs.map((d) => [d, new Set<string>()]));
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    let ops = 0;
    let running = true;

    /** One random operation; errors a racing operation may cause (ENOENT, EEXIST) are fine. */
    const step = async () => {
      const dir = pick(dirs);
      const inDir = [...(names.get(dir) ?? [])];
      const roll = random();
      try {
        if (roll < 0.4 || inDir.length === 0) {
          const name = `f${ops}`;
          const ino = await mount.fs.namespace.create(dir, name, S_IFREG | 0o644, caller);
          names.get(dir)?.add(name);
          const fh = await mount.fs.files.open(ino, 2);
          await mount.fs.files.write(fh, 0, patternBytes(1 + Math.floor(random() * 20_000), ops));
          await mount.fs.files.release(fh);
        } else if (roll < 0.6) {
          const name = pick(inDir);
          const to = pick(dirs);
          await mount.fs.namespace.rename(dir, name, to, `${name}m`);
          names.get(dir)?.delete(name);
          names.get(to)?.add(`${name}m`);
        } else if (roll < 0.75) {
          const name = pick(inDir);
          const entry = await mount.fs.namespace.lookup(dir, name);
          const to = pick(dirs);
          if (entry) await mount.fs.namespace.link(entry[0], to, `${name}l`);
          names.get(to)?.add(`${name}l`);
        } else if (roll < 0.9) {
          const name = pick(inDir);
          await mount.fs.namespace.unlink(dir, name);
          names.get(dir)?.delete(name);
        } else {
          const name = pick(inDir);
          const entry = await mount.fs.namespace.lookup(dir, name);
          if (entry) {
            const fh = await mount.fs.files.open(entry[0], 2);
            await mount.fs.files.write(fh, Math.floor(random() * 30_000), patternBytes(5000, ops));
            await mount.fs.files.release(fh);
          }
        }
      } catch (err) {
        if (!(err instanceof FsError)) throw err;
      }
      ops++;
    };
    let failed = false;
    const worker = (async () => {
      while (running) await step();
    })().catch((err: unknown) => {
      failed = true;
      throw err;
    });

    const online: string[] = [];
    try {
      for (let round = 0; !failed && ops < 400 && round < 2000; round++) {
        const report = await mount.fsck({ repair: true });
        online.push(...report.problems.map((p) => `${p.severity}:${p.kind}:${p.action}`));
      }
    } finally {
      running = false;
      await worker;
    }
    await mount.close();
    expect(ops).toBeGreaterThanOrEqual(400);
    // What a mount does while fsck reads is no damage, and no repair failed.
    expect(online.filter((p) => p.startsWith('damage:') || p.endsWith(':failed'))).toEqual([]);

    const after = await mount.fsck({ offline: true });
    const damage = after.problems.filter((p) => p.severity === 'damage');
    expect(damage).toEqual([]);
    expect(after.exitCode).toBe(0);
    // Leftovers after a clean unmount can only be garbage records past their (50 ms) grace.
    expect(after.problems.every((p) => p.kind === 'expired-garbage')).toBe(true);
  });
});
