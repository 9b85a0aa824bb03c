/**
 * Store calls, and how many of them wait in sequence, per small-file operation, on a volume
 * opened without a mount:
 *
 *   VOLDFS_DB=mc VOLDFS_MC_SERVERS=... npx vite-node scripts/trace-store-calls.ts [files]
 *   TRACE_OP=create:50 ...     also prints every call of that operation (create of file 50)
 *
 * On a fresh volume (a random name, left behind), `files` times (default 200): create (as
 * FUSE's create does, the file opened), open, write 4 KiB, flush, release, chmod, utimens.
 * Every call that reaches the backend (below the intent and replication layers) is recorded
 * with its start and end. "waits" counts the calls that started after every earlier call of
 * the same kind of operation had ended: the round trips it waited for one after another. A
 * store call may be several requests on the wire (the key log and CAS reads of kumofs).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { KvStore } from '../src/backends/kv-store.js';
import { findBackend } from '../src/backends/registry.js';
import { parseConfig } from '../src/cli/config.js';
import { openVolume } from '../src/cli/open-volume.js';

interface Call {
  readonly method: string;
  readonly key: string;
  readonly start: number;
  end: number;
}

/** Calls of the operation running now. */
let calls: Call[] = [];

/** `store`, recording every call; getMany counts once, whatever the store does inside. */
function traced(store: KvStore): KvStore {
  const record = <T>(method: string, key: string, run: () => Promise<T>): Promise<T> => {
    const call: Call = { method, key, start: performance.now(), end: Infinity };
    calls.push(call);
    return run().finally(() => (call.end = performance.now()));
  };
  return {
    name: store.name,
    capabilities: store.capabilities,
    get: (key) => record('get', key, () => store.get(key)),
    getMany: (keys) => record('getMany', keys[0] ?? '', () => store.getMany(keys)),
    put: (key, value, condition) => record(`put.${condition?.kind ?? 'none'}`, key, () => store.put(key, value, condition)),
    delete: (key, condition) => record(`delete.${condition?.kind ?? 'none'}`, key, () => store.delete(key, condition)),
    scan: store.scan?.bind(store),
    compactListing: store.compactListing?.bind(store),
    close: () => store.close(),
  };
}

/** A key's kind: its record type letter (`i` inode, `d` directory node, `c` chunk map, ...). */
function kindOf(key: string): string {
  if (key.startsWith('_cas/')) return 'intent';
  return key.split(':')[1] ?? key;
}

function summary(list: readonly Call[]): { waits: number; byMethod: Map<string, number> } {
  const sorted = [...list].sort((a, b) => a.start - b.start);
  let waits = 0;
  let lastEnd = -Infinity;
  const byMethod = new Map<string, number>();
  for (const call of sorted) {
    if (call.start >= lastEnd) waits++;
    lastEnd = Math.max(lastEnd, call.end);
    const kind = `${call.method} ${kindOf(call.key)}`;
    byMethod.set(kind, (byMethod.get(kind) ?? 0) + 1);
  }
  return { waits, byMethod };
}

async function main(): Promise<void> {
  const files = Number(process.argv[2] ?? 200);
  const config = parseConfig({ ...process.env, VOLDFS_VOLUME: `trace${randomBytes(3).toString('hex')}` });
  const backend = findBackend(config.db);
  if (!backend) throw new Error(`unknown VOLDFS_DB ${config.db}`);
  const create = backend.create.bind(backend);
  backend.create = async (options: never) => traced(await create(options));
  const opened = await openVolume(config);
  const { fs } = opened;
  const caller = { uid: 0, gid: 0 };
  const dir = await fs.namespace.create(1, 'd', 0o40755, caller);
  const data = randomBytes(4096);
  const phases = new Map<string, Call[]>();
  let current = 0;
  const phase = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    calls = [];
    const result = await run();
    phases.set(name, [...(phases.get(name) ?? []), ...calls]);
    if (process.env.TRACE_OP === `${name}:${current}`) {
      const t0 = calls[0]?.start ?? 0;
      for (const c of calls) console.log(`  ${name} ${(c.start - t0).toFixed(2)}-${(c.end - t0).toFixed(2)} ms ${c.method} ${c.key}`);
    }
    return result;
  };
  const started = performance.now();
  for (current = 0; current < files; current++) {
    const ino = await phase('create', () => fs.namespace.create(dir, `f${current}`, 0o100644, caller, { opened: true }));
    const fh = await phase('open', () => fs.files.open(ino, 1));
    await phase('write', () => fs.files.write(fh, 0, data));
    await phase('flush', () => fs.files.flush(fh));
    await phase('release', () => fs.files.release(fh));
    await phase('chmod', () => fs.attributes.chmod(ino, 0o100600));
    await phase('utimens', () => fs.attributes.utimens(ino, { sec: 1, nsec: 0 }, { sec: 1, nsec: 0 }));
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`${config.db}: ${files} files in ${seconds.toFixed(2)} s (${(files / seconds).toFixed(0)} files/s)`);
  let total = 0;
  let totalWaits = 0;
  for (const [name, list] of phases) {
    const { waits, byMethod } = summary(list);
    total += list.length;
    totalWaits += waits;
    const detail = [...byMethod].map(([kind, n]) => `${kind}=${(n / files).toFixed(2)}`).join(' ');
    console.log(`${name.padEnd(8)} calls ${(list.length / files).toFixed(2)} waits ${(waits / files).toFixed(2)}  ${detail}`);
  }
  console.log(`per file: calls ${(total / files).toFixed(2)}, waits ${(totalWaits / files).toFixed(2)}`);
  await opened.close();
}

await main();
