import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { FuseMount } from '../fs/fuse-mount.js';
import { FileSystem } from '../inode/filesystem.js';
import { Volume } from '../inode/volume.js';
import type { Config } from './config.js';
import { setMountReadahead } from './mount-readahead.js';
import { checkMountpoint, isMounted, stateFiles } from './mountpoint.js';
import { openStore } from './open-store.js';

/**
 * Mounts and serves until SIGINT/SIGTERM or until the mount disappears (fusermount -u by hand),
 * then persists what is pending, closes the store and returns.
 * @param onReady called once the kernel has the mount
 */
export async function serve(
  dir: string,
  config: Config,
  log: Logger,
  passphrase: (() => Promise<string>) | undefined,
  onReady: () => void,
): Promise<void> {
  const path = await checkMountpoint(dir);
  const store = await openStore(config);
  let volume: Volume;
  try {
    volume = await Volume.open({
      store: store.meta,
      dataStore: store.data,
      replication: store.replication,
      log,
      prefix: `${config.volume}:`,
      cacheTtlMs: config.cacheSeconds * 1000,
      translators: config.translators,
      passphrase,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  const fs = new FileSystem(
    volume,
    async () => {
      await store.data.sync?.();
    },
    config.lockLeaseSeconds * 1000,
  );
  const mount = new FuseMount(path, fs, log, {
    cacheSeconds: config.cacheSeconds,
    allowOther: process.getuid?.() === 0,
    debug: config.logLevel === 'trace',
    writebackCache: config.writebackCache,
  });
  // The INIT reply's max_readahead can only lower the kernel's 128 KiB window, never widen
  // it: a wider one is set through sysfs once mounted.
  await mount.mount(config.readaheadKib);
  await setMountReadahead(path, config.readaheadKib, log);
  const { pid } = stateFiles(config.stateDir, path);
  await mkdir(dirname(pid), { recursive: true });
  await writeFile(pid, `${process.pid}\n`);
  log.info({ mountpoint: path, store: store.data.name, volume: config.volume }, 'mounted');
  onReady();

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Unmounted from outside (fusermount -u, voldfs umount): the session ends by itself.
    mount.onUnmountedOutside(stop);
  });

  log.info({ mountpoint: path }, 'unmounting');
  try {
    if (await isMounted(path)) await mount.unmount();
  } catch (err) {
    log.error({ err }, 'unmount failed');
  }
  await fs.close();
  await store.close();
  await rm(pid, { force: true });
  log.info({ mountpoint: path }, 'unmounted');
}
