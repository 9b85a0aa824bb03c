import type { FsckContext } from './context.js';

/**
 * Pending transactions of the intent layer (stores without native commit). With repair,
 * IntentCommitStore.recover() rolls committed ones forward and abandoned ones back; pending
 * ones whose owner may still run are aborted only offline. Without repair they are listed.
 * Runs first, so the walk sees settled records.
 * @returns a note when the store cannot list intents
 */
export async function checkIntents(ctx: FsckContext): Promise<string | undefined> {
  const store = ctx.target.intents;
  if (!store) return undefined;
  const cannotList = 'the store cannot list keys, so pending transactions cannot be listed (each read settles those it meets)';
  if (!ctx.repair) {
    const intents = await store.pendingIntents();
    if (!intents) return cannotList;
    const now = ctx.now();
    for (const intent of intents) {
      const age = Math.max(0, Math.round((now - intent.createdAt) / 1000));
      ctx.problems.add({
        kind: 'pending-intent',
        key: intent.txid,
        what: `${intent.state} transaction over ${intent.keys.length} keys, begun ${age} s ago`,
        action: 'left',
      });
    }
    return undefined;
  }
  const report = await store.recover({ abortLive: ctx.offline, envelopePrefix: false });
  if (!report.listed) return cannotList;
  const add = (txid: string, what: string, action: 'repaired' | 'needs-offline' | 'failed', done: string) =>
    ctx.problems.add({ kind: 'pending-intent', key: txid, what, action, done });
  for (const txid of report.rolledForward) add(txid, 'a committed transaction was left half applied', 'repaired', 'rolled forward');
  for (const txid of report.rolledBack) add(txid, 'an abandoned transaction held locks', 'repaired', 'rolled back');
  for (const txid of report.live) {
    add(txid, 'a pending transaction whose owner may still be running', 'needs-offline', 'left: --offline aborts it');
  }
  for (const txid of report.unfinished) add(txid, 'a transaction whose keys kept changing', 'failed', 'left: run fsck again');
  return undefined;
}
