/**
 * The metadata path without FUSE: small files created, written and closed straight through the
 * inode layer on a store, then stat'ed (warm, then on a freshly opened volume) and unlinked, with
 * the time of each step. It tells the store path's share of `npm run bench`'s small_create apart
 * from the kernel's and the binding's.
 *
 *   npx tsx scripts/bench-metadata.ts [--files N] [--size BYTES]
 *
 * Defaults: 2,000 files of 4,096 bytes, all in one directory, one after the other, as the
 * workload's small_create does them. Each file takes the steps of one create(2)+write+close through
 * the mount: lookup (the kernel's negative lookup), create (the name and the inode), open (the
 * handle FUSE create returns), write, flush, release.
 *
 * Store: the one the VOLDFS_* variables configure, opened as `voldfs mount` opens it (with the
 * intent layer where the store needs one). Without VOLDFS_DB: LMDB in a fresh temp dir, removed
 * at the end. On a store given by VOLDFS_*, the files go to a volume of their own
 * (bench-metadata-<pid>) whose records are left in the store.
 *
 * Prints one line per figure, `metadata metric value unit`, as bench/workload.sh does.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/cli/config.js';
import { openStore, type OpenedStore } from '../src/cli/open-store.js';
import { makeLogger } from '../src/cli/logger.js';
import { FileSystem } from '../src/inode/filesystem.js';
import { S_IFREG } from '../src/inode/records.js';
import { Volume } from '../src/inode/volume.js';

const { values } = parseArgs({
  options: { files: { type: 'string', default: '2000' }, size: { type: 'string', default: '4096' } },
});
const files = Number(values.files);
const size = Number(values.size);
if (!Number.isInteger(files) || files < 1 || !Number.isInteger(size) || size < 0) {
  console.error('usage: npx tsx scripts/bench-metadata.ts [--files N (>= 1)] [--size BYTES (>= 0)]');
  process.exit(2);
}

const env = { ...process.env };
let tempDir: string | undefined;
if (!env.VOLDFS_DB) {
  tempDir = await mkdtemp(join(tmpdir(), 'voldfs-bench-metadata-'));
  Object.assign(env, { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(tempDir, 'store.lmdb') });
}
if (!env.VOLDFS_LOG_LEVEL) env.VOLDFS_LOG_LEVEL = 'warn';
const config = parseConfig(env);
const log = makeLogger(config.logLevel);
const prefix = tempDir ? `${config.volume}:` : `bench-metadata-${process.pid}:`;
const who = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
const emit = (metric: string, value: number, unit: string, digits = 1) => console.log(`metadata ${metric} ${value.toFixed(digits)} ${unit}`);

async function openFs(store: OpenedStore): Promise<FileSystem> {
  const volume = await Volume.open({
    store: store.meta,
    dataStore: store.data,
    replication: store.replication,
    log,
    prefix,
    cacheTtlMs: config.cacheSeconds * 1000,
  });
  return new FileSystem(volume, async () => {
    await store.data.sync?.();
  });
}

const store = await openStore(config);
try {
  let fs = await openFs(store);
  console.log(`metadata store ${store.data.name} ${files} files of ${size} bytes`);
  const dir = await fs.mkdir('/bench-metadata', 0o755, who);
  const names = Array.from({ length: files }, (_, i) => `f${String(i).padStart(6, '0')}`);
  const data = Buffer.alloc(size, 0x5a);

  const steps = { lookup: 0, create: 0, open: 0, write: 0, flush: 0, release: 0 };
  let started = performance.now();
  for (const name of names) {
    let a = performance.now();
    const lap = (step: keyof typeof steps) => {
      const b = performance.now();
      steps[step] += b - a;
      a = b;
    };
    if (await fs.namespace.lookup(dir, name)) throw new Error(`${name} exists already`);
    lap('lookup');
    // As the FUSE create of a file it opens: answered before its commit, which the close makes.
    const ino = await fs.namespace.create(dir, name, S_IFREG | 0o644, who, { opened: true });
    lap('create');
    const fh = await fs.files.open(ino, 1);
    lap('open');
    if (size > 0) await fs.files.write(fh, 0, data);
    lap('write');
    await fs.files.flush(fh);
    lap('flush');
    await fs.files.release(fh);
    lap('release');
  }
  emit('create_write_close', files / ((performance.now() - started) / 1000), 'files/s');
  for (const [step, ms] of Object.entries(steps)) emit(`step_${step}`, ms / files, 'ms/file', 3);

  const statPass = async (metric: string) => {
    started = performance.now();
    for (const name of names) await fs.attributes.stat(await fs.resolve(`/bench-metadata/${name}`));
    emit(metric, files / ((performance.now() - started) / 1000), 'stats/s');
  };
  await statPass('stat');
  // A fresh volume object: no record or name cached, every lookup and stat reads the store.
  await fs.close();
  fs = await openFs(store);
  await statPass('stat_reopened');

  started = performance.now();
  for (const name of names) await fs.namespace.unlink(dir, name);
  emit('unlink', files / ((performance.now() - started) / 1000), 'files/s');
  await fs.close();
} finally {
  await store.close();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
}
