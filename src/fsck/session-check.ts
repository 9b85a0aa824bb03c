import { isStale, readSessions, updateSessions } from '../inode/sessions.js';
import type { FsckContext } from './context.js';
import { FIX_ORDER } from './problems.js';

/**
 * Sessions of mounts that are gone (their heartbeat is three beats old): `voldfs status` shows
 * them stale, and a repair removes them. Safe while mounts are active: a live mount renews its
 * session, and the removal re-checks the heartbeat in the same conditional update.
 */
export async function checkSessions(ctx: FsckContext): Promise<void> {
  const { meta, keys } = ctx.target;
  const key = keys.mounts();
  const sessions = await readSessions(meta, key);
  for (const [id, session] of Object.entries(sessions)) {
    if (!isStale(session, Date.now())) continue;
    ctx.problems.add(
      {
        kind: 'stale-mount',
        key,
        what: `mount ${session.host}:${session.pid} on ${session.mountpoint} has not renewed its session since ${new Date(session.heartbeatAt).toISOString()}: it is gone`,
      },
      {
        order: FIX_ORDER.staleMounts,
        run: async () => {
          let removed = false;
          await updateSessions(meta, key, (now) => {
            const current = now[id];
            removed = current !== undefined && isStale(current, Date.now());
            if (removed) delete now[id];
            return removed;
          });
          return removed ? { outcome: 'repaired', done: 'session removed' } : { outcome: 'gone', done: 'the session was renewed or removed meanwhile' };
        },
      },
    );
  }
}
