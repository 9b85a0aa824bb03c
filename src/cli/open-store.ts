import type { KvStore } from '../backends/kv-store.js';
import { findBackend } from '../backends/registry.js';
import { withAtomicCommit } from '../cas/intent-store.js';
import type { Config } from './config.js';

/** The configured store, as the volume uses it. */
export interface OpenedStore {
  /** Metadata: the store itself, or its intent layer when it has no native multi-key commit. */
  readonly meta: KvStore;
  /** Immutable blocks: the store itself (never part of a multi-key commit). */
  readonly data: KvStore;
  close(): Promise<void>;
}

export async function openStore(config: Config): Promise<OpenedStore> {
  const backend = findBackend(config.db);
  if (!backend) throw new Error(`unknown backend ${config.db}`);
  const data = await backend.create(config.backendOptions);
  const meta = withAtomicCommit(data);
  return { meta, data, close: () => data.close() };
}
