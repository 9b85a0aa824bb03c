// Small-file create+write+close straight through the inode layer, timing each step.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { LmdbStore } from '../../src/backends/lmdb/lmdb-store.js';
import { FileSystem } from '../../src/inode/filesystem.js';
import { ROOT_INO, S_IFREG } from '../../src/inode/records.js';
import { Volume } from '../../src/inode/volume.js';

const dir = await mkdtemp(join(tmpdir(), 'voldfs-small-'));
const store = await LmdbStore.open({ path: dir });
const fs = new FileSystem(await Volume.open({ store, log: pino({ level: 'warn' }), prefix: 'b:' }));
const t = { lookup: 0, create: 0, open: 0, write: 0, flush: 0, release: 0 };
const n = Number(process.argv[2] ?? 1000);
const data = Buffer.from('hello\n');
for (let i = 0; i < n; i++) {
  let a = performance.now();
  const lap = (k: keyof typeof t) => { const b = performance.now(); t[k] += b - a; a = b; };
  await fs.namespace.lookup(ROOT_INO, `f${i}`); lap('lookup');
  const ino = await fs.namespace.create(ROOT_INO, `f${i}`, S_IFREG | 0o644, { uid: 0, gid: 0 }); lap('create');
  const fh = await fs.files.open(ino, 1); lap('open');
  await fs.files.write(fh, 0, data); lap('write');
  await fs.files.flush(fh); lap('flush');
  await fs.files.release(fh); lap('release');
}
for (const [k, v] of Object.entries(t)) console.log(k.padEnd(8), (v / n).toFixed(3), 'ms');
await fs.close();
await store.close();
await rm(dir, { recursive: true, force: true });
