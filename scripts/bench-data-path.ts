// Sequential write and read of one file straight through the inode layer (no FUSE), to see
// what the data path costs on a store. Usage: npx tsx scripts/bench-data-path.ts [lmdb|mem] [MiB]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { LmdbStore } from '../src/backends/lmdb/lmdb-store.js';
import { MemoryStore } from '../src/backends/memory/index.js';
import type { KvStore } from '../src/backends/kv-store.js';
import { FileSystem } from '../src/inode/filesystem.js';
import { ROOT_INO, S_IFREG } from '../src/inode/records.js';
import { Volume } from '../src/inode/volume.js';

const kind = process.argv[2] ?? 'lmdb';
const mib = Number(process.argv[3] ?? 512);
const dir = await mkdtemp(join(tmpdir(), 'voldfs-bench-'));
const store: KvStore = kind === 'mem' ? new MemoryStore({ maxValueBytes: 16 << 20 }) : await LmdbStore.open({ path: dir });
let fs = new FileSystem(await Volume.open({ store, log: pino({ level: 'warn' }), prefix: 'b:' }));
const ino = await fs.namespace.create(ROOT_INO, 'f', S_IFREG | 0o644, { uid: 0, gid: 0 });
const piece = Buffer.alloc(128 * 1024, 7);
let t = performance.now();
let fh = await fs.files.open(ino, 2);
for (let off = 0; off < mib * 1024 * 1024; off += piece.length) await fs.files.write(fh, off, piece);
await fs.files.release(fh);
const w = performance.now() - t;
// A fresh volume object: the read starts with an empty block cache, as after a remount.
await fs.close();
fs = new FileSystem(await Volume.open({ store, log: pino({ level: 'warn' }), prefix: 'b:' }));
t = performance.now();
fh = await fs.files.open(ino, 0);
const into = Buffer.alloc(piece.length);
for (let off = 0; off < mib * 1024 * 1024; off += piece.length) await fs.files.read(fh, off, piece.length, into);
await fs.files.release(fh);
const r = performance.now() - t;
console.log(`${kind}: write ${(mib / (w / 1000)).toFixed(0)} MiB/s, read ${(mib / (r / 1000)).toFixed(0)} MiB/s (${mib} MiB)`);
await fs.close();
await store.close();
await rm(dir, { recursive: true, force: true });
