import { describe, expect, it } from 'vitest';
import { ConfigError, StoreUnavailable } from '../../../src/backends/errors.js';
import { MemoryData, MemoryStore } from '../../../src/backends/memory/index.js';
import { suffixPlacement } from '../../../src/backends/memory/placement.js';
import { IntentCommitStore, withAtomicCommit } from '../../../src/cas/intent-store.js';
import { ReplicatedStore } from '../../../src/backends/wrappers/replicated-store.js';
import { unlock } from '../../../src/inode/volume.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';
import { patternBytes } from '../../helpers/pattern.js';
import { VolumeFixture, kindsOf, silent } from '../fsck/fsck-fixture.js';

const DOMAINS = 6;
const PREFIX = 't:';

/** A six-domain memory store whose domains can be unreachable or wiped, and a volume on it. */
function pool() {
  const down = new Set<number>();
  const placement = suffixPlacement(DOMAINS);
  const data = new MemoryData();
  const raw = new MemoryStore({
    data,
    domains: DOMAINS,
    maxValueBytes: 256 * 1024,
    beforeOperation: (call) => {
      for (const key of call.keys) if (down.has(placement.domainOf(key))) throw new StoreUnavailable(`domain ${placement.domainOf(key)} is down`);
    },
  });
  /** A client of the pool, as openStore builds it. */
  const open = () => {
    const replication = new ReplicatedStore(raw, { sentinelKey: `${PREFIX}alive`, everywhere: [`${PREFIX}sb`], trustMs: 0, log: silent });
    return { store: withAtomicCommit(replication, { log: silent }), dataStore: raw, replication, prefix: PREFIX };
  };
  const wipe = async (domains: readonly number[]) => {
    const keys: string[] = [];
    for await (const key of raw.scan('')) if (domains.includes(placement.domainOf(key))) keys.push(key);
    for (const key of keys) await raw.delete(key);
  };
  return { raw, data, down, open, wipe };
}

async function readAll(fx: VolumeFixture, path: string, length: number): Promise<Buffer> {
  const ino = await fx.fs.resolve(path);
  const fh = await fx.fs.files.open(ino, 0);
  const into = Buffer.alloc(length + 10);
  const n = await fx.fs.files.read(fh, 0, into.length, into);
  await fx.fs.files.release(fh);
  return into.subarray(0, n);
}

describe('a volume with metadata copies (erasure 4+2 on six domains)', () => {
  it('records 3 copies, survives two domains lost, is repaired by fsck, then survives two others down', async () => {
    const { down, open, wipe } = pool();
    const fx = await VolumeFixture.create({ ...open(), translators: { crypt: false, erasure: { k: 4, m: 2 } } });
    expect(fx.fs.volume.superblock.metaReplicas).toBe(3);
    await fx.mkdir('/d');
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 12; i++) {
      const data = patternBytes(i * 9_001 + 1, i);
      files.set(`/d/f${i}`, data);
      await fx.writeFile(`/d/f${i}`, data);
    }
    await fx.close();

    await wipe([1, 2]);
    // Fewer lost domains than copies: served, from the other copies.
    const degraded = await VolumeFixture.create(open());
    for (const [path, data] of files) expect((await readAll(degraded, path, data.length)).equals(data), path).toBe(true);
    await degraded.close();

    const check = await degraded.fsck();
    expect(check.exitCode).toBe(1);
    expect(new Set(kindsOf(check))).toEqual(new Set(['block-damaged', 'metadata-copies', 'store-lost-data']));
    const repair = await degraded.fsck({ repair: true });
    expect(repair.exitCode, JSON.stringify(repair.problems)).toBe(0);
    expect(repair.summary.metadataCopiesRewritten).toBeGreaterThan(0);
    expect((await degraded.fsck()).problems).toEqual([]);

    down.add(3).add(4);
    const fresh = await VolumeFixture.create(open());
    for (const [path, data] of files) expect((await readAll(fresh, path, data.length)).equals(data), path).toBe(true);
    await fresh.writeFile('/d/new', patternBytes(5000, 99));
    await fresh.close();
  });

  it('three domains lost (more than m): the mount is refused with the lost-data message', async () => {
    const { open, wipe } = pool();
    const fx = await VolumeFixture.create({ ...open(), translators: { crypt: false, erasure: { k: 4, m: 2 } } });
    await fx.writeFile('/a', patternBytes(3000, 1));
    await fx.close();
    await wipe([0, 2, 4]);
    await expect(unlock(open())).rejects.toThrow(/lost data: domain\(s\) 0, 2, 4 .*fsck --repair/);
  });

  it('a volume keeping copies opened without the copies layer is refused with a message naming the fix', async () => {
    const { data, open } = pool();
    const fx = await VolumeFixture.create({ ...open(), translators: { crypt: false, erasure: { k: 4, m: 2 } } });
    await fx.close();
    // Same records through the intent layer, but one domain and no copies layer.
    const single = new NoCommitStore({ data });
    const err = await unlock({ store: new IntentCommitStore(single, { log: silent }), dataStore: single, prefix: PREFIX }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/3 copies of its metadata.*VOLDFS_MC_SERVERS/);
  });

  it('a volume keeping 3 copies opened on a pool of 2 servers is refused with a message naming the fix', async () => {
    const { data, open } = pool();
    const fx = await VolumeFixture.create({ ...open(), translators: { crypt: false, erasure: { k: 4, m: 2 } } });
    await fx.close();
    // The same records seen through a pool that lists only two of the six servers.
    const two = new MemoryStore({ data, domains: 2, maxValueBytes: 256 * 1024 });
    const replication = new ReplicatedStore(two, { sentinelKey: `${PREFIX}alive`, everywhere: [`${PREFIX}sb`], trustMs: 0, log: silent });
    const err = await unlock({ store: withAtomicCommit(replication, { log: silent }), dataStore: two, replication, prefix: PREFIX }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/3 copies of its metadata.*has only 2.*VOLDFS_MC_SERVERS/);
  });

  it('without erasure the volume keeps one copy', async () => {
    const { open } = pool();
    const fx = await VolumeFixture.create(open());
    expect(fx.fs.volume.superblock.metaReplicas).toBeUndefined();
    await fx.close();
  });
});
