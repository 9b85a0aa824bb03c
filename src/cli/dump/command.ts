import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { ConfigError } from '../../backends/errors.js';
import { VolumeNotFormatted } from '../../inode/volume.js';
import type { CryptSettings } from '../../translators/crypt/keyring.js';
import { parseConfig, type Config } from '../config.js';
import { UsageError } from '../mountpoint.js';
import { openVolume, type OpenedVolume } from '../open-volume.js';
import { passphraseSource } from '../passphrase.js';
import { dumpVolume, type TransferProgress } from './dump.js';
import { loadVolume } from './load.js';
import { openDump } from './open-dump.js';
import { newSealedDump } from './sealing.js';

/** A bar on stderr when it is a terminal; nothing otherwise (stdout may be the dump). */
function progressBar(verb: string): { update: TransferProgress; stop(): void } {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar(
    { format: `${verb} [{bar}] {percentage}% | {entries} entries, {mb} MB`, stream: process.stderr, hideCursor: true },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      const payload = { entries: done.entries, mb: (done.bytes / 1e6).toFixed(1) };
      const scale = Math.max(1, total?.bytes ?? 0) + (total?.entries ?? 0);
      if (!started) {
        bar.start(scale, 0, payload);
        started = true;
      }
      bar.update(Math.min(scale, done.bytes + done.entries), payload);
    },
    stop: () => bar.stop(),
  };
}

/** The passphrase asked once (a terminal prompt would otherwise come twice). */
function askedOnce(source: (() => Promise<string>) | undefined): (() => Promise<string>) | undefined {
  if (!source) return undefined;
  let asked: Promise<string> | undefined;
  return () => (asked ??= source());
}

/** Waits until `out` has taken everything written to it (a pipe may still hold queued frames). */
async function flushed(out: Writable): Promise<void> {
  if (out === process.stdout) {
    await new Promise<void>((resolve, reject) => process.stdout.write('', (err) => (err ? reject(err) : resolve())));
    return;
  }
  out.end();
  await finished(out);
}

/**
 * Whether a dump of this volume is ciphertext: by default when the volume is encrypted, so its
 * data never leaves in clear unless the operator asks for it.
 * @throws UsageError for both flags, or --ciphertext of a volume that is not encrypted
 */
function chooseCiphertext(opts: { ciphertext?: boolean; plaintext?: boolean }, volume: string, crypt: CryptSettings | undefined): boolean {
  if (opts.ciphertext && opts.plaintext) throw new UsageError('give --ciphertext or --plaintext, not both');
  if (opts.ciphertext && !crypt) throw new UsageError(`volume ${volume} is not encrypted: it has no ciphertext to dump (leave out --ciphertext)`);
  return crypt !== undefined && !opts.plaintext;
}

/**
 * The volume a dump loads into. A ciphertext dump goes only into an encrypted volume (its data
 * is not to reach a store in clear): an existing one opened with the same passphrase, or a new
 * one made with crypt.
 * @throws ConfigError when the volume, or VOLDFS_TRANSLATORS for a new one, is not encrypted
 */
async function openLoadTarget(config: Config, sealed: boolean, passphrase: (() => Promise<string>) | undefined): Promise<OpenedVolume> {
  if (!sealed) return openVolume(config, { passphrase });
  const refuse = (what: string) =>
    new ConfigError(`this dump is ciphertext, and ${what}: load it into an encrypted volume (voldfs mkfs --crypt), or dump with --plaintext`);
  try {
    const opened = await openVolume(config, { passphrase, formatIfEmpty: false });
    if (opened.crypt) return opened;
    await opened.close();
    throw refuse(`volume ${config.volume} is not encrypted`);
  } catch (err) {
    if (!(err instanceof VolumeNotFormatted)) throw err;
  }
  const translators = config.translators ?? { crypt: true };
  if (!translators.crypt) throw refuse(`VOLDFS_TRANSLATORS=${process.env.VOLDFS_TRANSLATORS} has no crypt`);
  return openVolume({ ...config, translators }, { passphrase });
}

/** `voldfs dump FILE` and `voldfs load FILE` (`-` for standard output / input). */
export function registerDumpCommands(program: Command): void {
  program
    .command('dump')
    .description('write the whole volume (tree, attributes, xattrs, links, data) to FILE, or - for standard output')
    .argument('<file>')
    .option('--ciphertext', 'an encrypted volume as ciphertext, which only its passphrase opens (the default for an encrypted volume)')
    .option('--plaintext', 'an encrypted volume decrypted, to load into a volume with another key or none')
    .action(async (file: string, opts: { ciphertext?: boolean; plaintext?: boolean }) => {
      const config = parseConfig(process.env);
      const passphrase = askedOnce(passphraseSource(process.env));
      // The volume first: a store that cannot be reached, or holds no volume, leaves no file behind.
      const opened = await openVolume(config, { passphrase, formatIfEmpty: false });
      const bar = progressBar('dump');
      try {
        const ciphertext = chooseCiphertext(opts, config.volume, opened.crypt);
        const sealed = ciphertext && opened.crypt && passphrase ? await newSealedDump(opened.crypt, await passphrase()) : undefined;
        const out: Writable = file === '-' ? process.stdout : createWriteStream(file, { flags: 'wx' });
        const done = await dumpVolume(opened.fs, out, { name: config.volume, translators: opened.translators }, bar.update, sealed);
        bar.stop();
        await flushed(out);
        console.error(
          `voldfs: dumped volume ${config.volume} (${sealed ? 'ciphertext' : 'plaintext'}): ` +
            `${done.entries} entries, ${(done.bytes / 1e6).toFixed(1)} MB of data`,
        );
      } finally {
        bar.stop();
        await opened.close();
      }
    });
  program
    .command('load')
    .description('fill an empty volume from a dump FILE, or - for standard input, checking every file as it is written')
    .argument('<file>')
    .action(async (file: string) => {
      const input: Readable = file === '-' ? process.stdin : createReadStream(file);
      const config = parseConfig(process.env);
      const passphrase = askedOnce(passphraseSource(process.env));
      // A wrong passphrase or a stream that is no dump stops here, before the store is opened.
      const dump = await openDump(input, passphrase);
      const opened = await openLoadTarget(config, dump.sealed, passphrase);
      const bar = progressBar('load');
      try {
        const done = await loadVolume(opened.fs, dump.entries, bar.update);
        bar.stop();
        console.error(
          `voldfs: loaded volume ${config.volume}${dump.sealed ? ' from ciphertext, every frame authenticated' : ''}: ` +
            `${done.entries} entries, ${(done.bytes / 1e6).toFixed(1)} MB of data, every file checked`,
        );
      } finally {
        bar.stop();
        await opened.close();
      }
    });
}
