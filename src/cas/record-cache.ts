import { LRUCache } from 'lru-cache';
import type { Version } from '../backends/kv-store.js';

/** A record as last seen: its bytes and version, or known absent. */
export interface CachedRecord {
  readonly value: Buffer | undefined;
  readonly version: Version | null;
}

export interface RecordCacheOptions {
  /** How long a record may be served without asking the store, in ms. Default 1000. */
  readonly ttlMs?: number;
  /** Most records kept. Default 100,000. */
  readonly maxEntries?: number;
  /** Most bytes of records kept (values and keys). Default 64 MiB. */
  readonly maxBytes?: number;
}

/**
 * Metadata records as this mount last saw them. Serving a stale record is safe for writes:
 * every update is conditional on the version read, so a stale read only costs a failed CAS and
 * a retry (after which the keys are dropped from the cache). For reads, staleness is bounded by
 * the TTL; opening a file reads its inode afresh (close-to-open consistency).
 */
export class RecordCache {
  private readonly lru: LRUCache<string, { record: CachedRecord }>;
  /** Lookups served, and not, since the mount started. */
  hits = 0;
  misses = 0;

  constructor(options: RecordCacheOptions = {}) {
    this.lru = new LRUCache({
      max: options.maxEntries ?? 100_000,
      ttl: options.ttlMs ?? 1000,
      maxSize: options.maxBytes ?? 64 * 1024 * 1024,
      // Directory leaves and inline chunks reach several KiB: a count alone bounds nothing.
      sizeCalculation: (entry, key) => 64 + key.length + (entry.record.value?.length ?? 0),
    });
  }

  get(key: string): CachedRecord | undefined {
    const found = this.lru.get(key)?.record;
    if (found) this.hits++;
    else this.misses++;
    return found;
  }

  set(key: string, record: CachedRecord): void {
    this.lru.set(key, { record });
  }

  invalidate(key: string): void {
    this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
  }
}
