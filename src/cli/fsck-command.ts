import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { ConfigError } from '../backends/errors.js';
import { fsckVolume, formatReport, type FsckProgress } from '../fsck/index.js';
import { VolumeNotFormatted } from '../inode/volume.js';
import type { Config } from './config.js';
import { parseConfig } from './config.js';
import { UsageError } from './mountpoint.js';
import { openStore } from './open-store.js';
import { passphraseSource } from './passphrase.js';

export interface FsckFlags {
  readonly repair?: boolean;
  readonly offline?: boolean;
  readonly json?: boolean;
}

/** Where the command writes; process.stdout / process.stderr unless a test gives its own. */
export interface FsckIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  /** Clock for the plain progress lines, ms. Default Date.now. */
  readonly now?: () => number;
}

/** Damage is left after the run: exit code 1 (the report says what). */
export class FsckDamageLeft extends Error {
  constructor(readonly count: number) {
    super(`damage left: ${count} ${count === 1 ? 'problem' : 'problems'} not repaired (see the report)`);
    this.name = 'FsckDamageLeft';
  }
}

/** Seconds between plain progress lines when stderr is not a terminal. */
const PLAIN_PROGRESS_MS = 5000;

/**
 * `voldfs fsck [--repair] [--offline] [--json]`: exit 0 when the volume is clean or every
 * damage was repaired, 1 when damage is left (FsckDamageLeft), 2 on usage or configuration
 * errors (UsageError, ConfigError: main.ts maps them).
 */
export function registerFsckCommand(program: Command): void {
  program
    .command('fsck')
    .description('check the volume against its invariants; with --repair fix what is safe (exit 0 clean or repaired, 1 damage left, 2 usage)')
    .option('--repair', 'repair what can be repaired safely while mounts may be active')
    .option(
      '--offline',
      'promise that no mount of the volume is active: also fix link counts, collect orphan inodes, chunk maps past the end, ' +
        'unreferenced blocks, garbage not yet due, and abort pending transactions',
    )
    .option('--json', 'print the report as JSON on stdout (progress stays on stderr)')
    .configureOutput({ outputError: () => undefined })
    .exitOverride((err) => {
      // Help and version end the run normally (commander exits 0 when this returns).
      if (err.exitCode === 0) return;
      throw new UsageError(`${err.message.replace(/^error: /, '').replace(/\.$/, '')}; see voldfs fsck --help`);
    })
    .action(async (flags: FsckFlags) => {
      const damage = await runFsck(flags, parseConfig(process.env), { stdout: process.stdout, stderr: process.stderr, env: process.env });
      if (damage > 0) throw new FsckDamageLeft(damage);
    });
}

/**
 * Runs fsck on the configured volume and prints the report.
 * @returns the number of problems of damage left (0: exit code 0)
 * @throws ConfigError when the store holds no such volume; StoreError when it fails
 */
export async function runFsck(flags: FsckFlags, config: Config, io: FsckIo): Promise<number> {
  const store = await openStore(config);
  const progress = new ProgressView(io.stderr, io.now ?? Date.now);
  let report;
  try {
    report = await fsckVolume(
      {
        store: store.meta,
        dataStore: store.data,
        replication: store.replication,
        prefix: `${config.volume}:`,
        passphrase: passphraseSource(io.env),
      },
      { repair: flags.repair, offline: flags.offline, onProgress: (p) => progress.update(p) },
    );
  } catch (err) {
    if (err instanceof VolumeNotFormatted) throw new ConfigError(`${err.message}; check VOLDFS_DB and VOLDFS_VOLUME`);
    throw err;
  } finally {
    progress.stop();
    await store.close();
  }
  io.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, config.volume));
  return report.summary.damageLeft;
}

/** Progress on stderr: a bar on a terminal, otherwise a plain line every few seconds. */
class ProgressView {
  private bar: SingleBar | undefined;
  private lastLine: number;

  constructor(
    private readonly stream: FsckIo['stderr'],
    private readonly now: () => number,
  ) {
    this.lastLine = now();
  }

  update(p: FsckProgress): void {
    const [value, total] = p.phase === 'repair' ? [p.repairsDone, p.repairsTotal] : [p.directories, p.directories + p.queuedDirectories];
    const payload = { phase: p.phase.padEnd(9), files: p.files, blocks: p.blocksChecked, keys: p.keysScanned };
    if (this.stream.isTTY) {
      if (!this.bar) {
        this.bar = new SingleBar(
          {
            stream: this.stream as NodeJS.WritableStream,
            format: 'fsck {phase} [{bar}] {value}/{total} | {files} files, {blocks} blocks checked, {keys} keys listed',
            hideCursor: true,
            clearOnComplete: true,
          },
          Presets.shades_classic,
        );
        this.bar.start(Math.max(1, total), value, payload);
      }
      this.bar.setTotal(Math.max(1, total));
      this.bar.update(value, payload);
      return;
    }
    const t = this.now();
    if (t - this.lastLine < PLAIN_PROGRESS_MS) return;
    this.lastLine = t;
    const what =
      p.phase === 'repair'
        ? `${p.repairsDone} of ${p.repairsTotal} repairs`
        : `${p.directories} directories (${p.queuedDirectories} queued), ${p.files} files, ${p.blocksChecked} blocks checked, ${p.keysScanned} keys listed`;
    this.stream.write(`voldfs fsck: ${p.phase}: ${what}\n`);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
