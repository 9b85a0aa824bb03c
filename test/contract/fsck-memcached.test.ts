/**
 * fsck on real memcached servers: metadata through the intent layer, blocks straight to the
 * servers, keys listed by memcached's metadump (best effort, so only what the volume wrote
 * before the check is asserted on).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import type { KvStore } from '../../src/backends/kv-store.js';
import { withAtomicCommit } from '../../src/cas/intent-store.js';
import { fsckVolume } from '../../src/fsck/index.js';
import { patternBytes } from '../helpers/pattern.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { VolumeFixture } from '../unit/fsck/fsck-fixture.js';

describe('fsck on memcached', () => {
  let pool: MemcachedPool | undefined;
  const opened: KvStore[] = [];

  beforeAll(async () => {
    pool = await startMemcachedServers(2, { memoryMb: 64 });
  });
  afterAll(async () => {
    for (const store of opened) await store.close();
    await pool?.stop();
  });

  const openRaw = async (): Promise<KvStore> => {
    if (!pool) throw new Error('memcached servers did not start');
    const store = await memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_MC_TIMEOUT_MS: '5000' }));
    opened.push(store);
    return store;
  };

  it('checks a clean volume clean, and reports a deleted block as lost data', async () => {
    const raw = await openRaw();
    const prefix = `fsck${Date.now().toString(36)}:`;
    const fx = await VolumeFixture.create({ store: withAtomicCommit(raw), dataStore: raw, prefix });
    await fx.mkdir('/d');
    await fx.mkdir('/d/e');
    for (let i = 0; i < 20; i++) await fx.writeFile(`/d/${i % 2 ? 'e/' : ''}f${i}`, patternBytes(2000 + 300 * i, i));
    await fx.writeFile('/big', patternBytes(2 * fx.chunkSize + 5, 99));
    await fx.link('/d/f0', '/d/e/also-f0');
    await fx.close();

    const checker = await openRaw();
    const check = () => fsckVolume({ store: withAtomicCommit(checker), dataStore: checker, prefix }, { repair: true });
    const clean = await check();
    expect(clean.problems).toEqual([]);
    expect(clean.exitCode).toBe(0);
    // f0..f6 (up to 3,800 bytes) and big's 5-byte tail are inline in their chunk maps: 13 + 2 blocks.
    expect(clean.summary).toMatchObject({ directories: 3, files: 21, blocksChecked: 15, listed: true });

    const victim = await fx.fs.resolve('/d/e/f7');
    const block = await fx.chunkBlock(victim, 0);
    expect(await raw.delete(fx.keys.blockPrefix() + block.id)).toBe(true);
    const damaged = await check();
    expect(damaged.problems).toMatchObject([{ kind: 'block-lost', path: '/d/e/f7', ino: victim, action: 'not-repairable' }]);
    expect(damaged.exitCode).toBe(1);
  });
});
