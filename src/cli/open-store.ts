import type { KvStore } from '../backends/kv-store.js';
import { MeteredStore, type StoreObserver } from '../backends/wrappers/metered-store.js';
import { findBackend } from '../backends/registry.js';
import { FaultStore } from '../backends/wrappers/fault-store.js';
import { withAtomicCommit } from '../cas/intent-store.js';
import { ReplicatedStore } from '../backends/wrappers/replicated-store.js';
import { VolumeKeys } from '../inode/keys.js';
import type { Config } from './config.js';
import { makeStoreFaults, parseFaultEnv, type FaultSettings } from './fault-env.js';
import { makeLogger } from './logger.js';

/** The configured store, as the volume uses it. */
export interface OpenedStore {
  /** Metadata: the store itself, or its intent layer when it has no native multi-key commit. */
  readonly meta: KvStore;
  /** Immutable blocks: the store itself (never part of a multi-key commit). */
  readonly data: KvStore;
  /**
   * On a store with several failure domains (a memcached pool), the layer below the intent
   * layer that keeps metadata copies on several domains; its copy count is set from the
   * superblock when the volume is opened or formatted.
   */
  readonly replication?: ReplicatedStore;
  close(): Promise<void>;
}

/**
 * @param faults crash points for tests (fault-env.ts); default: VOLDFS_CRASH_AT and
 *   VOLDFS_CRASH_TRACE as this process was started with, usually neither (no hooks at all)
 * @param observe told of every store request (a mount's statistics)
 */
export async function openStore(
  config: Config,
  faults: FaultSettings | undefined = parseFaultEnv(process.env),
  observe?: StoreObserver,
): Promise<OpenedStore> {
  const backend = findBackend(config.db);
  if (!backend) throw new Error(`unknown backend ${config.db}`);
  const opened = await backend.create(config.backendOptions);
  // Every request that reaches the store, counted where it leaves voldfs.
  const raw = observe ? new MeteredStore(opened, observe) : opened;
  const keys = new VolumeKeys(`${config.volume}:`);
  // Metadata copies need a store without native commit: a commit's keys must stay on one domain there.
  const replicate = (store: KvStore): ReplicatedStore | undefined =>
    store.capabilities.placement.domains > 1 && !store.capabilities.atomicCommit
      ? new ReplicatedStore(store, { sentinelKey: keys.sentinel(), everywhere: [keys.superblock()], log: makeLogger(config.logLevel) })
      : undefined;
  if (!faults) {
    const replication = replicate(raw);
    const meta = withAtomicCommit(replication ?? raw);
    return { meta, data: raw, replication, close: () => raw.close() };
  }
  // Testing aid: blocks (and, on stores with native commit, everything) through a wrapper
  // that counts calls; the intent layer counts its own.
  const hooks = makeStoreFaults(faults, `${config.volume}:`);
  const data = new FaultStore(raw, hooks.store);
  const replication = data.commit ? undefined : replicate(raw);
  const meta = data.commit ? withAtomicCommit(data) : withAtomicCommit(replication ?? raw, { faults: hooks.intent });
  return { meta, data, replication, close: () => raw.close() };
}
