import type { Command } from 'commander';
import { findBackend } from '../backends/registry.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../inode/records.js';
import { isStale, keepsSessions, readSessions, type MountSession } from '../inode/sessions.js';
import type { FileSystem } from '../inode/filesystem.js';
import { parseConfig } from './config.js';
import { openVolume } from './open-volume.js';

/** What `voldfs status --json` prints. */
export interface VolumeStatus {
  readonly volume: { name: string; id: string; format: number; createdAt: string; chunkSize: number; translators: string };
  readonly store: { db: string; settings: Record<string, string> };
  readonly usage?: { files: number; directories: number; other: number; bytes: number; records?: number };
  /** Absent on a volume that keeps metadata copies: its mounts keep no sessions. */
  readonly mounts?: (MountSession & { id: string; state: 'live' | 'stale' })[];
}

async function usageOf(fs: FileSystem, countRecords: (() => Promise<number>) | undefined): Promise<NonNullable<VolumeStatus['usage']>> {
  const usage = { files: 0, directories: 1, other: 0, bytes: 0 };
  const dirs = [ROOT_INO];
  while (dirs.length > 0) {
    for (const [, [ino, type]] of await fs.readdir(dirs.pop()!)) {
      if (type === S_IFDIR) {
        usage.directories++;
        dirs.push(ino);
      } else if (type === S_IFREG) {
        usage.files++;
        usage.bytes += Number((await fs.attributes.stat(ino)).size);
      } else {
        usage.other++;
      }
    }
  }
  return { ...usage, records: countRecords ? await countRecords() : undefined };
}

const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
const ago = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s ago` : `${Math.round(ms / 60_000)} min ago`);

export function renderStatus(s: VolumeStatus, now = Date.now()): string {
  const lines = [
    `volume       ${s.volume.name} (id ${s.volume.id}, format ${s.volume.format}, created ${s.volume.createdAt})`,
    `store        ${s.store.db}${Object.entries(s.store.settings).map(([k, v]) => ` ${k}=${v}`).join('')}`,
    `translators  ${s.volume.translators}; chunks of ${s.volume.chunkSize} bytes`,
  ];
  if (s.usage) {
    const u = s.usage;
    lines.push(
      `usage        ${u.files} files, ${u.directories} directories, ${u.other} other entries, ${(u.bytes / 1e6).toFixed(1)} MB in files; ` +
        (u.records === undefined ? 'records not counted (the store cannot list keys)' : `${u.records} records`),
    );
  }
  if (!s.mounts) {
    lines.push('mounts       not tracked on a volume that keeps metadata copies (see voldfs status in the README)');
    return lines.join('\n');
  }
  lines.push(`mounts       ${s.mounts.length === 0 ? 'none attached' : `${s.mounts.filter((m) => m.state === 'live').length} live, ${s.mounts.filter((m) => m.state === 'stale').length} stale`}`);
  for (const m of s.mounts) {
    lines.push(
      `  ${m.state.padEnd(5)} ${m.host} pid ${m.pid} ${m.mountpoint} voldfs ${m.version}, since ${when(m.startedAt)}, heartbeat ${ago(now - m.heartbeatAt)}` +
        (m.state === 'stale' ? ' (its mount is gone: voldfs fsck --repair removes it)' : ''),
    );
  }
  return lines.join('\n');
}

/** `voldfs status [--json] [--no-usage]`: the volume, its usage, and the mounts attached now. */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('show the volume (store, translators, format, created), its usage, and the mounts attached to it now')
    .option('--json', 'print it as JSON')
    .option('--no-usage', 'skip counting files and records (a walk of the whole tree)')
    .action(async (opts: { json?: boolean; usage: boolean }) => {
      const config = parseConfig(process.env);
      // Looking must not format an empty store.
      const opened = await openVolume(config, { formatIfEmpty: false });
      try {
        const { fs, store } = opened;
        const { volume } = fs;
        const sb = volume.superblock;
        const now = Date.now();
        const sessions = await readSessions(volume.store, volume.keys.mounts());
        const backend = findBackend(config.db);
        const settings = Object.fromEntries(
          (backend?.variables ?? []).filter((v) => process.env[v.name] && !/PASSPHRASE/.test(v.name)).map((v) => [v.name, process.env[v.name]!]),
        );
        const scan = store.meta.scan?.bind(store.meta);
        const countRecords = scan
          ? async () => {
              let n = 0;
              const keys = scan(`${config.volume}:`)[Symbol.asyncIterator]();
              while (!(await keys.next()).done) n++;
              return n;
            }
          : undefined;
        const status: VolumeStatus = {
          volume: {
            name: config.volume,
            id: sb.volumeId,
            format: sb.format,
            createdAt: when(sb.createdAt),
            chunkSize: sb.chunkSize,
            translators: opened.translators,
          },
          store: { db: config.db, settings },
          usage: opts.usage ? await usageOf(fs, countRecords) : undefined,
          mounts: !keepsSessions(sb) ? undefined : Object.entries(sessions)
            .map(([id, s]) => ({ ...s, id, state: isStale(s, now) ? ('stale' as const) : ('live' as const) }))
            .sort((a, b) => a.startedAt - b.startedAt),
        };
        process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderStatus(status, now)}\n`);
      } finally {
        await opened.close();
      }
    });
}
