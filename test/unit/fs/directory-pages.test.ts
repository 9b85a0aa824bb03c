import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { DirectoryPages } from '../../../src/fs/directory-pages.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const root = { uid: 0, gid: 0 };
const direntSize = (name: string) => (24 + Buffer.byteLength(name) + 7) & ~7;

async function directoryOf(count: number) {
  const fs = new FileSystem(await Volume.open({ store: new MemoryStore(), log: pino({ level: 'silent' }), prefix: 'p:' }));
  const dir = await fs.mkdir('/d', 0o755, root);
  const names = Array.from({ length: count }, (_, i) => `name-${i}`);
  for (const name of names) await fs.namespace.create(dir, name, S_IFREG | 0o644, root);
  return { fs, dir, names };
}

/** Reads a whole listing as the kernel does: each page from the offset of the last entry given. */
async function readAll(pages: DirectoryPages, fh: number, dir: number, size: number, offset = 0) {
  const names: string[] = [];
  for (;;) {
    const slice = await pages.slice(fh, dir, offset, size, direntSize);
    if (slice.length === 0) return names;
    names.push(...slice.map((e) => e.name));
    offset = slice[slice.length - 1].off;
  }
}

describe('directory pages', () => {
  it('gives ".", ".." and every name once, from any offset it handed out', async () => {
    const { fs, dir, names } = await directoryOf(1000);
    const pages = new DirectoryPages(fs);
    const fh = pages.openHandle();
    const all = await readAll(pages, fh, dir, 1024);
    expect(all.slice(0, 2)).toEqual(['.', '..']);
    expect(all.slice(2).sort()).toEqual([...names].sort());
    // telldir/seekdir: resuming at an offset given earlier, on a new handle, goes on from there.
    const slices = await pages.slice(fh, dir, 0, 4096, direntSize);
    const middle = slices[40];
    const other = pages.openHandle();
    const rest = await readAll(pages, other, dir, 512, middle.off);
    expect(rest).toEqual(all.slice(41));
    pages.release(fh);
    await expect(pages.slice(fh, dir, 0, 4096, direntSize)).rejects.toSatisfy((e: unknown) => e instanceof FsError && e.code === 'EBADF');
    await fs.close();
  });

  it('lists right on hundreds of handles at once, when the names read ahead are dropped', async () => {
    const { fs, dir, names } = await directoryOf(1000);
    const pages = new DirectoryPages(fs);
    // 400 handles, each one page in: more names read ahead than the shared cache keeps.
    const handles = Array.from({ length: 400 }, () => pages.openHandle());
    const firsts = await Promise.all(handles.map((fh) => pages.slice(fh, dir, 0, 256, direntSize)));
    for (const [i, fh] of handles.entries()) {
      const first = firsts[i];
      const rest = await readAll(pages, fh, dir, 2048, first[first.length - 1].off);
      expect([...first.map((e) => e.name), ...rest].slice(2).sort()).toEqual([...names].sort());
      pages.release(fh);
    }
    await fs.close();
  });
});
