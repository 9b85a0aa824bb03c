import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../backends/backend.js';
import { ConfigError } from '../backends/errors.js';
import { BACKENDS, findBackend } from '../backends/registry.js';
import { parseTranslatorRequest, type TranslatorRequest } from '../translators/request.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Settings read once at start from VOLDFS_* variables; frozen, passed down by constructors. */
export interface Config {
  /** VOLDFS_DB: which backend (default `lmdb`). */
  readonly db: string;
  /** The backend's own options, as its parseOptions returned them. */
  readonly backendOptions: unknown;
  /** VOLDFS_VOLUME: volume name, the prefix of every key (default `voldfs`). */
  readonly volume: string;
  /** VOLDFS_LOG_LEVEL (default `info`). */
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** VOLDFS_CACHE_SECONDS: kernel and record cache lifetime (default 1). */
  readonly cacheSeconds: number;
  /** VOLDFS_READAHEAD_KB: the kernel's readahead window on the mount, KiB; 0 leaves it (default 1024). */
  readonly readaheadKib: number;
  /** VOLDFS_LOCK_LEASE_SECONDS: how long a dead mount's file locks keep counting (default 30). */
  readonly lockLeaseSeconds: number;
  /** VOLDFS_WRITEBACK_CACHE: the kernel's write-back cache on the mount (default off). */
  readonly writebackCache: boolean;
  /** VOLDFS_STATE_DIR: pid, log and control socket of each mount. */
  readonly stateDir: string;
  /** VOLDFS_MEMORY_MB: ceiling of the mount's caches and buffers, MiB (default 512). */
  readonly memoryMb: number;
  /**
   * VOLDFS_TRANSLATORS: the stack for a new volume (mkfs, or a mount that formats an empty
   * store) and the one an existing volume must have. Unset: none for new volumes, any for old.
   */
  readonly translators: TranslatorRequest | undefined;
  /** VOLDFS_HEARTBEAT_SECONDS: how often a mount renews its session in the volume (default 15). */
  readonly heartbeatSeconds: number;
  /** VOLDFS_METRICS: where to serve Prometheus metrics (`host:port`), if anywhere. */
  readonly metrics: { readonly host: string; readonly port: number } | undefined;
}

export const CONFIG_VARIABLES = [
  { name: 'VOLDFS_DB', description: `store backend: ${BACKENDS.map((b) => b.name).join(', ')}`, default: 'lmdb' },
  { name: 'VOLDFS_VOLUME', description: 'volume name: prefix of every key, so volumes can share a store', default: 'voldfs' },
  { name: 'VOLDFS_LOG_LEVEL', description: LOG_LEVELS.join(', '), default: 'info' },
  { name: 'VOLDFS_CACHE_SECONDS', description: 'attribute/entry cache lifetime in seconds (0 to 60)', default: '1' },
  { name: 'VOLDFS_READAHEAD_KB', description: 'kernel readahead on the mount in KiB, 0 to 65536; 0 keeps the kernel default (needs root)', default: '1024' },
  { name: 'VOLDFS_LOCK_LEASE_SECONDS', description: 'how long the file locks of a mount that died keep holding, seconds (1 to 3600)', default: '30' },
  { name: 'VOLDFS_WRITEBACK_CACHE', description: '1: the kernel caches writes and sends them later, in bigger pieces (see README); 0: off', default: '0' },
  { name: 'VOLDFS_STATE_DIR', description: 'pid, log and control socket of each mount', default: '$XDG_STATE_HOME/voldfs, or ~/.local/state/voldfs' },
  { name: 'VOLDFS_MEMORY_MB', description: 'ceiling of the caches and buffers of a mount in MiB, 64 to 1048576', default: '512' },
  { name: 'VOLDFS_TRANSLATORS', description: 'none, crypt, erasure:K+M or crypt,erasure:K+M (chosen at mkfs)', default: 'none' },
  { name: 'VOLDFS_PASSPHRASE_FILE', description: 'file holding the passphrase of an encrypted volume (else VOLDFS_PASSPHRASE, the passphrase itself, environment only; else asked on the terminal)' },
  { name: 'VOLDFS_HEARTBEAT_SECONDS', description: 'how often a mount renews its session in the volume (voldfs status shows it stale after three missed)', default: '15' },
  { name: 'VOLDFS_METRICS', description: 'HOST:PORT to serve Prometheus metrics on at /metrics (e.g. 127.0.0.1:9464); unset: none' },
];

/** @throws ConfigError naming the variable and the accepted values */
export function parseConfig(env: Env): Config {
  const db = env.VOLDFS_DB?.trim() || 'lmdb';
  const backend = findBackend(db);
  if (!backend) {
    throw new ConfigError(`VOLDFS_DB=${db} is not a known store; use one of: ${BACKENDS.map((b) => b.name).join(', ')}`);
  }
  const volume = env.VOLDFS_VOLUME?.trim() || 'voldfs';
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(volume)) {
    throw new ConfigError(`VOLDFS_VOLUME=${volume} is not a valid volume name: use 1-64 letters, digits, '.', '_' or '-'`);
  }
  const logLevel = (env.VOLDFS_LOG_LEVEL?.trim() || 'info') as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`VOLDFS_LOG_LEVEL=${logLevel} is not a log level; use one of: ${LOG_LEVELS.join(', ')}`);
  }
  const cacheText = env.VOLDFS_CACHE_SECONDS?.trim() || '1';
  const cacheSeconds = Number(cacheText);
  if (!Number.isFinite(cacheSeconds) || cacheSeconds < 0 || cacheSeconds > 60) {
    throw new ConfigError(`VOLDFS_CACHE_SECONDS=${cacheText} must be a number of seconds from 0 to 60`);
  }
  const readaheadText = env.VOLDFS_READAHEAD_KB?.trim() || '1024';
  const readaheadKib = Number(readaheadText);
  if (!Number.isInteger(readaheadKib) || readaheadKib < 0 || readaheadKib > 65536) {
    throw new ConfigError(`VOLDFS_READAHEAD_KB=${readaheadText} must be a whole number of KiB from 0 to 65536 (0 keeps the kernel's)`);
  }
  const memoryText = env.VOLDFS_MEMORY_MB?.trim() || '512';
  const memoryMb = Number(memoryText);
  if (!Number.isInteger(memoryMb) || memoryMb < 64 || memoryMb > 1_048_576) {
    throw new ConfigError(`VOLDFS_MEMORY_MB=${memoryText} must be a whole number of MiB from 64 to 1048576`);
  }
  const leaseText = env.VOLDFS_LOCK_LEASE_SECONDS?.trim() || '30';
  const lockLeaseSeconds = Number(leaseText);
  if (!Number.isFinite(lockLeaseSeconds) || lockLeaseSeconds < 1 || lockLeaseSeconds > 3600) {
    throw new ConfigError(`VOLDFS_LOCK_LEASE_SECONDS=${leaseText} must be a number of seconds from 1 to 3600`);
  }
  const writebackText = env.VOLDFS_WRITEBACK_CACHE?.trim() || '0';
  if (writebackText !== '0' && writebackText !== '1') {
    throw new ConfigError(`VOLDFS_WRITEBACK_CACHE=${writebackText} must be 1 (on) or 0 (off)`);
  }
  const writebackCache = writebackText === '1';
  const stateDir = parseStateDir(env);
  const translatorText = env.VOLDFS_TRANSLATORS?.trim();
  const translators = translatorText ? parseTranslatorRequest(translatorText, 'VOLDFS_TRANSLATORS') : undefined;
  const metrics = parseMetricsAddress(env.VOLDFS_METRICS?.trim());
  const heartbeatText = env.VOLDFS_HEARTBEAT_SECONDS?.trim() || '15';
  const heartbeatSeconds = Number(heartbeatText);
  if (!Number.isFinite(heartbeatSeconds) || heartbeatSeconds < 0.1 || heartbeatSeconds > 3600) {
    throw new ConfigError(`VOLDFS_HEARTBEAT_SECONDS=${heartbeatText} must be a number of seconds from 0.1 to 3600`);
  }
  return Object.freeze({ db, backendOptions: backend.parseOptions(env), volume, logLevel, cacheSeconds, readaheadKib, lockLeaseSeconds, writebackCache, stateDir, memoryMb, translators, heartbeatSeconds, metrics });
}

function parseMetricsAddress(text: string | undefined): Config['metrics'] {
  if (!text) return undefined;
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) {
    throw new ConfigError(`VOLDFS_METRICS=${text} is not HOST:PORT; give the address to serve metrics on, e.g. 127.0.0.1:9464`);
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

/** VOLDFS_STATE_DIR alone: umount needs nothing else, not even a reachable store. */
export function parseStateDir(env: Env): string {
  return env.VOLDFS_STATE_DIR?.trim() || join(env.XDG_STATE_HOME?.trim() || join(env.HOME || homedir(), '.local', 'state'), 'voldfs');
}
