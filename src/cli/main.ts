#!/usr/bin/env node
import { closeSync, writeSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError, StoreError } from '../backends/errors.js';
import { BACKENDS } from '../backends/registry.js';
import { FsError } from '../inode/fs-error.js';
import { VolumeKeys } from '../inode/keys.js';
import { format } from '../inode/volume.js';
import { CONFIG_VARIABLES, parseConfig, parseStateDir } from './config.js';
import { READY_FD_VARIABLE, mountInBackground } from './daemon.js';
import { makeLogger } from './logger.js';
import { UsageError } from './mountpoint.js';
import { openStore } from './open-store.js';
import { serve } from './serve.js';
import { unmount } from './umount.js';

function envHelp(): string {
  const vars = [...CONFIG_VARIABLES, ...BACKENDS.flatMap((b) => b.variables)];
  return '\nEnvironment:\n' + vars.map((v) => `  ${v.name.padEnd(24)} ${v.description}${v.default ? ` (default ${v.default})` : ''}`).join('\n');
}

const program = new Command('voldfs')
  .description('A POSIX filesystem over key-value stores, mounted with FUSE')
  .addHelpText('after', envHelp);

program
  .command('mount')
  .description('mount the volume on DIR (in the background unless -f)')
  .argument('<dir>', 'empty directory to mount on')
  .addOption(new Option('-f, --foreground', 'stay in the foreground; unmount on SIGINT/SIGTERM'))
  .action(async (dir: string, opts: { foreground?: boolean }) => {
    const config = parseConfig(process.env);
    if (!opts.foreground) {
      const { pid, log } = await mountInBackground(dir, config);
      console.log(`voldfs: mounted ${dir} (pid ${pid}, log ${log})`);
      return;
    }
    const readyFd = Number(process.env[READY_FD_VARIABLE]);
    const log = makeLogger(config.logLevel);
    try {
      await serve(dir, config, log, () => {
        if (readyFd) {
          writeSync(readyFd, 'ready\n');
          closeSync(readyFd);
        }
      });
    } catch (err) {
      if (readyFd) writeSync(readyFd, `error: ${describe(err)}\n`);
      throw err;
    }
  });

program
  .command('umount')
  .alias('unmount')
  .description('unmount DIR, waiting until everything is written out')
  .argument('<dir>')
  .action(async (dir: string) => {
    await unmount(dir, parseStateDir(process.env));
  });

program
  .command('mkfs')
  .description('format the store selected by VOLDFS_DB as an empty volume')
  .option('--force', 'replace an existing volume (its records become unreachable)')
  .action(async (opts: { force?: boolean }) => {
    const config = parseConfig(process.env);
    const store = await openStore(config);
    try {
      const keys = new VolumeKeys(`${config.volume}:`);
      const sb = await format(store.meta, keys, {}, Boolean(opts.force), undefined, store.data);
      console.log(`voldfs: formatted volume ${config.volume} (id ${sb.volumeId}, chunk ${sb.chunkSize} bytes) on ${store.data.name}`);
    } finally {
      await store.close();
    }
  });

function describe(err: unknown): string {
  if (err instanceof FsError && err.code === 'EEXIST') return `${err.message}; use --force to replace it`;
  return err instanceof Error ? err.message : String(err);
}

program.parseAsync(process.argv).then(
  () => process.exit(0),
  (err: unknown) => {
    const known = err instanceof UsageError || err instanceof ConfigError || err instanceof StoreError || err instanceof FsError;
    console.error(`voldfs: ${describe(err)}`);
    if (!known && process.env.VOLDFS_LOG_LEVEL === 'debug') console.error(err);
    process.exit(err instanceof UsageError || err instanceof ConfigError ? 2 : 1);
  },
);
