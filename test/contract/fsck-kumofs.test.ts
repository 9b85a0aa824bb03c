/**
 * fsck on kumofs, which cannot list its keys: the CAS-only store lists the keys its clients
 * logged (key-log.ts), and fsck --repair finds and collects every kind of leftover a crash can
 * leave (an unreferenced block, an orphan inode with its chunk map and block, garbage records
 * of deleted files). On a real kumofs cluster (../shared/kumofs; loudly not run without it) and
 * on the kumofs stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvStore } from '../../src/backends/kv-store.js';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import { withAtomicCommit } from '../../src/cas/intent-store.js';
import { encodeRecord } from '../../src/chunk/record-codec.js';
import { fsckVolume } from '../../src/fsck/index.js';
import { describeOnKumofs } from '../helpers/describe-on-kumofs.js';
import { KumofsStandIn } from '../helpers/kumofs-stand-in.js';
import { patternBytes } from '../helpers/pattern.js';
import { VolumeFixture } from '../unit/fsck/fsck-fixture.js';

function describeFsck(label: string, servers: () => string | undefined): void {
  const opened: KvStore[] = [];
  const openRaw = async (): Promise<KvStore> => {
    const value = servers();
    if (!value) throw new Error('servers did not start');
    const store = await memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: value, VOLDFS_MC_TIMEOUT_MS: '5000' }));
    opened.push(store);
    return store;
  };
  afterAll(async () => {
    for (const store of opened) await store.close();
  });

  it(`${label}: finds every leftover by the key log and collects it with --repair`, async () => {
    const raw = await openRaw();
    const prefix = `fsck${Date.now().toString(36)}:`;
    const meta = withAtomicCommit(raw);
    const fx = await VolumeFixture.create({ store: meta, dataStore: raw, prefix, graceMs: 0 });
    await fx.mkdir('/d');
    for (let i = 0; i < 8; i++) await fx.writeFile(`/d/f${i}`, patternBytes(5000 + 700 * i, i));
    const donor = await fx.fs.resolve('/d/f1');
    await fx.fs.namespace.unlink(await fx.fs.resolve('/d'), 'f7');
    await fx.close();

    // What crashes leave: a block written before its chunk map, and an inode never named.
    const stray = `${fx.keys.blockPrefix()}unreferenced00000000`;
    await raw.put(stray, Buffer.alloc(10, 1));
    const orphan = 50_000;
    await fx.putInode(orphan, { ...(await fx.inode(donor)), nlink: 1 });
    const block = await fx.fs.volume.blocks.put('orphanblock000000000', Buffer.alloc(102, 2), { volumeId: fx.fs.volume.superblock.volumeId, ino: orphan, chunkIndex: 0 });
    await meta.put(fx.keys.chunkMap(orphan, 0), encodeRecord({ block }));

    const checker = await openRaw();
    const fsck = (offline: boolean) => fsckVolume({ store: withAtomicCommit(checker), dataStore: checker, prefix }, { repair: true, offline });
    const online = await fsck(false);
    expect(online.summary).toMatchObject({ listed: true });
    const kinds = online.problems.map((p) => p.kind).sort();
    expect(kinds).toEqual(expect.arrayContaining(['orphan-inode', 'unreferenced-block']));

    const listedBefore = (await fx.keysUnder('', checker)).sort();
    const offline = await fsck(true);
    // Offline, the key log is compacted to the keys that still exist: the repairs' deletions leave it.
    expect(offline.notes.join('\n')).toMatch(/key listing compacted: \d+ keys recorded, \d+ still exist/);
    const [, recorded, kept] = /(\d+) keys recorded, (\d+) still exist/.exec(offline.notes.join('\n')) ?? [];
    expect(Number(kept)).toBeLessThan(Number(recorded));
    const listedAfter = (await fx.keysUnder('', checker)).sort();
    const present = await checker.getMany(listedBefore);
    expect(listedAfter).toEqual(listedBefore.filter((_key, i) => present[i] !== undefined));
    expect(listedAfter).not.toContain(stray);
    expect(listedAfter.length).toBe(Number(kept));
    const repaired = offline.problems.filter((p) => p.action === 'repaired').map((p) => p.kind);
    expect(repaired).toEqual(expect.arrayContaining(['orphan-inode', 'unreferenced-block']));
    expect(offline.problems.filter((p) => p.action !== 'repaired')).toEqual([]);
    expect(await checker.get(stray)).toBeUndefined();
    expect(await checker.get(fx.keys.inode(orphan))).toBeUndefined();
    expect(await checker.get(fx.keys.chunkMap(orphan, 0))).toBeUndefined();
    expect(await fx.keysUnder('g:', checker)).toEqual([]);
    expect((await fsck(false)).problems).toEqual([]);
  }, 120_000);
}

describeOnKumofs('fsck-kumofs.test.ts', 'fsck on a kumofs cluster of three servers', (cluster) => {
  describeFsck('text port', () => cluster().text);
  describeFsck('binary port', () => cluster().binary);
});

describe('fsck on the kumofs stand-in', () => {
  let standIn: KumofsStandIn | undefined;
  beforeAll(async () => {
    standIn = await KumofsStandIn.start();
  });
  afterAll(async () => {
    await standIn?.stop();
  });
  describeFsck('text port', () => standIn?.text);
});
