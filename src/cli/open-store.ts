import type { KvStore } from '../backends/kv-store.js';
import { findBackend } from '../backends/registry.js';
import type { Config } from './config.js';

/** Opens the configured store; stores without native multi-key commit get the intent layer. */
export async function openStore(config: Config): Promise<KvStore> {
  const backend = findBackend(config.db);
  if (!backend) throw new Error(`unknown backend ${config.db}`);
  return backend.create(config.backendOptions);
}
