import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { KvStore } from '../../backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../../chunk/record-codec.js';

/** What a mount's lease record holds: until when (wall clock, ms) its locks count, and who it is. */
export interface LeaseRecord {
  readonly expiresAt: number;
  readonly host: string;
  readonly pid: number;
}

/** Whether a lease record (or its absence) still makes its mount's locks count at `now`. */
export function leaseIsLive(lease: LeaseRecord | undefined, now: number): boolean {
  return lease !== undefined && lease.expiresAt > now;
}

export function decodeLease(key: string, bytes: Buffer | undefined): LeaseRecord | undefined {
  return bytes ? decodeRecord<LeaseRecord>(key, bytes) : undefined;
}

/**
 * A mount's lease on its locks: a record that the mount rewrites every third of the lease
 * while it holds locks. A mount that dies stops renewing it, and its locks stop counting once
 * it expires (wall clock: mounts' clocks must agree within a small part of the lease, as NTP
 * keeps them). Only the holder writes it; others and fsck only delete it once expired.
 */
export class MountLease {
  private timer: NodeJS.Timeout | undefined;
  private started: Promise<void> | undefined;

  constructor(
    private readonly store: KvStore,
    private readonly key: string,
    readonly leaseMs: number,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Writes the lease (once) and starts renewing it; call before storing the first lock. */
  ensure(): Promise<void> {
    this.started ??= this.renew().then(() => {
      this.timer = setInterval(() => {
        this.renew().catch((err: unknown) => this.log.warn({ err }, 'cannot renew the lock lease; other mounts will drop our locks when it expires'));
      }, Math.max(1, Math.floor(this.leaseMs / 3)));
      this.timer.unref();
    });
    const started = this.started;
    // A failed first write is tried again by the next lock.
    started.catch(() => {
      if (this.started === started) this.started = undefined;
    });
    return started;
  }

  private async renew(): Promise<void> {
    const record: LeaseRecord = { expiresAt: this.now() + this.leaseMs, host: hostname(), pid: process.pid };
    await this.store.put(this.key, encodeRecord(record));
  }

  /** Stops renewing and deletes the lease (unmount, once the mount's locks are gone). */
  async end(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.started === undefined) return;
    this.started = undefined;
    await this.store.delete(this.key);
  }
}
