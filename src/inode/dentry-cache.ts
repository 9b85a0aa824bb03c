import { LRUCache } from 'lru-cache';
import type { DirEntry } from './records.js';

/**
 * Names this mount resolved recently: FUSE's path API makes every operation walk its path, and
 * each step would otherwise read and decode a directory record. Entries live as long as the
 * kernel's own entry cache (a change by another mount shows after that long, as in the kernel)
 * and this mount's own changes drop them at once.
 */
export class DentryCache {
  private readonly lru: LRUCache<string, DirEntry>;

  constructor(ttlMs: number, max = 200_000) {
    this.lru = new LRUCache({ max, ttl: Math.max(1, ttlMs) });
  }

  get(parent: number, name: string): DirEntry | undefined {
    return this.lru.get(`${parent}/${name}`);
  }

  set(parent: number, name: string, entry: DirEntry): void {
    this.lru.set(`${parent}/${name}`, entry);
  }

  forget(parent: number, name: string): void {
    this.lru.delete(`${parent}/${name}`);
  }
}
