/**
 * fsck and the chunk index: chunk maps their file's index does not name are damage (truncate and
 * delete would leave them) and repaired by naming them; index records of gone inodes are
 * leftovers; on a store without scan, file data is found through the index.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { withAtomicCommit } from '../../../src/cas/intent-store.js';
import { indexRecord } from '../../../src/chunk/chunk-index.js';
import { caller, VolumeFixture } from './fsck-fixture.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';
import { ROOT_INO, S_IFREG } from '../../../src/inode/records.js';
import type { FsckReport } from '../../../src/fsck/index.js';

const O_RDWR = 2;
const kindsOf = (r: FsckReport) => r.problems.map((p) => p.kind).sort();

describe('fsck: chunk index', () => {
  let fx: VolumeFixture | undefined;
  afterEach(async () => {
    await fx?.close();
  });

  /** A file with data in chunk 0 and in chunk 1000 (a group the index names). */
  async function farFile(f: VolumeFixture): Promise<number> {
    const ino = await f.fs.namespace.create(ROOT_INO, 'far', S_IFREG | 0o644, caller);
    const fh = await f.fs.files.open(ino, O_RDWR);
    await f.fs.files.write(fh, 0, Buffer.from('head'));
    await f.fs.files.write(fh, 1000 * f.chunkSize + 1, Buffer.from('far'));
    await f.fs.files.release(fh);
    return ino;
  }

  it('finds chunk maps missing from the index and names them again; a later truncate then drops them', async () => {
    const store = new MemoryStore();
    fx = await VolumeFixture.create({ store });
    const ino = await farFile(fx);
    const indexKeys = await fx.keysUnder(`x:${ino}:`, store);
    expect(indexKeys.length).toBe(3);
    for (const key of indexKeys) await store.delete(key);

    const check = await fx.fsck();
    expect(kindsOf(check)).toEqual(['chunk-index-missing']);
    expect(check.exitCode).toBe(1);
    const repaired = await fx.fsck({ repair: true });
    expect(repaired.problems.map((p) => [p.kind, p.action])).toEqual([['chunk-index-missing', 'repaired']]);
    expect((await fx.fsck()).problems).toEqual([]);

    await fx.fs.attributes.truncate(ino, 4);
    expect(await fx.keysUnder(`c:${ino}:`, store)).toEqual([fx.keys.chunkMap(ino, 0)]);
    expect(await fx.keysUnder(`x:${ino}:`, store)).toEqual([]);
  });

  it('rewrites an undecodable index record from the chunk maps the scan lists', async () => {
    const store = new MemoryStore();
    fx = await VolumeFixture.create({ store });
    const ino = await farFile(fx);
    await store.put(fx.keys.chunkIndex(ino, 2, 0), Buffer.from('not a record'));
    const repaired = await fx.fsck({ repair: true });
    expect(repaired.problems.map((p) => [p.kind, p.action])).toEqual([['chunk-index-missing', 'repaired']]);
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('deletes index records of an inode that is gone', async () => {
    const store = new MemoryStore();
    fx = await VolumeFixture.create({ store });
    await store.put(fx.keys.chunkIndex(999, 2, 0), indexRecord([0]));
    await store.put(fx.keys.chunkIndex(999, 0, 0), indexRecord([5]));
    const check = await fx.fsck();
    expect(kindsOf(check)).toEqual(['orphan-chunk-index']);
    expect(check.exitCode).toBe(0);
    const repaired = await fx.fsck({ repair: true });
    expect(repaired.problems.map((p) => p.action)).toEqual(['repaired']);
    expect(await fx.keysUnder('x:999:', store)).toEqual([]);
  });

  it('without a scan, checks the blocks of far chunks the index names, and reports an unreadable index', async () => {
    const inner = new NoCommitStore({ noScan: true });
    fx = await VolumeFixture.create({ store: withAtomicCommit(inner), graceMs: 0 });
    const ino = await farFile(fx);
    const clean = await fx.fsck();
    expect(clean.problems).toEqual([]);
    expect(clean.summary.chunkMaps).toBe(2);
    await inner.put(fx.keys.chunkIndex(ino, 2, 0), Buffer.from('not a record'));
    const damaged = await fx.fsck();
    expect(kindsOf(damaged)).toEqual(['chunk-index-bad']);
    expect(damaged.exitCode).toBe(1);
  });
});
