import { ifVersion } from '../backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import { transact } from '../cas/transaction.js';
import type { HeldLock } from '../inode/locks/lock-ranges.js';
import type { LockRecord } from '../inode/locks/lock-table.js';
import { decodeLease, leaseIsLive } from '../inode/locks/mount-lease.js';
import type { FsckContext } from './context.js';
import { FIX_ORDER } from './problems.js';

/**
 * File locks of mounts that died: lock records holding locks of a mount whose lease has
 * expired (or is gone), and expired lease records. They no longer block anyone (a lock counts
 * only while its mount's lease is live), so they are leftovers; the repair re-reads each
 * record and drops what is still stale. Safe with live mounts: a live mount renews its lease.
 * @returns a note when the store cannot list keys
 */
export async function checkLocks(ctx: FsckContext): Promise<string | undefined> {
  const { meta, keys } = ctx.target;
  if (!meta.scan) return 'the store cannot list keys: file locks left by dead mounts cannot be looked for';
  const leaseKeys: string[] = [];
  for await (const key of meta.scan(keys.mountLeasePrefix())) leaseKeys.push(key);
  const lockKeys: string[] = [];
  for await (const key of meta.scan(keys.locksPrefix())) lockKeys.push(key);

  const liveMounts = async (mounts: readonly string[]): Promise<Set<string>> => {
    const mountKeys = mounts.map((m) => keys.mountLease(m));
    const leases = await meta.getMany(mountKeys);
    const now = ctx.now();
    return new Set(mounts.filter((_, i) => leaseIsLive(decodeLease(mountKeys[i], leases[i]?.value), now)));
  };
  const staleOf = async (locks: readonly HeldLock[]) => {
    const live = await liveMounts([...new Set(locks.map((h) => h.mount))]);
    return locks.filter((h) => !live.has(h.mount));
  };

  const records = await ctx.readMany(meta, lockKeys);
  for (const [i, key] of lockKeys.entries()) {
    const found = records[i];
    if (!found) continue;
    const stale = await staleOf(decodeRecord<LockRecord>(key, found.value).locks);
    if (stale.length === 0) continue;
    const ino = Number(key.slice(keys.locksPrefix().length));
    const mounts = [...new Set(stale.map((h) => h.mount))];
    ctx.problems.add(
      { kind: 'stale-lock', ino, key, what: `${stale.length} file lock(s) of mount(s) ${mounts.join(', ')}, whose lease has expired` },
      {
        order: FIX_ORDER.locks,
        run: async () => {
          const dropped = await transact(meta, undefined, async (tx) => {
            const bytes = await tx.read(key);
            if (!bytes) return 0;
            const { locks } = decodeRecord<LockRecord>(key, bytes);
            const dead = new Set((await staleOf(locks)).map((h) => h.mount));
            const kept = locks.filter((h) => !dead.has(h.mount));
            if (kept.length === locks.length) return 0;
            if (kept.length === 0) tx.remove(key);
            else tx.write(key, encodeRecord({ locks: kept } satisfies LockRecord));
            return locks.length - kept.length;
          });
          return dropped > 0 ? { outcome: 'repaired', done: `dropped ${dropped} lock(s)` } : { outcome: 'gone', done: 'no longer there' };
        },
      },
    );
  }

  const leases = await ctx.readMany(meta, leaseKeys);
  for (const [i, key] of leaseKeys.entries()) {
    const found = leases[i];
    const lease = decodeLease(key, found?.value);
    if (!found || leaseIsLive(lease, ctx.now())) continue;
    const age = Math.round((ctx.now() - (lease?.expiresAt ?? 0)) / 1000);
    ctx.problems.add(
      { kind: 'stale-lock', key, what: `the lock lease of a mount on ${lease?.host ?? '?'} (pid ${lease?.pid ?? '?'}) expired ${age} s ago` },
      {
        order: FIX_ORDER.locks + 1,
        run: async () => {
          // Only the version read: a mount that came back and renewed it keeps it.
          const deleted = await meta.delete(key, ifVersion(found.version));
          return deleted ? { outcome: 'repaired', done: 'lease record deleted' } : { outcome: 'gone', done: 'renewed or deleted meanwhile' };
        },
      },
    );
  }
  return undefined;
}
