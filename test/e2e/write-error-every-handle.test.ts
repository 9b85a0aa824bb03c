// Regression (fails): the write-back buffer is one per file per mount, shared by every handle
// open on it, and a failed chunk store is reported to whichever handle flushes first. Two
// programs writing their own ranges of one file (the multi-mount stress does: three workers per
// mount) share a dirty chunk; when storing it fails (memcached full), the first close() gets
// ENOSPC and clears the error, the second close() succeeds, and its bytes are gone: a lost
// update nobody was told about. Like Linux's errseq, every handle that had data in the failed
// store must see the error. src/chunk/write-buffer.ts (failure), src/inode/open-files.ts (flush
// per handle). Store: one memcached (-m 16, -M), filled first; `npm run build` first.
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { run } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

describe('a failed chunk store shared by two handles', () => {
  let pool: MemcachedPool | undefined;
  let mount: VoldfsMount | undefined;

  beforeAll(async () => {
    pool = await startMemcachedServers(1, { memoryMb: 16 });
    const work = await makeTempDir('write-error-handles');
    mount = await mountVoldfs({ env: { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_STATE_DIR: join(work, 'state') } });
  });
  afterAll(async () => {
    await mount?.unmount();
    await pool?.stop();
  });

  it('fails the close of every handle whose bytes were lost', async () => {
    const dir = mount?.dir ?? '';
    await writeFile(join(dir, 'shared'), '');
    const dd = await run('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=1M', 'count=100'], { timeoutMs: 60_000 });
    expect(dd.stderr).toMatch(/No space left on device/);
    const a = await open(join(dir, 'shared'), 'r+');
    const b = await open(join(dir, 'shared'), 'r+');
    await a.write(Buffer.alloc(16_384, 0x41), 0, 16_384, 0);
    await b.write(Buffer.alloc(16_384, 0x42), 0, 16_384, 400_000);
    const closed = await Promise.allSettled([a.close(), b.close()]);
    const data = await readFile(join(dir, 'shared')).catch(() => Buffer.alloc(0));
    const kept = [0x41, 0x42].map((byte, i) => {
      const at = i === 0 ? 0 : 400_000;
      return data.length >= at + 16_384 && data.subarray(at, at + 16_384).every((x) => x === byte);
    });
    const outcome = closed.map((c, i) => `${i === 0 ? 'a' : 'b'}: close ${c.status === 'fulfilled' ? 'ok' : (c.reason as NodeJS.ErrnoException).code}, bytes ${kept[i] ? 'kept' : 'lost'}`);
    console.log(`[handles] ${outcome.join('; ')}`);
    // A close that succeeded promises the bytes: never "close ok, bytes lost".
    expect(outcome.filter((o) => o.includes('close ok, bytes lost'))).toEqual([]);
    // And the store was full: at least one of them failed.
    expect(closed.some((c) => c.status === 'rejected')).toBe(true);
  }, 120_000);
});
