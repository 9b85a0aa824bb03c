import { isAbsolute, join, resolve } from 'node:path';
import type { Env } from '../backend.js';
import { ConfigError } from '../errors.js';

/** Options of the LMDB backend, parsed once from the environment. */
export interface LmdbOptions {
  /** Directory holding `data.mdb` and `lock.mdb`; created if missing. Absolute. */
  readonly path: string;
}

/** Largest value the LMDB backend accepts: a few blocks' worth, far below LMDB's own 4 GiB. */
export const LMDB_MAX_VALUE_BYTES = 16 * 1024 * 1024;

export const LMDB_VARIABLES = [
  {
    name: 'VOLDFS_LMDB_PATH',
    description:
      'directory of the LMDB store (created if missing; several processes may share it). ' +
      'The store grows as needed until the filesystem holding it is full.',
    default: '$XDG_DATA_HOME/voldfs/lmdb, or ~/.local/share/voldfs/lmdb',
  },
] as const;

/**
 * Reads VOLDFS_LMDB_PATH (falling back to the XDG data directory). A relative path is resolved
 * against the current directory now, so a daemon that changes directory keeps the same store.
 * @throws ConfigError when the variable is set but empty, or no default can be derived.
 */
export function parseLmdbOptions(env: Env, cwd: string = process.cwd()): LmdbOptions {
  const given = env.VOLDFS_LMDB_PATH;
  if (given !== undefined) {
    if (given.trim() === '') {
      throw new ConfigError(
        'VOLDFS_LMDB_PATH is set but empty: set it to the directory that should hold the LMDB store, or unset it to use the default',
      );
    }
    return Object.freeze({ path: isAbsolute(given) ? given : resolve(cwd, given) });
  }
  const xdg = env.XDG_DATA_HOME;
  if (xdg && isAbsolute(xdg)) return Object.freeze({ path: join(xdg, 'voldfs', 'lmdb') });
  const home = env.HOME;
  if (!home || !isAbsolute(home)) {
    throw new ConfigError(
      'cannot find a default place for the LMDB store (neither XDG_DATA_HOME nor HOME is an absolute path): set VOLDFS_LMDB_PATH to a directory',
    );
  }
  return Object.freeze({ path: join(home, '.local', 'share', 'voldfs', 'lmdb') });
}
