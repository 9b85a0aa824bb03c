// What the kernel caches for a voldfs mount, seen from a second mount of the same store: stat
// on mount B is answered from B's kernel cache (entry and attr timeouts of
// VOLDFS_CACHE_SECONDS) while mount A changes the file, yet an open on B sees A's closed
// changes whole (close-to-open), also when A replaced the name by a rename.
// Store: one memcached server; `npm run build` first.
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { makeTempDir } from '../helpers/temp-dir.js';

describe('kernel attribute cache and close-to-open between two mounts', () => {
  let pool: MemcachedPool | undefined;
  const mounts: VoldfsMount[] = [];

  beforeAll(async () => {
    pool = await startMemcachedServers(1);
    const work = await makeTempDir('kernel-cache');
    // Long enough that nothing below expires by itself on a loaded machine.
    const env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_STATE_DIR: join(work, 'state'), VOLDFS_CACHE_SECONDS: '30' };
    mounts.push(await mountVoldfs({ env }));
    mounts.push(await mountVoldfs({ env, mkfs: false }));
  }, 120_000);
  afterAll(async () => {
    for (const m of mounts.splice(0)) await m.unmount();
    await pool?.stop();
  });

  it('serves stat from the kernel cache, and an open refreshes what it shows', async () => {
    const [a, b] = mounts.map((m) => m.dir);
    await writeFile(join(a, 'f'), 'abc', { mode: 0o644 });
    const first = await stat(join(b, 'f'));
    expect([first.mode & 0o777, first.size]).toEqual([0o644, 3]);

    await chmod(join(a, 'f'), 0o600);
    await writeFile(join(a, 'f'), 'abcdef');
    const cached = await stat(join(b, 'f'));
    expect([cached.mode & 0o777, cached.size], 'B answered from its kernel cache').toEqual([0o644, 3]);

    expect(await readFile(join(b, 'f'), 'utf8'), 'the open on B sees the whole new content').toBe('abcdef');
    const fresh = await stat(join(b, 'f'));
    expect([fresh.mode & 0o777, fresh.size], 'the open dropped the cached attributes').toEqual([0o600, 6]);
  });

  it('opens on B the file A put in place of a name B has cached', async () => {
    const [a, b] = mounts.map((m) => m.dir);
    await writeFile(join(a, 'g'), 'old');
    expect(await readFile(join(b, 'g'), 'utf8')).toBe('old');
    await writeFile(join(a, 'g.tmp'), 'new content');
    await rename(join(a, 'g.tmp'), join(a, 'g'));
    expect(await readFile(join(b, 'g'), 'utf8')).toBe('new content');
  });
});
