import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KvStore } from '../../backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../../chunk/record-codec.js';
import { transact } from '../../cas/transaction.js';
import { FsError } from '../fs-error.js';
import type { VolumeKeys } from '../keys.js';
import { applyLock, findConflict, type HeldLock, type LockKind, type LockRequest, type LockType } from './lock-ranges.js';
import { MountLease, decodeLease, leaseIsLive } from './mount-lease.js';

/** The lock record of an inode: every lock any mount holds on it. */
export interface LockRecord {
  readonly locks: HeldLock[];
}

export interface LockTableOptions {
  readonly store: KvStore;
  readonly keys: VolumeKeys;
  readonly log: Logger;
  /** How long a mount's locks outlive its last lease renewal, ms (default 30 s). */
  readonly leaseMs?: number;
  /** This mount's id in lock records; default a fresh random one. */
  readonly mountId?: string;
  /** Wall clock, ms; injectable for tests. */
  readonly now?: () => number;
}

export const DEFAULT_LOCK_LEASE_MS = 30_000;

/**
 * File locks shared by every mount of a volume: one record per locked inode (`l:<ino>`)
 * updated by compare-and-swap, and one lease record per mount holding locks (`m:<id>`). A lock
 * whose mount's lease has expired no longer counts and is dropped by the next update of its
 * record (or by fsck --repair). Every call reads the store afresh: locks are never cached.
 */
export class LockTable {
  readonly mountId: string;
  private readonly lease: MountLease;
  private readonly now: () => number;
  /** This mount's own locks by inode, as last stored: spares store trips on closes without locks. */
  private readonly mine = new Map<number, HeldLock[]>();
  /** Waiters to wake when a lock of this mount is released, by inode. */
  private readonly waiters = new Map<number, Set<() => void>>();
  private closed = false;

  constructor(private readonly options: LockTableOptions) {
    this.mountId = options.mountId ?? randomBytes(8).toString('hex');
    this.now = options.now ?? Date.now;
    this.lease = new MountLease(options.store, options.keys.mountLease(this.mountId), options.leaseMs ?? DEFAULT_LOCK_LEASE_MS, options.log, this.now);
  }

  /**
   * Takes, changes or releases (type undefined) a lock of this mount, unless another owner
   * holds a conflicting one: that lock is returned and nothing changes.
   * @throws FsError EIO for a new lock once the table is closed (unmount)
   */
  async set(ino: number, request: Omit<LockRequest, 'mount'>): Promise<HeldLock | undefined> {
    const full: LockRequest = { ...request, mount: this.mountId };
    // A waiter still retrying at unmount must not write a lease again after close().
    if (this.closed && full.type !== undefined) throw new FsError('EIO', 'the mount is closing');
    if (full.type !== undefined) await this.lease.ensure();
    else if (!this.holdsAny(ino)) return undefined;
    return this.update(ino, (held) => {
      if (full.type !== undefined) {
        const conflict = findConflict(held, { ...full, type: full.type });
        if (conflict) return { conflict };
      }
      return { locks: applyLock(held, full) };
    });
  }

  /** The lock that would keep `request` from being granted (getlk), or undefined. */
  async test(ino: number, request: Omit<LockRequest, 'mount'> & { type: LockType }): Promise<HeldLock | undefined> {
    const held = await this.liveLocks(ino, (await this.options.store.get(this.options.keys.locks(ino)))?.value);
    return findConflict(held, { ...request, mount: this.mountId });
  }

  /** Drops the locks of one owner on an inode (POSIX locks at close, flock at last close). */
  /** Whether this mount holds any lock on `ino` (no store access: a close without locks costs nothing). */
  holdsAny(ino: number): boolean {
    return (this.mine.get(ino)?.length ?? 0) > 0;
  }

  async releaseOwner(ino: number, owner: string, kind: LockKind): Promise<void> {
    if (!(this.mine.get(ino) ?? []).some((h) => h.owner === owner && h.kind === kind)) return;
    await this.update(ino, (held) => ({ locks: held.filter((h) => !(h.mount === this.mountId && h.owner === owner && h.kind === kind)) }));
  }

  /** Drops every lock taken through an open file (its last close: OFD and flock locks). */
  async releaseHandle(ino: number, fh: number): Promise<void> {
    if (!(this.mine.get(ino) ?? []).some((h) => h.fh === fh)) return;
    await this.update(ino, (held) => ({ locks: held.filter((h) => !(h.mount === this.mountId && h.fh === fh)) }));
  }

  /**
   * Resolves when a lock of this mount on `ino` is released, or after `ms`, whichever comes
   * first: a waiter then tries again (other mounts' releases are seen by trying again).
   */
  changed(ino: number, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiters.get(ino) ?? new Set<() => void>();
      this.waiters.set(ino, set);
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(ino);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      set.add(wake);
    });
  }

  /** Releases every lock of this mount and ends its lease (unmount). */
  async close(): Promise<void> {
    this.closed = true;
    for (const ino of [...this.mine.keys()]) {
      await this.update(ino, (held) => ({ locks: held.filter((h) => h.mount !== this.mountId) })).catch((err: unknown) =>
        this.options.log.warn({ ino, err }, 'cannot release the locks of this mount; they go when its lease expires'),
      );
    }
    await this.lease.end();
  }

  /**
   * One compare-and-swap update of an inode's lock record, retried on conflicts. Locks of
   * mounts whose lease has expired are dropped on the way.
   */
  private async update(ino: number, change: (held: HeldLock[]) => { locks: HeldLock[] } | { conflict: HeldLock }): Promise<HeldLock | undefined> {
    const key = this.options.keys.locks(ino);
    const outcome = await transact(this.options.store, undefined, async (tx) => {
      const bytes = await tx.read(key);
      const held = await this.liveLocks(ino, bytes);
      const result = change(held);
      if ('conflict' in result) return result;
      if (result.locks.length === 0) {
        if (bytes) tx.remove(key);
      } else {
        tx.write(key, encodeRecord({ locks: result.locks } satisfies LockRecord));
      }
      return result;
    });
    if ('conflict' in outcome) return outcome.conflict;
    const after = outcome.locks.filter((h) => h.mount === this.mountId);
    if (after.length > 0) this.mine.set(ino, after);
    else this.mine.delete(ino);
    // Any change may have freed what a waiter of this mount wants: it reads the record again
    // rather than waiting for its next poll.
    this.wake(ino);
    return undefined;
  }

  private wake(ino: number): void {
    for (const wake of [...(this.waiters.get(ino) ?? [])]) wake();
  }

  /** The locks of a record whose mount is this one or still holds a live lease. */
  private async liveLocks(ino: number, bytes: Buffer | undefined): Promise<HeldLock[]> {
    if (!bytes) return [];
    const { locks } = decodeRecord<LockRecord>(this.options.keys.locks(ino), bytes);
    const mounts = [...new Set(locks.map((h) => h.mount).filter((m) => m !== this.mountId))];
    if (mounts.length === 0) return locks;
    const leaseKeys = mounts.map((m) => this.options.keys.mountLease(m));
    const leases = await this.options.store.getMany(leaseKeys);
    const now = this.now();
    const live = new Set(mounts.filter((_, i) => leaseIsLive(decodeLease(leaseKeys[i], leases[i]?.value), now)));
    return locks.filter((h) => h.mount === this.mountId || live.has(h.mount));
  }
}
