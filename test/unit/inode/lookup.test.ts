/**
 * Lookups: a name missing from a directory record this mount has cached is looked for again in
 * the store (another mount may have just created it), at the cost of that one record.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryData, MemoryStore } from '../../../src/backends/memory/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { ROOT_INO, S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };

/** A mount of the shared records, with its own record cache (a minute long) and a count of gets. */
async function mountOn(data: MemoryData): Promise<{ fs: FileSystem; gets: string[] }> {
  const store = new MemoryStore({ data });
  const gets: string[] = [];
  const get = store.get.bind(store);
  store.get = (key) => {
    gets.push(key);
    return get(key);
  };
  const fs = new FileSystem(await Volume.open({ store, log, prefix: 'l:', cacheTtlMs: 60_000 }));
  return { fs, gets };
}

describe('lookup', () => {
  it('finds a name another mount created since this one cached the directory, reading only its leaf again', async () => {
    const data = new MemoryData();
    const here = await mountOn(data);
    const there = await mountOn(data);
    expect(await here.fs.namespace.lookup(ROOT_INO, 'new')).toBeUndefined();
    const ino = await there.fs.namespace.create(ROOT_INO, 'new', S_IFREG | 0o644, root);
    here.gets.length = 0;
    expect(await here.fs.namespace.lookup(ROOT_INO, 'new')).toEqual([ino, S_IFREG]);
    // The parent's inode came from the cache; its leaf was asked of the store once.
    expect(here.gets).toEqual([here.fs.volume.keys.dirNode(ROOT_INO, 'r')]);
    await here.fs.close();
    await there.fs.close();
  });

  it('answers a miss with one read of the leaf when the leaf was cached', async () => {
    const data = new MemoryData();
    const here = await mountOn(data);
    await here.fs.namespace.create(ROOT_INO, 'present', S_IFREG | 0o644, root);
    expect(await here.fs.namespace.lookup(ROOT_INO, 'present')).toBeDefined();
    here.gets.length = 0;
    expect(await here.fs.namespace.lookup(ROOT_INO, 'absent')).toBeUndefined();
    expect(here.gets).toEqual([here.fs.volume.keys.dirNode(ROOT_INO, 'r')]);
    await here.fs.close();
  });
});

describe('decoded directory leaves', () => {
  it('are shared between lookups but never changed by an insert whose transaction is abandoned', async () => {
    const store = new MemoryStore();
    // The create stays queued (a minute's commit delay): later reads get its leaf from the queue.
    const fs = new FileSystem(await Volume.open({ store, log, prefix: 'd:', cacheTtlMs: 60_000, commitDelayMs: 60_000 }));
    await fs.namespace.create(ROOT_INO, 'kept', S_IFREG | 0o644, root, { opened: true });
    const tree = fs.volume.dirs;
    // An insert staged in a transaction that then fails: the leaf it read must stay as it was.
    await expect(
      fs.volume.transact(async (tx) => {
        await tree.insert(tx, ROOT_INO, 'abandoned', [999, S_IFREG]);
        throw new Error('abandon');
      }),
    ).rejects.toThrow('abandon');
    expect(await fs.namespace.lookup(ROOT_INO, 'abandoned')).toBeUndefined();
    expect(await fs.namespace.lookup(ROOT_INO, 'kept')).toBeDefined();
    // A remove that is abandoned leaves the name in place.
    await expect(
      fs.volume.transact(async (tx) => {
        await tree.remove(tx, ROOT_INO, 'kept');
        throw new Error('abandon');
      }),
    ).rejects.toThrow('abandon');
    expect(await fs.namespace.lookup(ROOT_INO, 'kept')).toBeDefined();
    expect((await fs.readdir(ROOT_INO)).map(([name]) => name)).toEqual(['kept']);
    await fs.close();
  });
});
