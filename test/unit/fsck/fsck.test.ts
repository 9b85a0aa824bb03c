import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { encodeRecord } from '../../../src/chunk/record-codec.js';
import { fsckVolume, type FsckProgress } from '../../../src/fsck/index.js';
import { ROOT_INO, S_IFDIR, S_IFREG, type DirNode } from '../../../src/inode/records.js';
import { patternBytes } from '../../helpers/pattern.js';
import { VolumeFixture, kindsOf } from './fsck-fixture.js';

/** Small items, so directories split and files span several chunks quickly. */
const MAX_VALUE = 16 * 1024;

interface Tree {
  readonly files: number;
  readonly bytes: number;
}

/** 260 files, 6 directories, a hard link and a symlink; /docs splits over several nodes. */
async function buildTree(fx: VolumeFixture): Promise<Tree> {
  let files = 0;
  let bytes = 0;
  const add = async (path: string, length: number) => {
    await fx.writeFile(path, patternBytes(length, files + 1));
    files++;
    bytes += length;
  };
  await fx.mkdir('/docs');
  await fx.mkdir('/docs/sub');
  await fx.mkdir('/a');
  await fx.mkdir('/a/b');
  await fx.mkdir('/empty');
  for (let i = 0; i < 200; i++) await add(`/docs/document-number-${String(i).padStart(6, '0')}.txt`, (i * 37) % 3000);
  for (let i = 0; i < 58; i++) await add(`/docs/sub/f${i}`, 100 + i);
  await add('/a/b/big', 3 * fx.chunkSize + 123);
  await add('/a/small', 10);
  await fx.link('/a/small', '/docs/sub/hard');
  await fx.symlink('/s', 'docs/sub');
  return { files, bytes };
}

describe('fsck on the memory store', () => {
  let store: MemoryStore;
  let fx: VolumeFixture;

  beforeEach(async () => {
    store = new MemoryStore({ maxValueBytes: MAX_VALUE });
    fx = await VolumeFixture.create({ store });
  });
  afterEach(async () => {
    await fx.close();
  });

  it('reports a healthy volume of a few hundred files clean, with its figures', async () => {
    const tree = await buildTree(fx);
    await fx.close();
    const nodes = await fx.keysUnder(`d:${await fx.fs.resolve('/docs')}:`);
    expect(nodes.length).toBeGreaterThan(1); // the directory did split
    const phases = new Set<string>();
    const report = await fx.fsck({ onProgress: (p: FsckProgress) => phases.add(p.phase) });
    expect(report.problems).toEqual([]);
    expect(report.exitCode).toBe(0);
    expect(report.summary).toMatchObject({ directories: 6, files: tree.files, symlinks: 1, bytes: tree.bytes, listed: true });
    // Only /a/b/big's three whole chunks are blocks: every smaller chunk lives in its map.
    expect(report.summary.blocksChecked).toBe(3);
    // One empty file has no chunk; /a/b/big has four.
    expect(report.summary.chunkMaps).toBe(tree.files - 1 + 3);
    expect([...phases]).toEqual(['intents', 'scan', 'walk', 'leftovers', 'done']);
    const offline = await fx.fsck({ repair: true, offline: true });
    expect(offline.problems).toEqual([]);
  });

  it('finds a dangling entry, removes it online, and collects the dead inode\'s chunk maps', async () => {
    await buildTree(fx);
    const ino = await fx.fs.resolve('/docs/sub/f3');
    await fx.close();
    const maps = await fx.keysUnder(`c:${ino}:`, store);
    expect(maps.length).toBe(1);
    await store.delete(fx.keys.inode(ino));

    const check = await fx.fsck();
    expect(kindsOf(check)).toEqual(['dangling-entry', 'orphan-chunk-maps']);
    const dangling = check.problems.find((p) => p.kind === 'dangling-entry');
    expect(dangling).toMatchObject({ path: '/docs/sub/f3', ino, severity: 'damage', action: 'left' });
    expect(check.exitCode).toBe(1);

    const repair = await fx.fsck({ repair: true });
    expect(repair.problems.map((p) => [p.kind, p.action])).toEqual([
      ['dangling-entry', 'repaired'],
      ['orphan-chunk-maps', 'repaired'],
    ]);
    expect(repair.exitCode).toBe(0);
    expect(await fx.keysUnder(`c:${ino}:`, store)).toEqual([]);
    expect(await fx.fsck()).toMatchObject({ problems: [], exitCode: 0 });
  });

  it('reports a deleted block as data lost in a byte range, not repairable, exit 1', async () => {
    await buildTree(fx);
    const ino = await fx.fs.resolve('/a/b/big');
    await fx.close();
    const block = await fx.chunkBlock(ino, 2);
    expect(await store.delete(fx.keys.blockPrefix() + block.id)).toBe(true);

    for (const options of [{}, { repair: true }, { repair: true, offline: true }]) {
      const report = await fx.fsck(options);
      expect(kindsOf(report)).toEqual(['block-lost']);
      const from = 2 * fx.chunkSize;
      expect(report.problems[0]).toMatchObject({ path: '/a/b/big', ino, action: 'not-repairable' });
      expect(report.problems[0].what).toContain(`bytes ${from} to ${from + fx.chunkSize - 1} lost`);
      expect(report.exitCode).toBe(1);
    }
  });

  it('fixes a wrong file link count only offline', async () => {
    await buildTree(fx);
    const ino = await fx.fs.resolve('/a/small');
    await fx.close();
    await fx.putInode(ino, { ...(await fx.inode(ino)), nlink: 5 });

    const online = await fx.fsck({ repair: true });
    expect(online.problems).toMatchObject([{ kind: 'nlink', ino, action: 'needs-offline' }]);
    expect(online.problems[0].what).toBe('nlink is 5, but 2 entries name it');
    expect(online.exitCode).toBe(1);
    expect((await fx.inode(ino)).nlink).toBe(5);

    const offline = await fx.fsck({ repair: true, offline: true });
    expect(offline.problems).toMatchObject([{ kind: 'nlink', action: 'repaired', done: 'nlink 5 -> 2' }]);
    expect(offline.exitCode).toBe(0);
    expect((await fx.inode(ino)).nlink).toBe(2);
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('deletes chunk maps past the end, and their blocks, offline', async () => {
    await buildTree(fx);
    const ino = await fx.fs.resolve('/docs/sub/f1');
    await fx.close();
    // A crash after storing chunk 4 but before the size that covers it.
    const stray = await fx.fs.volume.blocks.put('strayblock0000000000', Buffer.alloc(500, 1), { volumeId: fx.fs.volume.superblock.volumeId, ino, chunkIndex: 4 });
    await store.put(fx.keys.chunkMap(ino, 4), encodeRecord({ block: stray }));

    const check = await fx.fsck({ repair: true });
    expect(check.problems).toMatchObject([{ kind: 'chunk-map-past-eof', path: '/docs/sub/f1', severity: 'leftover', action: 'needs-offline' }]);
    expect(check.exitCode).toBe(0);

    const offline = await fx.fsck({ repair: true, offline: true });
    expect(offline.problems).toMatchObject([{ kind: 'chunk-map-past-eof', action: 'repaired' }]);
    expect(await store.get(fx.keys.chunkMap(ino, 4))).toBeUndefined();
    expect(await store.get(fx.keys.blockPrefix() + stray.id)).toBeUndefined();
    expect(await store.get(fx.keys.chunkMap(ino, 0))).toBeDefined();
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('collects an orphan inode with its data offline, and moves a lagging allocator on', async () => {
    await buildTree(fx);
    const donor = await fx.fs.resolve('/docs/sub/f2');
    await fx.close();
    // A crash between creating an inode and naming it, past the allocator's record.
    const orphan = 50_000;
    await fx.putInode(orphan, { ...(await fx.inode(donor)), nlink: 1 });
    const block = await fx.fs.volume.blocks.put('orphanblock000000000', Buffer.alloc(102, 2), { volumeId: fx.fs.volume.superblock.volumeId, ino: orphan, chunkIndex: 0 });
    await store.put(fx.keys.chunkMap(orphan, 0), encodeRecord({ block }));

    const online = await fx.fsck({ repair: true });
    expect(online.problems.map((p) => [p.kind, p.action])).toEqual([
      ['orphan-inode', 'needs-offline'],
      ['allocator-behind', 'repaired'],
    ]);
    expect(online.exitCode).toBe(0);

    const offline = await fx.fsck({ repair: true, offline: true });
    expect(offline.problems).toMatchObject([{ kind: 'orphan-inode', ino: orphan, action: 'repaired', done: 'inode deleted, 1 chunk maps and their blocks deleted' }]);
    expect(await store.get(fx.keys.inode(orphan))).toBeUndefined();
    expect(await store.get(fx.keys.blockPrefix() + block.id)).toBeUndefined();
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('deletes a directory node left outside its tree by a lost split', async () => {
    await buildTree(fx);
    const docs = await fx.fs.resolve('/docs');
    await fx.close();
    const stray = fx.keys.dirNode(docs, 'lostsplit.7');
    await store.put(stray, encodeRecord({ kind: 'leaf', entries: { ghost: [docs, S_IFREG] } } satisfies DirNode));
    const gone = fx.keys.dirNode(123_456, 'r');
    await store.put(gone, encodeRecord({ kind: 'leaf', entries: {} } satisfies DirNode));

    const check = await fx.fsck();
    expect(check.problems.map((p) => [p.kind, p.key ?? p.ino]).sort()).toEqual([
      ['allocator-behind', fx.keys.inodeAllocator()],
      ['orphan-dir-nodes', 123_456],
      ['unreachable-dir-node', stray],
    ]);
    const repair = await fx.fsck({ repair: true });
    expect(repair.problems.every((p) => p.action === 'repaired')).toBe(true);
    expect(await store.get(stray)).toBeUndefined();
    expect(await store.get(gone)).toBeUndefined();
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('repairs a directory\'s link count, parent and entry type online', async () => {
    await buildTree(fx);
    const a = await fx.fs.resolve('/a');
    const b = await fx.fs.resolve('/a/b');
    const small = await fx.fs.resolve('/a/small');
    await fx.close();
    await fx.putInode(a, { ...(await fx.inode(a)), nlink: 7 });
    await fx.putInode(b, { ...(await fx.inode(b)), parent: ROOT_INO });
    // The entry of a file typed as a directory.
    const leafKey = fx.keys.dirNode(a, 'r');
    await store.put(leafKey, encodeRecord({ kind: 'leaf', entries: { b: [b, S_IFDIR], small: [small, S_IFDIR] } } satisfies DirNode));

    const check = await fx.fsck();
    expect(kindsOf(check)).toEqual(['dir-nlink', 'dir-parent', 'type-mismatch']);
    expect(check.problems.find((p) => p.kind === 'dir-parent')).toMatchObject({ path: '/a/b', what: 'parent is 1, but the directory is named in directory ' + a });
    const repair = await fx.fsck({ repair: true });
    expect(repair.problems.map((p) => p.action)).toEqual(['repaired', 'repaired', 'repaired']);
    expect((await fx.inode(a)).nlink).toBe(3);
    expect((await fx.inode(b)).parent).toBe(a);
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('rebuilds a lost directory node; the names it held become orphans collected offline', async () => {
    await buildTree(fx);
    const sub = await fx.fs.resolve('/docs/sub');
    await fx.close();
    await store.delete(fx.keys.dirNode(sub, 'r'));

    const online = await fx.fsck({ repair: true });
    const kinds = kindsOf(online);
    expect(kinds.filter((k) => k === 'dir-node-missing')).toHaveLength(1);
    expect(online.problems.find((p) => p.kind === 'dir-node-missing')).toMatchObject({ path: '/docs/sub', action: 'repaired' });
    // The hard link /docs/sub/hard went with the node: /a/small's count is now one too many.
    expect(online.problems.find((p) => p.kind === 'nlink')).toMatchObject({ path: '/a/small', action: 'needs-offline' });
    expect(kinds.filter((k) => k === 'orphan-inode')).toHaveLength(58);

    const offline = await fx.fsck({ repair: true, offline: true });
    expect(offline.problems.every((p) => p.action === 'repaired')).toBe(true);
    expect(await fx.fsck()).toMatchObject({ problems: [], exitCode: 0 });
    expect(await fx.keysUnder(`d:${sub}:`, store)).toEqual([fx.keys.dirNode(sub, 'r')]);
  });

  it('collects garbage records past their due date, and the rest only offline', async () => {
    await buildTree(fx);
    const big = await fx.fs.resolve('/a/b/big');
    await fx.fs.namespace.unlink(await fx.fs.resolve('/a/b'), 'big');
    await fx.close();
    expect(await fx.keysUnder('g:', store)).toHaveLength(1);
    const blocksBefore = (await fx.keysUnder('b:', store)).length;

    const notDue = await fx.fsck({ repair: true });
    expect(notDue.problems).toEqual([]);
    expect(notDue.summary.garbagePending).toBe(1);

    const later = () => Date.now() + 2 * 3_600_000;
    const due = await fx.fsck({ now: later });
    expect(due.problems).toMatchObject([{ kind: 'expired-garbage', action: 'left' }]);
    const collected = await fx.fsck({ now: later, repair: true });
    expect(collected.problems).toMatchObject([{ kind: 'expired-garbage', action: 'repaired' }]);
    expect(await fx.keysUnder('g:', store)).toEqual([]);
    expect(await fx.keysUnder(`c:${big}:`, store)).toEqual([]);
    // Its fourth chunk (123 bytes) was inline: three blocks went.
    expect((await fx.keysUnder('b:', store)).length).toBe(blocksBefore - 3);
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('collects garbage not yet due when run offline', async () => {
    await buildTree(fx);
    await fx.fs.namespace.unlink(await fx.fs.resolve('/docs/sub'), 'f9');
    await fx.close();
    const report = await fx.fsck({ repair: true, offline: true });
    expect(report.problems).toEqual([]);
    expect(report.summary).toMatchObject({ garbagePending: 1, garbageCollected: 1 });
    expect(await fx.keysUnder('g:', store)).toEqual([]);
  });

  it('deletes blocks nothing refers to only offline', async () => {
    await buildTree(fx);
    await fx.close();
    const stray = `${fx.keys.blockPrefix()}unreferenced00000000`;
    await store.put(stray, Buffer.alloc(10));

    const online = await fx.fsck({ repair: true });
    expect(online.problems).toMatchObject([{ kind: 'unreferenced-block', key: stray, action: 'needs-offline' }]);
    expect(await store.get(stray)).toBeDefined();
    const offline = await fx.fsck({ repair: true, offline: true });
    expect(offline.problems).toMatchObject([{ kind: 'unreferenced-block', action: 'repaired' }]);
    expect(await store.get(stray)).toBeUndefined();
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('drops the .fuse_hidden name of a file a crashed mount held open, offline, with its data', async () => {
    await buildTree(fx);
    const sub = await fx.fs.resolve('/docs/sub');
    const ino = await fx.fs.resolve('/docs/sub/f4');
    const linked = await fx.fs.resolve('/a/small');
    // What libfuse does on unlink of an open file; the mount then died before the last close.
    await fx.fs.namespace.rename(sub, 'f4', sub, '.fuse_hidden0000000400000001');
    await fx.fs.namespace.rename(await fx.fs.resolve('/a'), 'small', sub, '.fuse_hidden0000000500000002');
    await fx.close();

    const online = await fx.fsck({ repair: true });
    expect(online.problems.map((p) => [p.kind, p.path, p.action])).toEqual([
      ['hidden-entry', '/docs/sub/.fuse_hidden0000000400000001', 'needs-offline'],
      ['hidden-entry', '/docs/sub/.fuse_hidden0000000500000002', 'needs-offline'],
    ]);
    expect(online.exitCode).toBe(0);

    const offline = await fx.fsck({ repair: true, offline: true });
    expect(offline.problems.map((p) => p.done)).toEqual([
      'name removed; the file had no other name: inode and 1 chunk maps with their blocks deleted',
      'name removed, 1 links left',
    ]);
    expect(await store.get(fx.keys.inode(ino))).toBeUndefined();
    expect(await fx.keysUnder(`c:${ino}:`, store)).toEqual([]);
    expect((await fx.inode(linked)).nlink).toBe(1);
    expect((await fx.fsck()).problems).toEqual([]);
  });

  it('checks the names of a volume whose superblock is lost, and repairs nothing', async () => {
    await buildTree(fx);
    const ino = await fx.fs.resolve('/docs/sub/f5');
    await fx.close();
    await store.delete(fx.keys.superblock());
    await store.delete(fx.keys.inode(ino));

    const report = await fx.fsck({ repair: true, offline: true });
    expect(kindsOf(report)).toEqual(['dangling-entry', 'superblock-missing']);
    expect(report.problems.find((p) => p.kind === 'superblock-missing')?.action).toBe('not-repairable');
    expect(report.problems.find((p) => p.kind === 'dangling-entry')?.action).toBe('left');
    expect(report.notes.join('\n')).toMatch(/nothing was repaired: the superblock is missing/);
    expect(report.exitCode).toBe(1);
    expect(report.summary.blocksChecked).toBe(0);
  });

  it('refuses a store that holds no volume', async () => {
    const empty = new MemoryStore();
    await expect(fsckVolume({ store: empty, prefix: 'none:' })).rejects.toThrow('no volume under "none:": nothing to check');
  });
});
