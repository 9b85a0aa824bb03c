import { StoreError, StoreUnavailable } from '../errors.js';
import type { BinaryConnection } from './connection.js';
import { MEMCACHED_MAX_KEY_BYTES } from './keys.js';
import { Opcode, Status, statusText } from './protocol.js';

/**
 * Bytes an item takes beyond its key and value in memcached 1.6 on 64-bit: the item header
 * (48), the CAS unique (8), the key's terminating NUL (1) and the value's trailing CRLF (2).
 * Measured: with -I 512k, 1m and 2m the largest value that stores is exactly
 * `item_size_max - key length - 59`, for key lengths 1 to 250.
 */
export const ITEM_OVERHEAD_BYTES = 59;

/** What this backend needs to know about one server, from `stats settings`. */
export interface ServerSettings {
  /** -I: largest item in bytes, header and key included. */
  readonly itemSizeMax: number;
  /** False when started with -M: a full server refuses writes instead of evicting. */
  readonly evicts: boolean;
  /** False when started with -C: no CAS uniques, so no conditional writes. */
  readonly casEnabled: boolean;
}

/**
 * Reads a server's settings over the binary protocol (STAT "settings").
 * @throws StoreUnavailable / StoreTimeout when the server cannot be reached
 */
export async function readServerSettings(connection: BinaryConnection): Promise<ServerSettings> {
  const frames = await connection.requestMulti({ opcode: Opcode.stat, key: Buffer.from('settings') });
  const last = frames[frames.length - 1];
  if (last.status !== Status.ok) {
    throw new StoreUnavailable(
      `memcached at ${connection.label} refused "stats settings" (${statusText(last.status)}); voldfs needs memcached 1.6 or later`,
    );
  }
  const stats = new Map(frames.map((frame) => [frame.key.toString('latin1'), frame.value.toString('latin1')]));
  const itemSizeMax = Number(stats.get('item_size_max'));
  if (!Number.isSafeInteger(itemSizeMax) || itemSizeMax <= 0) {
    throw new StoreError(`memcached at ${connection.label} did not report item_size_max in "stats settings"`);
  }
  return {
    itemSizeMax,
    evicts: stats.get('evictions') !== 'off',
    casEnabled: stats.get('cas_enabled') !== 'no',
  };
}

/**
 * Largest value that stores on every server under any key this backend sends (at most 250
 * bytes: 240-byte keys plus a placement suffix).
 */
export function maxValueBytes(settings: readonly ServerSettings[]): number {
  const itemSizeMax = Math.min(...settings.map((s) => s.itemSizeMax));
  return itemSizeMax - MEMCACHED_MAX_KEY_BYTES - ITEM_OVERHEAD_BYTES;
}

/**
 * Refuses servers a filesystem cannot live on: without CAS, or evicting when full unless
 * the user accepted that.
 * @throws StoreUnavailable with a message that says how to restart the server
 */
export function checkServerSettings(label: string, settings: ServerSettings, allowEviction: boolean): void {
  if (!settings.casEnabled) {
    throw new StoreUnavailable(
      `memcached at ${label} runs with CAS disabled (-C); voldfs needs CAS for safe concurrent updates: restart it without -C`,
    );
  }
  if (settings.evicts && !allowEviction) {
    throw new StoreUnavailable(
      `memcached at ${label} evicts items when its memory is full (started without -M), which would silently ` +
        `lose files and directories: restart it with -M and enough memory (-m), as scripts/memcached-start does, ` +
        `or set VOLDFS_MC_ALLOW_EVICTION=yes to accept the risk`,
    );
  }
}
