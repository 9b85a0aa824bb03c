// What a mount process sets up beyond the filesystem: the kernel readahead window of the mount
// (VOLDFS_READAHEAD_KB, src/cli/mount-readahead.ts), read back from the mount's backing-device
// entry in sysfs, which only root may change; and the node flags of a background mount.
// Store: LMDB in a temp dir; `npm run build` first.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DAEMON_NODE_FLAGS } from '../../src/cli/daemon.js';
import { readaheadFile } from '../../src/cli/mount-readahead.js';
import { mountedDirs } from '../../src/cli/mountpoint.js';
import { mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { processesMentioning } from '../helpers/processes.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const isRoot = process.getuid?.() === 0;

async function readaheadOf(dir: string): Promise<number> {
  const entry = (await mountedDirs()).get(dir);
  if (!entry) throw new Error(`${dir} is not mounted`);
  return Number((await readFile(readaheadFile(entry.device), 'utf8')).trim());
}

describe.runIf(isRoot)('kernel readahead of the mount', () => {
  const live: VoldfsMount[] = [];
  afterEach(async () => {
    for (const m of live.splice(0)) await m.unmount();
  });
  const mount = async (extra: Record<string, string>): Promise<VoldfsMount> => {
    const work = await makeTempDir('readahead');
    const env = { VOLDFS_LMDB_PATH: join(work, 'store'), VOLDFS_STATE_DIR: join(work, 'state'), ...extra };
    // `voldfs mount` returns after the daemon has set the readahead; a foreground mount is seen
    // in mountinfo before that, so reading then would race the daemon's write.
    const m = await mountVoldfs({ env, daemon: true });
    live.push(m);
    return m;
  };

  it('is 1024 KiB by default, wider than the 128 KiB the kernel gives a FUSE mount', async () => {
    const m = await mount({});
    expect(await readaheadOf(m.dir)).toBe(1024);
  });

  it('is what VOLDFS_READAHEAD_KB says, and the kernel default with 0', async () => {
    const wide = await mount({ VOLDFS_READAHEAD_KB: '256' });
    expect(await readaheadOf(wide.dir)).toBe(256);
    const kernel = await mount({ VOLDFS_READAHEAD_KB: '0' });
    expect(await readaheadOf(kernel.dir)).toBe(128);
  });
});

describe('the background mount process', () => {
  it('runs with the daemon node flags and serves files', async () => {
    const work = await makeTempDir('daemon-flags');
    const env = { VOLDFS_LMDB_PATH: join(work, 'store'), VOLDFS_STATE_DIR: join(work, 'state') };
    const m = await mountVoldfs({ env, daemon: true });
    try {
      const daemons = await processesMentioning(m.dir);
      expect(daemons.length).toBe(1);
      const argv = daemons[0].argv;
      const script = argv.findIndex((a) => a.endsWith('main.js'));
      expect(argv.slice(1, script)).toEqual([...DAEMON_NODE_FLAGS]);
      await writeFile(join(m.dir, 'f'), 'through the daemon');
      expect(await readFile(join(m.dir, 'f'), 'utf8')).toBe('through the daemon');
    } finally {
      await m.unmount();
    }
  });
});
