// Regression: a mount killed at the first inode update of a write that grows a file
// (VOLDFS_CRASH_AT=inode.put#1) once left the written bytes in chunks past the file's end,
// hidden by the old size, and growing the file afterwards (truncate up, a write past the end)
// showed them. Now a file's last chunk is stored in one commit with its size (and other chunks
// after the size has grown): a mount killed at that commit (store.commit#1) leaves the old
// bytes and size, and growing the file afterwards adds zeros only.
// Store: LMDB in a temp dir (`npm run build` first).
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { runToCrash } from './crash/harness.js';

const OLD_BYTES = 100_000;
const WRITTEN_BYTES = 600_000;

/** Bytes at or past `from` that are not zero. */
function nonZeroFrom(data: Buffer, from: number): number {
  let n = 0;
  for (let i = from; i < data.length; i++) if (data[i] !== 0) n++;
  return n;
}

describe('a write whose size update a crash lost', () => {
  let env: Record<string, string> = {};
  let mount: VoldfsMount | undefined;

  beforeAll(async () => {
    const work = await makeTempDir('eof-leftover');
    env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'store.lmdb'), VOLDFS_STATE_DIR: join(work, 'state') };
    const setup = await mountVoldfs({ env });
    try {
      await writeFile(join(setup.dir, 'by-truncate'), Buffer.alloc(OLD_BYTES, 0x61));
      await writeFile(join(setup.dir, 'by-write'), Buffer.alloc(OLD_BYTES, 0x61));
    } finally {
      await setup.unmount();
    }
    for (const name of ['by-truncate', 'by-write']) {
      const crash = await runToCrash(env, 'store.commit#1', async (root) => {
        const fh = await open(join(root, name), 'r+');
        try {
          await fh.write(Buffer.alloc(WRITTEN_BYTES, 0x42), 0, WRITTEN_BYTES, 0);
        } finally {
          await fh.close();
        }
      });
      expect(crash.crashed?.point).toMatch(/^store\.commit#1 /);
    }
    mount = await mountVoldfs({ env, mkfs: false });
  });
  afterAll(async () => {
    await mount?.unmount();
  });

  it('keeps the old size or has the new one, with nothing but zeros past the old bytes', async () => {
    const dir = mount?.dir ?? '';
    const data = await readFile(join(dir, 'by-truncate'));
    expect([OLD_BYTES, WRITTEN_BYTES]).toContain(data.length);
    // The crash came before the data was stored: the old bytes, then zeros up to the new size.
    expect(data.subarray(0, OLD_BYTES).every((b) => b === 0x61)).toBe(true);
    expect(nonZeroFrom(data, OLD_BYTES)).toBe(0);
  });

  it('reads zeros past the old end after truncate grows the file', async () => {
    const dir = mount?.dir ?? '';
    await truncate(join(dir, 'by-truncate'), WRITTEN_BYTES + 4096);
    const data = await readFile(join(dir, 'by-truncate'));
    expect(data.length).toBe(WRITTEN_BYTES + 4096);
    expect(nonZeroFrom(data, OLD_BYTES)).toBe(0);
  });

  it('reads zeros in the hole a write past the end leaves', async () => {
    const dir = mount?.dir ?? '';
    const fh = await open(join(dir, 'by-write'), 'r+');
    try {
      await fh.write(Buffer.from('z'), 0, 1, WRITTEN_BYTES);
    } finally {
      await fh.close();
    }
    const data = await readFile(join(dir, 'by-write'));
    expect(data.length).toBe(WRITTEN_BYTES + 1);
    expect(nonZeroFrom(data.subarray(0, WRITTEN_BYTES), OLD_BYTES)).toBe(0);
  });
});
