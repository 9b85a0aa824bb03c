// The mount helper's own tests, run against a stand-in CLI (test/helpers/fake-voldfs-cli.mjs)
// that serves the bench's in-memory filesystem (bench/memory-fs.cjs) with voldfs's mount/umount
// contract. They prove the helper mounts, remounts, and cleans up when the clean path fails.
// Needs the fuse-native binding built (bash scripts/setup).
import { access, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanupTree } from '../helpers/cleanup.js';
import { cleanAbandonedRuns } from '../helpers/global-setup.js';
import { mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { isFuseMounted } from '../helpers/mountinfo.js';
import { processesMentioning } from '../helpers/processes.js';
import { run } from '../helpers/run.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const fakeCli = [process.execPath, fileURLToPath(new URL('../helpers/fake-voldfs-cli.mjs', import.meta.url))];

describe('mountVoldfs (against a stand-in CLI)', () => {
  const live: VoldfsMount[] = [];
  afterEach(async () => {
    for (const m of live.splice(0)) await m.unmount();
  });
  const mount = async (env: Record<string, string> = {}, daemon = false): Promise<VoldfsMount> => {
    const m = await mountVoldfs({ command: fakeCli, env, daemon, timeoutMs: 20_000, exitWaitMs: 2000 });
    live.push(m);
    return m;
  };

  it('mounts in the foreground, serves files, unmounts and leaves no process', async () => {
    const m = await mount();
    expect(await isFuseMounted(m.dir)).toBe(true);
    await writeFile(join(m.dir, 'hello'), 'world');
    expect(await readFile(join(m.dir, 'hello'), 'utf8')).toBe('world');
    await m.unmount();
    expect(await isFuseMounted(m.dir)).toBe(false);
    expect(await processesMentioning(m.dir)).toEqual([]);
    await m.unmount(); // a second unmount is a no-op
  });

  it('remounts on the same directory', async () => {
    const m = await mount();
    await m.remount();
    expect(await isFuseMounted(m.dir)).toBe(true);
    await writeFile(join(m.dir, 'after-remount'), 'x');
    await m.unmount();
    expect(await isFuseMounted(m.dir)).toBe(false);
  });

  it('mounts in daemon mode and finds the daemon to wait for', async () => {
    const m = await mount({}, true);
    expect(await isFuseMounted(m.dir)).toBe(true);
    expect((await processesMentioning(m.dir)).length).toBeGreaterThan(0);
    await m.unmount();
    expect(await isFuseMounted(m.dir)).toBe(false);
    expect(await processesMentioning(m.dir)).toEqual([]);
  });

  it('detaches and kills when umount does nothing, and reports it', async () => {
    const m = await mount({ FAKE_VOLDFS_FAIL: 'umount-noop' });
    await expect(m.unmount()).rejects.toThrow(/still running 2000 ms after umount[\s\S]*fusermount -uz/);
    expect(await isFuseMounted(m.dir)).toBe(false);
    expect(await processesMentioning(m.dir)).toEqual([]);
  });

  it('reports a daemon that exits with an error on unmount', async () => {
    const m = await mount({ FAKE_VOLDFS_FAIL: 'exit-1-on-stop' });
    await expect(m.unmount()).rejects.toThrow(/daemon exited with code 1/);
    expect(await isFuseMounted(m.dir)).toBe(false);
  });

  it('fails with the CLI output when mkfs fails', async () => {
    await expect(mount({ FAKE_VOLDFS_FAIL: 'mkfs' })).rejects.toThrow(/voldfs mkfs failed \(exit code 2\):\s+fake voldfs: store unreachable/);
  });

  it('fails fast with the daemon log when the daemon exits before mounting', async () => {
    const started = Date.now();
    await expect(mount({ FAKE_VOLDFS_FAIL: 'mount' })).rejects.toThrow(/daemon exited before mounting \(exit code 3\)[\s\S]*refusing to mount/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('tells to build when the CLI is missing', async () => {
    const dir = await makeTempDir('nocli');
    await expect(mountVoldfs({ command: [process.execPath, join(dir, 'bin', 'voldfs.js')] })).rejects.toThrow(/npm run build/);
  });

  it('cleanupTree detaches a leaked mount and ends its daemon', async () => {
    const base = await makeTempDir('leak');
    const m = await mountVoldfs({ command: fakeCli, mountpoint: join(base, 'mnt'), timeoutMs: 20_000 });
    const report = await cleanupTree(base);
    expect(report.mounts).toEqual([`${m.dir} (fuse.memory-fs)`]);
    expect(report.pids.length).toBeGreaterThan(0);
    expect(await isFuseMounted(m.dir)).toBe(false);
    expect(await processesMentioning(m.dir)).toEqual([]);
  });
});

describe('global setup', () => {
  it('cleans the root of a killed run (dead owner) and leaves a live run alone', async () => {
    const gone = await mkdtemp(join(tmpdir(), 'voldfs-test-run-'));
    const live = await mkdtemp(join(tmpdir(), 'voldfs-test-run-'));
    try {
      const deadPid = (await run('sh', ['-c', 'echo $$'])).stdout.trim();
      await writeFile(join(gone, 'owner.pid'), `${deadPid}\n`);
      await writeFile(join(live, 'owner.pid'), `${process.pid}\n`);
      await mkdir(join(gone, 'mnt'));
      const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'voldfs-test', join(gone, 'mnt')]);
      expect(m.code, m.stderr).toBe(0);
      await cleanAbandonedRuns();
      await expect(access(gone)).rejects.toThrow(/ENOENT/);
      await access(join(live, 'owner.pid'));
    } finally {
      await cleanupTree(gone);
      await removeTempDir(live);
    }
  });
});
