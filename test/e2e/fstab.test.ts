// Mounting from fstab and with mount(8): a scratch fstab mounted with `mount -T FILE -a` in an
// empty environment (as at boot), `mount -t fuse.voldfs` with ro and with a config file, a
// plain umount(8), and an option voldfs does not know. Root only (mount(8) runs
// /usr/sbin/mount.fuse.voldfs, which this test installs for this checkout first, as
// scripts/setup does). `npm run build` first.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findRepoRoot } from '../helpers/mount.js';
import { isFuseMounted, mountAt } from '../helpers/mountinfo.js';
import { processesMentioning } from '../helpers/processes.js';
import { run, sleep } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

/** What boot-time mounts get: no VOLDFS_* variables, no HOME of the user. */
const BARE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

async function waitUnmounted(dir: string): Promise<void> {
  for (let i = 0; i < 100 && (await processesMentioning(dir)).length > 0; i++) await sleep(100);
  expect(await processesMentioning(dir), `no voldfs process left for ${dir}`).toEqual([]);
}

describe.skipIf(process.getuid?.() !== 0)('fstab and mount(8)', () => {
  const mounted: string[] = [];
  beforeAll(async () => {
    const installed = await run('bash', [join(await findRepoRoot(), 'scripts/install-mount-helper')]);
    expect(installed.code, installed.stderr).toBe(0);
  });
  afterEach(async () => {
    for (const dir of mounted.splice(0)) if (await isFuseMounted(dir)) await run('umount', [dir]);
  });

  it('mounts an fstab line with mount -T FILE -a, serves it, and stops at umount(8)', async () => {
    const work = await makeTempDir('fstab');
    const dir = join(work, 'mnt');
    await mkdir(dir);
    const fstab = join(work, 'fstab');
    const options = `db=lmdb,lmdb_path=${join(work, 'store')},state_dir=${join(work, 'state')},noatime,nosuid,nofail,x-systemd.after=network.target`;
    await writeFile(fstab, `# a scratch fstab\nhome ${dir} fuse.voldfs ${options} 0 0\n`);
    const m = await run('mount', ['-T', fstab, '-a'], { env: BARE_ENV });
    expect(m.code, m.stderr).toBe(0);
    mounted.push(dir);
    const entry = await mountAt(dir);
    expect(entry?.fstype).toBe('fuse.voldfs');
    await writeFile(join(dir, 'hello'), 'from fstab');
    expect(await readFile(join(dir, 'hello'), 'utf8')).toBe('from fstab');
    expect((await run('umount', [dir])).code).toBe(0);
    await waitUnmounted(dir);

    // The same volume again, read-only, with the store named in a config file instead.
    const conf = join(work, 'voldfs.conf');
    await writeFile(conf, `db=lmdb\nlmdb_path=${join(work, 'store')}\nstate_dir=${join(work, 'state')}\n`);
    const ro = await run('mount', ['-t', 'fuse.voldfs', '-o', `ro,config=${conf}`, 'home', dir], { env: BARE_ENV });
    expect(ro.code, ro.stderr).toBe(0);
    mounted.push(dir);
    expect(await readFile(join(dir, 'hello'), 'utf8')).toBe('from fstab');
    for (const write of [() => writeFile(join(dir, 'new'), 'x'), () => writeFile(join(dir, 'hello'), 'y'), () => mkdir(join(dir, 'd'))]) {
      await expect(write()).rejects.toMatchObject({ code: 'EROFS' });
    }
    expect((await run('umount', [dir])).code).toBe(0);
    await waitUnmounted(dir);
  }, 120_000);

  it('refuses an option voldfs does not know, saying which, and mounts nothing', async () => {
    const work = await makeTempDir('fstab-bad');
    const dir = join(work, 'mnt');
    await mkdir(dir);
    const m = await run('mount', ['-t', 'fuse.voldfs', '-o', `lmdb_path=${join(work, 'store')},mc_server=127.0.0.1:1`, 'home', dir], { env: BARE_ENV });
    expect(m.code).not.toBe(0);
    expect(m.stderr).toMatch(/mount option mc_server=\.\.\. is not one voldfs knows/);
    expect(await isFuseMounted(dir)).toBe(false);
  }, 60_000);
});
