import { createReadStream, createWriteStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { parseConfig } from '../config.js';
import { openVolume } from '../open-volume.js';
import { dumpVolume, type TransferProgress } from './dump.js';
import { loadVolume } from './load.js';

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

/** `voldfs dump FILE` and `voldfs load FILE` (`-` for standard output / input). */
export function registerDumpCommands(program: Command): void {
  program
    .command('dump')
    .description('write the whole volume (tree, attributes, xattrs, links, data; plaintext) to FILE, or - for standard output')
    .argument('<file>')
    .action(async (file: string) => {
      const out: Writable = file === '-' ? process.stdout : createWriteStream(file, { flags: 'wx' });
      const config = parseConfig(process.env);
      const opened = await openVolume(config);
      const bar = progressBar('dump');
      try {
        const done = await dumpVolume(opened.fs, out, { name: config.volume, translators: opened.translators }, bar.update);
        bar.stop();
        if (out !== process.stdout) {
          out.end();
          await finished(out);
        } else {
          // A pipe may still hold queued frames: the process must not exit before they leave.
          await new Promise<void>((resolve, reject) => process.stdout.write('', (err) => (err ? reject(err) : resolve())));
        }
        console.error(`voldfs: dumped volume ${config.volume}: ${done.entries} entries, ${(done.bytes / 1e6).toFixed(1)} MB of data`);
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
      const opened = await openVolume(config);
      const bar = progressBar('load');
      try {
        const done = await loadVolume(opened.fs, input, bar.update);
        bar.stop();
        console.error(`voldfs: loaded volume ${config.volume}: ${done.entries} entries, ${(done.bytes / 1e6).toFixed(1)} MB of data, every file checked`);
      } finally {
        bar.stop();
        await opened.close();
      }
    });
}
