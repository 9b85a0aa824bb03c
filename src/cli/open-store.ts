import type { KvStore } from '../backends/kv-store.js';
import { findBackend } from '../backends/registry.js';
import { FaultStore } from '../cas/fault-store.js';
import { withAtomicCommit } from '../cas/intent-store.js';
import type { Config } from './config.js';
import { makeStoreFaults, parseFaultEnv, type FaultSettings } from './fault-env.js';

/** The configured store, as the volume uses it. */
export interface OpenedStore {
  /** Metadata: the store itself, or its intent layer when it has no native multi-key commit. */
  readonly meta: KvStore;
  /** Immutable blocks: the store itself (never part of a multi-key commit). */
  readonly data: KvStore;
  close(): Promise<void>;
}

/**
 * @param faults crash points for tests (fault-env.ts); default: VOLDFS_CRASH_AT and
 *   VOLDFS_CRASH_TRACE as this process was started with, usually neither (no hooks at all)
 */
export async function openStore(config: Config, faults: FaultSettings | undefined = parseFaultEnv(process.env)): Promise<OpenedStore> {
  const backend = findBackend(config.db);
  if (!backend) throw new Error(`unknown backend ${config.db}`);
  const raw = await backend.create(config.backendOptions);
  if (!faults) {
    const meta = withAtomicCommit(raw);
    return { meta, data: raw, close: () => raw.close() };
  }
  // Testing aid: blocks (and, on stores with native commit, everything) through a wrapper
  // that counts calls; the intent layer counts its own.
  const hooks = makeStoreFaults(faults, `${config.volume}:`);
  const data = new FaultStore(raw, hooks.store);
  const meta = data.commit ? withAtomicCommit(data) : withAtomicCommit(raw, { faults: hooks.intent });
  return { meta, data, close: () => raw.close() };
}
