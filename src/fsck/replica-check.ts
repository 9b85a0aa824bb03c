import pMap from 'p-map';
import type { FsckContext } from './context.js';
import { FIX_ORDER } from './problems.js';

/** Keys compared at once; each costs one read per copy. */
const COMPARE_CONCURRENCY = 32;

/**
 * Every metadata record (and intent record) must have the same bytes on each of its copies'
 * domains. After servers restarted empty (or were demoted for missing writes) their copies are
 * missing or stale: the repair copies the acting primary's record to them, the one reads are
 * served from (src/backends/wrappers/replicated-store.ts). Runs before the loss markers are planted again, so
 * a refilled domain is trusted only once it holds everything.
 */
export async function checkReplicas(ctx: FsckContext): Promise<void> {
  const { replication, keys, intents } = ctx.target;
  if (!replication || replication.replicas < 2) return;
  const scan = replication.scan;
  if (!scan) {
    ctx.notes.push('the store cannot list keys: metadata copies were not compared');
    return;
  }
  const blockPrefix = keys.blockPrefix();
  const listed: string[] = [];
  for (const prefix of [keys.prefix, ...(intents ? [intents.namespace] : [])]) {
    for await (const key of scan(prefix)) if (!key.startsWith(blockPrefix)) listed.push(key);
  }
  const differ = await pMap(listed, async (key) => ((await replication.resync(key, false)) > 0 ? key : undefined), { concurrency: COMPARE_CONCURRENCY });
  const damaged = differ.filter((key): key is string => key !== undefined);
  if (damaged.length === 0) return;
  ctx.problems.add(
    {
      kind: 'metadata-copies',
      what:
        `${damaged.length} of ${listed.length} metadata records miss a copy, or hold a different one, on some of their ` +
        `${replication.replicas} domains (servers restarted empty, or missed writes while unreachable): ` +
        'fewer servers may be lost than the volume was made for',
    },
    {
      order: FIX_ORDER.metadataCopies,
      run: async () => {
        const rewritten = await pMap(damaged, (key) => replication.resync(key), { concurrency: COMPARE_CONCURRENCY });
        const total = rewritten.reduce((a, b) => a + b, 0);
        ctx.counts.metadataCopiesRewritten += total;
        return { outcome: 'repaired', done: `${total} copies rewritten from each record's acting primary` };
      },
    },
  );
}
