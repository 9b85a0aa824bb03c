/**
 * Names that are also the names of JavaScript object properties. A directory leaf keeps its
 * names as the keys of a MessagePack map, whose decoder renames `__proto__`; and an entry set on
 * a plain object under `__proto__` replaces its prototype instead of adding a name.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { fsckVolume } from '../../../src/fsck/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { ROOT_INO, S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const AWKWARD = ['__proto__', '__proto_', '__proto___', '__proto____', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '0', 'length'];

const open = async (store: MemoryStore) => new FileSystem(await Volume.open({ store, log, prefix: 'a:' }));
const names = async (fs: FileSystem, dir: number) => (await fs.readdir(dir)).map(([name]) => name).sort();

describe('names that are object properties in JavaScript', () => {
  it('are created, listed, found, renamed and removed like any other, across a remount', async () => {
    const store = new MemoryStore();
    const fs = await open(store);
    const made = new Map<string, number>();
    for (const name of AWKWARD) made.set(name, await fs.namespace.create(ROOT_INO, name, S_IFREG | 0o644, root));
    expect(await names(fs, ROOT_INO)).toEqual([...AWKWARD].sort());
    await fs.close();

    const again = await open(store);
    expect(await names(again, ROOT_INO)).toEqual([...AWKWARD].sort());
    for (const [name, ino] of made) expect(await again.namespace.lookup(ROOT_INO, name, true), name).toEqual([ino, S_IFREG]);
    expect(await again.namespace.lookup(ROOT_INO, '__proto______')).toBeUndefined();
    const paged = (await again.listPage(ROOT_INO, 0, 1)).entries.map((e) => e.name);
    expect(paged.sort()).toEqual([...AWKWARD].sort());

    await again.namespace.rename(ROOT_INO, '__proto__', ROOT_INO, 'plain');
    await again.namespace.rename(ROOT_INO, 'constructor', ROOT_INO, '__proto__');
    await again.namespace.unlink(ROOT_INO, '__proto___');
    const expected = [...AWKWARD.filter((n) => n !== 'constructor' && n !== '__proto___'), 'plain'].sort();
    expect(await names(again, ROOT_INO)).toEqual(expected);
    expect(await again.namespace.lookup(ROOT_INO, '__proto__')).toEqual([made.get('constructor'), S_IFREG]);
    await again.close();

    const report = await fsckVolume({ store, prefix: 'a:', log }, {});
    expect(report.problems).toEqual([]);
  });

  it('survive the split of a leaf into its children', async () => {
    const store = new MemoryStore();
    const fs = await open(store);
    const dir = await fs.mkdir('/d', 0o755, root);
    for (const name of AWKWARD) await fs.namespace.create(dir, name, S_IFREG | 0o644, root);
    const filler = Array.from({ length: 600 }, (_, i) => `filler-${i}`);
    for (const name of filler) await fs.namespace.create(dir, name, S_IFREG | 0o644, root);
    expect(await names(fs, dir)).toEqual([...AWKWARD, ...filler].sort());
    for (const name of AWKWARD) expect(await fs.namespace.lookup(dir, name), name).toBeDefined();
    await fs.close();
  });
});
