// voldfs status with two mounts of one volume attached, one of them killed: the killed one
// shows stale once it missed three heartbeats, fsck --repair removes its session, and an
// unmount removes the other's. Needs `npm run build`.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultStoreEnv, findRepoRoot, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { run, sleep } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

interface Status {
  volume: { name: string; format: number; translators: string };
  store: { db: string; settings: Record<string, string> };
  usage?: { files: number; directories: number; bytes: number; records?: number };
  mounts: { pid: number; mountpoint: string; state: string; version: string }[];
}

describe('voldfs status', () => {
  it('lists the mounts attached, tells a dead one as stale, and fsck --repair removes it', async () => {
    const env: Record<string, string> = { ...defaultStoreEnv(await makeTempDir('status-store')), VOLDFS_VOLUME: 'shared', VOLDFS_HEARTBEAT_SECONDS: '1' };
    const cli = join(await findRepoRoot(), 'bin', 'voldfs.js');
    const voldfs = async (...args: string[]) => {
      const r = await run('node', [cli, ...args], { env: { ...process.env, ...env } });
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const status = async (...args: string[]) => JSON.parse(await voldfs('status', '--json', ...args)) as Status;
    const mounts: VoldfsMount[] = [];
    try {
      mounts.push(await mountVoldfs({ env }));
      mounts.push(await mountVoldfs({ env, mkfs: false }));
      await run('cp', ['-a', '/usr/share/doc/bash', mounts[0].dir]);

      const both = await status();
      expect(both.volume).toMatchObject({ name: 'shared', format: 2, translators: 'none' });
      expect(both.store).toMatchObject({ db: 'lmdb', settings: { VOLDFS_LMDB_PATH: env.VOLDFS_LMDB_PATH } });
      expect(both.usage?.files).toBeGreaterThan(0);
      expect(both.usage?.records).toBeGreaterThan(both.usage!.files);
      expect(both.mounts.map((m) => [m.mountpoint, m.state])).toEqual(mounts.map((m) => [m.dir, 'live']));
      expect(await voldfs('status')).toMatch(/^mounts +2 live, 0 stale$/m);

      const [victim] = both.mounts;
      process.kill(victim.pid, 'SIGKILL');
      await sleep(4500);
      const after = await status('--no-usage');
      expect(after.usage).toBeUndefined();
      expect(after.mounts.map((m) => m.state)).toEqual(['stale', 'live']);
      expect(await voldfs('status', '--no-usage')).toMatch(/stale .* \(its mount is gone: voldfs fsck --repair removes it\)/);

      const repair = await run('node', [cli, 'fsck', '--repair', '--json'], { env: { ...process.env, ...env } });
      const report = JSON.parse(repair.stdout) as { problems: { kind: string; action: string }[] };
      expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'stale-mount', action: 'repaired' }));
      expect((await status('--no-usage')).mounts.map((m) => m.mountpoint)).toEqual([mounts[1].dir]);

      await mounts[1].unmount();
      expect((await status('--no-usage')).mounts).toEqual([]);
      expect(await voldfs('status', '--no-usage')).toMatch(/^mounts +none attached$/m);
    } finally {
      await run('umount', ['-l', mounts[0]?.dir ?? '/nonexistent']);
      for (const m of mounts) await m.unmount().catch(() => undefined);
    }
    // The killed daemon's log says nothing went wrong before the kill.
    expect(await readFile(mounts[0].logFile, 'utf8')).not.toMatch(/"level":50/);
  }, 120_000);
});
