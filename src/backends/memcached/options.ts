import type { Env } from '../backend.js';
import { integerOption, hostPortList } from '../env-options.js';
import { ConfigError } from '../errors.js';
import type { ServerAddress } from './server-address.js';

/** Options of the memcached backend, parsed once from the environment. */
export interface MemcachedOptions {
  /** Servers in configured order; the order decides placement, so every client must agree. */
  readonly servers: readonly ServerAddress[];
  /** Per-request time limit in milliseconds, connecting included. */
  readonly timeoutMs: number;
  /** Accept servers that evict items when full (started without -M). */
  readonly allowEviction: boolean;
  /**
   * VOLDFS_MC_PROTOCOL: `binary` or `text`, or undefined (unset) to use binary where the
   * servers speak it and text where they speak only that.
   */
  readonly protocol: 'binary' | 'text' | undefined;
  /** VOLDFS_MC_ITEM_SIZE: largest item in bytes, for servers that do not tell theirs (kumofs, twemproxy). */
  readonly itemSizeBytes: number;
}

export const DEFAULT_SERVERS = '127.0.0.1:11211';
export const DEFAULT_TIMEOUT_MS = 2000;
const MAX_TIMEOUT_MS = 600_000;
/** memcached's default -I, which kumofs and twemproxy take as well. */
export const DEFAULT_ITEM_SIZE_BYTES = 1024 * 1024;
const MIN_ITEM_SIZE_BYTES = 64 * 1024;
const MAX_ITEM_SIZE_BYTES = 128 * 1024 * 1024;


/**
 * Reads VOLDFS_MC_SERVERS (default `127.0.0.1:11211`), VOLDFS_MC_TIMEOUT_MS (default 2000)
 * VOLDFS_MC_ALLOW_EVICTION (default off), VOLDFS_MC_PROTOCOL (default: binary where offered) and
 * VOLDFS_MC_ITEM_SIZE (default 1m).
 * @throws ConfigError naming the variable and the accepted form
 */
export function parseMemcachedOptions(env: Env): MemcachedOptions {
  return Object.freeze({
    servers: Object.freeze(parseServers(env.VOLDFS_MC_SERVERS ?? DEFAULT_SERVERS)),
    timeoutMs: integerOption(env, 'VOLDFS_MC_TIMEOUT_MS', {
      fallback: DEFAULT_TIMEOUT_MS,
      min: 1,
      max: MAX_TIMEOUT_MS,
      unit: 'milliseconds',
    }),
    allowEviction: parseFlag('VOLDFS_MC_ALLOW_EVICTION', env.VOLDFS_MC_ALLOW_EVICTION),
    protocol: parseProtocol(env.VOLDFS_MC_PROTOCOL),
    itemSizeBytes: parseItemSize(env.VOLDFS_MC_ITEM_SIZE),
  });
}

/** Parses a server list such as `127.0.0.1:11211,[::1]:11212`. @throws ConfigError */
export function parseServers(text: string): ServerAddress[] {
  return hostPortList('VOLDFS_MC_SERVERS', text, '127.0.0.1:11211,127.0.0.1:11212');
}

function parseFlag(name: string, text: string | undefined): boolean {
  if (text === undefined || text.trim() === '') return false;
  const value = text.trim().toLowerCase();
  if (['1', 'yes', 'true', 'on'].includes(value)) return true;
  if (['0', 'no', 'false', 'off'].includes(value)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(text)} is invalid: expected yes or no (default no)`);
}

function parseProtocol(text: string | undefined): 'binary' | 'text' | undefined {
  const value = text?.trim().toLowerCase() ?? '';
  if (value === '') return undefined;
  if (value === 'binary' || value === 'text') return value;
  throw new ConfigError(
    `VOLDFS_MC_PROTOCOL=${JSON.stringify(text)} is invalid: expected binary or text ` +
      `(unset: binary where the servers speak it, text where they speak only that)`,
  );
}

/** Bytes, or a number with k / m (binary multiples), as memcached's -I takes them. */
function parseItemSize(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return DEFAULT_ITEM_SIZE_BYTES;
  const match = /^\s*([0-9]+)\s*([kKmM]?)\s*$/.exec(text);
  const unit = match?.[2].toLowerCase() === 'k' ? 1024 : match?.[2].toLowerCase() === 'm' ? 1024 * 1024 : 1;
  const value = match ? Number(match[1]) * unit : NaN;
  if (!Number.isSafeInteger(value) || value < MIN_ITEM_SIZE_BYTES || value > MAX_ITEM_SIZE_BYTES) {
    throw new ConfigError(
      `VOLDFS_MC_ITEM_SIZE=${JSON.stringify(text)} is invalid: expected the servers' largest item size, e.g. 1m or 512k, ` +
        `from 64k to 128m (default 1m); used only where the servers do not report it (kumofs, twemproxy)`,
    );
  }
  return value;
}
