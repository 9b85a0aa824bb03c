#!/usr/bin/env node
import { closeSync, writeSync } from 'node:fs';
import { exitAfterOutput } from './exit.js';
import { Command, Option } from 'commander';
import { ConfigError, StoreError } from '../backends/errors.js';
import { BACKENDS } from '../backends/registry.js';
import { FsError } from '../inode/fs-error.js';
import { WrongPassphrase } from '../translators/crypt/keyring.js';
import { changePassphrase } from '../inode/passphrase-change.js';
import { VolumeNotFormatted, format } from '../inode/volume.js';
import { NO_TRANSLATORS, describeRequest, parseTranslatorRequest } from '../translators/request.js';
import { CONFIG_VARIABLES, parseConfig, parseStateDir } from './config.js';
import { READY_FD_VARIABLE, mountInBackground } from './daemon.js';
import { registerDumpCommands } from './dump/command.js';
import { registerFsckCommand } from './fsck-command.js';
import { registerStatsCommand } from './stats-command.js';
import { registerStatusCommand } from './status-command.js';
import { makeLogger } from './logger.js';
import { UsageError, checkMountpoint } from './mountpoint.js';
import { openStore } from './open-store.js';
import { passphraseSource } from './passphrase.js';
import { serve } from './serve.js';
import { parseMountOptions, resolveSettings } from './settings.js';
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
  .option(
    '-o, --options <list>',
    'settings as key=value (db=mc,mc_servers=HOST:PORT,...: every VOLDFS_* variable by its short name, ' +
      'config=FILE), ro, allow_other, and kernel flags (nosuid, noatime, ...); stronger than the environment',
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .action(async (dir: string, opts: { foreground?: boolean; options: string[] }) => {
    const mountOptions = parseMountOptions(opts.options);
    Object.assign(process.env, resolveSettings(process.env, mountOptions));
    const config = parseConfig(process.env);
    if (!opts.foreground) {
      // Usage mistakes are told here, before a background process is started for nothing.
      await checkMountpoint(dir);
      const { pid, log } = await mountInBackground(dir, config, opts.options);
      console.log(`voldfs: mounted ${dir} (pid ${pid}, log ${log})`);
      return;
    }
    const readyFd = Number(process.env[READY_FD_VARIABLE]);
    const log = makeLogger(config.logLevel);
    try {
      await serve(dir, config, log, passphraseSource(process.env), mountOptions, () => {
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
  .option('--crypt', 'encrypt data and metadata (asks for a passphrase, or VOLDFS_PASSPHRASE_FILE)')
  .option('--erasure <k+m>', 'Reed-Solomon erasure coding, e.g. 4+2 (survives losing m servers)')
  .action(async (opts: { force?: boolean; crypt?: boolean; erasure?: string }) => {
    const config = parseConfig(process.env);
    const flags = [opts.crypt ? 'crypt' : '', opts.erasure ? `erasure:${opts.erasure}` : ''].filter(Boolean).join(',');
    const request = flags ? parseTranslatorRequest(flags, 'mkfs flags') : (config.translators ?? NO_TRANSLATORS);
    const store = await openStore(config);
    try {
      const { superblock } = await format(
        {
          store: store.meta,
          dataStore: store.data,
          replication: store.replication,
          prefix: `${config.volume}:`,
          passphrase: passphraseSource(process.env),
        },
        request,
        Boolean(opts.force),
      );
      console.log(
        `voldfs: formatted volume ${config.volume} (id ${superblock.volumeId}, chunk ${superblock.chunkSize} bytes, ` +
          `translators ${describeRequest(request)}) on ${store.data.name}`,
      );
    } finally {
      await store.close();
    }
  });

program
  .command('passwd')
  .description("change an encrypted volume's passphrase (re-wraps its key; no data is rewritten)")
  .action(async () => {
    const config = parseConfig(process.env);
    const current = passphraseSource(process.env, 'VOLDFS_PASSPHRASE', 'Current passphrase: ');
    const next = passphraseSource(process.env, 'VOLDFS_NEW_PASSPHRASE', 'New passphrase: ');
    if (!current || !next) {
      throw new ConfigError('give the current and new passphrases (VOLDFS_PASSPHRASE_FILE, VOLDFS_NEW_PASSPHRASE_FILE) or run from a terminal');
    }
    const store = await openStore(config);
    try {
      await changePassphrase(store.meta, `${config.volume}:`, await current(), await next());
      console.log(`voldfs: passphrase of volume ${config.volume} changed`);
    } finally {
      await store.close();
    }
  });

registerFsckCommand(program);
registerDumpCommands(program);
registerStatsCommand(program);
registerStatusCommand(program);

function describe(err: unknown): string {
  if (err instanceof FsError && err.code === 'EEXIST') return `${err.message}; use --force to replace it`;
  if (err instanceof WrongPassphrase) return `${err.message}: check VOLDFS_PASSPHRASE_FILE or what you typed`;
  if (err instanceof VolumeNotFormatted) return `${err.message}, or check VOLDFS_DB, its servers or path, and VOLDFS_VOLUME`;
  return err instanceof Error ? err.message : String(err);
}

function run(): Promise<unknown> {
  // The config file's settings, under the environment's, for every command.
  Object.assign(process.env, resolveSettings(process.env));
  return program.parseAsync(process.argv);
}

run().then(
  () => exitAfterOutput(0),
  (err: unknown) => {
    const known =
      err instanceof UsageError ||
      err instanceof ConfigError ||
      err instanceof StoreError ||
      err instanceof FsError ||
      err instanceof WrongPassphrase ||
      err instanceof VolumeNotFormatted;
    console.error(`voldfs: ${describe(err)}`);
    if (!known && process.env.VOLDFS_LOG_LEVEL === 'debug') console.error(err);
    exitAfterOutput(err instanceof UsageError || err instanceof ConfigError || err instanceof VolumeNotFormatted ? 2 : 1);
  },
);
