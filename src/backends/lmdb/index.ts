import type { BackendDefinition } from '../backend.js';
import { LmdbStore } from './lmdb-store.js';
import { LMDB_VARIABLES, parseLmdbOptions, type LmdbOptions } from './options.js';

export { LmdbStore } from './lmdb-store.js';
export { LMDB_MAX_VALUE_BYTES, parseLmdbOptions, type LmdbOptions } from './options.js';

/** `VOLDFS_DB=lmdb`, the default: an embedded LMDB store in a local directory. */
export const lmdbBackend: BackendDefinition<LmdbOptions> = {
  name: 'lmdb',
  summary: 'embedded LMDB store in a local directory (default; shareable by processes on one machine)',
  variables: LMDB_VARIABLES,
  parseOptions: (env) => parseLmdbOptions(env),
  create: (options) => LmdbStore.open(options),
};
