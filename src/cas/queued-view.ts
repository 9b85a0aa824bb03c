import type { KvStore, StoreCapabilities, Version, VersionedValue } from '../backends/kv-store.js';
import type { CommitQueue } from './commit-queue.js';

/** The version told for a write still queued: no store issues it, so no condition on it holds. */
export const QUEUED_VERSION = '(queued)' as Version;

/**
 * A store as this mount sees it: reads find what the commit queue holds before the store does
 * (operations answered but not applied yet), with the version a write will have once the store
 * has taken it. Everything else goes straight to the store. For the reads that do not go
 * through a transaction: chunk maps and indexes on the data path, lock records, listings.
 */
export class QueuedView implements KvStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  readonly getValueInto?: KvStore['getValueInto'];
  readonly commit?: KvStore['commit'];
  readonly commitVersioned?: KvStore['commitVersioned'];
  readonly scan?: KvStore['scan'];
  readonly compactListing?: KvStore['compactListing'];
  readonly sync?: KvStore['sync'];

  constructor(
    private readonly inner: KvStore,
    private readonly queue: CommitQueue,
  ) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    this.getValueInto = inner.getValueInto?.bind(inner);
    this.commit = inner.commit?.bind(inner);
    this.commitVersioned = inner.commitVersioned?.bind(inner);
    this.scan = inner.scan?.bind(inner);
    this.compactListing = inner.compactListing?.bind(inner);
    this.sync = inner.sync?.bind(inner);
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    for (;;) {
      const queued = this.queue.lookup(key);
      if (queued === undefined) return this.inner.get(key);
      if (queued instanceof Promise) await queued;
      // Queued, not handed over: its version is not known yet. A write conditional on this
      // token can never hold (the writer reads again), and no wait here can hang on the queue.
      else if (queued === null) return undefined;
      else if (Buffer.isBuffer(queued)) return { value: queued, version: QUEUED_VERSION };
      else return queued.value ? { value: queued.value, version: queued.version! } : undefined;
    }
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    const queued = keys.map((key) => this.queue.lookup(key) !== undefined);
    const fromStore = keys.filter((_, i) => !queued[i]);
    const found = fromStore.length > 0 ? await this.inner.getMany(fromStore) : [];
    let next = 0;
    return Promise.all(keys.map((key, i) => (queued[i] ? this.get(key) : Promise.resolve(found[next++]))));
  }

  put(...args: Parameters<KvStore['put']>): ReturnType<KvStore['put']> {
    return this.inner.put(...args);
  }

  delete(...args: Parameters<KvStore['delete']>): ReturnType<KvStore['delete']> {
    return this.inner.delete(...args);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
