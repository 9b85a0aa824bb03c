import { mkdir, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { FuseMount } from '../fs/fuse-mount.js';
import { FileSystem } from '../inode/filesystem.js';
import { MountSessionKeeper, keepsSessions } from '../inode/sessions.js';
import { Volume } from '../inode/volume.js';
import type { Config } from './config.js';
import { setMountReadahead } from './mount-readahead.js';
import { checkMountpoint, isMounted, stateFiles } from './mountpoint.js';
import { MountMetrics, serveControl, serveMetrics } from './metrics.js';
import { openStore } from './open-store.js';
import { VOLDFS_VERSION } from './version.js';
import type { MountOptions } from './settings.js';

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
  mountOptions: MountOptions,
  onReady: () => void,
): Promise<void> {
  const path = await checkMountpoint(dir);
  const metrics = new MountMetrics();
  const store = await openStore(config, undefined, (method, seconds, failed) => metrics.store(method, seconds, failed));
  let volume: Volume;
  try {
    volume = await Volume.open({
      store: store.meta,
      dataStore: store.data,
      replication: store.replication,
      log,
      prefix: `${config.volume}:`,
      cacheTtlMs: config.cacheSeconds * 1000,
      memoryBytes: config.memoryMb * 1024 * 1024,
      translators: config.translators,
      passphrase,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  metrics.countRecords(volume.cache);
  const fs = new FileSystem(
    volume,
    async () => {
      await store.data.sync?.();
    },
    config.lockLeaseSeconds * 1000,
  );
  const mount = new FuseMount(path, fs, log, {
    cacheSeconds: config.cacheSeconds,
    allowOther: mountOptions.allowOther || process.getuid?.() === 0,
    readOnly: mountOptions.readOnly,
    kernelOptions: mountOptions.kernel,
    observe: (op, seconds, errno) => metrics.request(op, seconds, errno),
    countBytes: (read, written) => metrics.bytes(read, written),
    debug: config.logLevel === 'trace',
    writebackCache: config.writebackCache,
  });
  // The INIT reply's max_readahead can only lower the kernel's 128 KiB window, never widen
  // it: a wider one is set through sysfs once mounted.
  await mount.mount(config.readaheadKib);
  metrics.countReceived(() => mount.requestCounts());
  await setMountReadahead(path, config.readaheadKib, log);
  const { pid, control } = stateFiles(config.stateDir, path);
  await mkdir(dirname(pid), { recursive: true });
  await writeFile(pid, `${process.pid}\n`);
  const servers = [await serveControl(metrics, control)];
  if (config.metrics) servers.push(await serveMetrics(metrics, config.metrics));
  const session = keepsSessions(volume.superblock)
    ? new MountSessionKeeper(
        volume.store,
        volume.keys.mounts(),
        { host: hostname(), pid: process.pid, version: VOLDFS_VERSION, mountpoint: path },
        log,
        config.heartbeatSeconds * 1000,
      )
    : undefined;
  await session?.attach();
  log.info({ mountpoint: path, store: store.data.name, volume: config.volume }, 'mounted');
  if (!mountOptions.readOnly) volume.garbage.sweepLeftBehind();
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
  for (const server of servers) server.close();
  await session?.detach().catch((err: unknown) => log.warn({ err }, 'cannot remove this mount\'s session; voldfs fsck --repair will'));
  await fs.close();
  await store.close();
  await rm(pid, { force: true });
  await rm(control, { force: true });
  log.info({ mountpoint: path }, 'unmounted');
}
