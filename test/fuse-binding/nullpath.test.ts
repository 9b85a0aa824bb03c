// hard_remove + flag_nullpath_ok: an open file whose name is gone keeps working through its fd;
// the filesystem gets a null path (not a crash, not EIO), and fgetattr reaches ops.fgetattr.
// libfuse 2 cannot serve fstat/fchmod/futimens on such a file (they carry no handle): see
// PATCHES.md. Without hardRemove libfuse renames the file to .fuse_hidden* instead.
import { open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryFs } from './memory-fs.js';
import { type Mounted, mountMemoryFs, waitFor } from './mounted.js';

describe('open, unlink, write, read, close (hardRemove)', () => {
  let m: Mounted<MemoryFs>;
  beforeAll(async () => {
    m = await mountMemoryFs({ hardRemove: true, attrTimeout: 0, entryTimeout: 0 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('keeps the unlinked file usable through its descriptor', async () => {
    const f = join(m.dir, 'doomed');
    const fh = await open(f, 'w+');
    try {
      await fh.write('before unlink\n');
      await unlink(f);
      await expect(stat(f)).rejects.toMatchObject({ code: 'ENOENT' });

      await fh.write('after unlink\n');
      const buf = Buffer.alloc(100);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      expect(buf.subarray(0, bytesRead).toString()).toBe('before unlink\nafter unlink\n');
      await fh.truncate(6);
      const again = await fh.read(Buffer.alloc(100), 0, 100, 0);
      expect(again.bytesRead).toBe(6);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await waitFor('release of the unlinked file', () => m.fs.nullPathOps.includes('release'));
    expect(m.fs.nullPathOps).toEqual(expect.arrayContaining(['write', 'read', 'ftruncate', 'fsync', 'flush', 'release']));
    // A read reaching past the (uncached) size revalidates it with a GETATTR on the handle.
    expect(m.fs.nullPathOps).toContain('fgetattr');
  });

  it('hands fgetattr the handle of the open file', async () => {
    const f = join(m.dir, 'kept');
    const fh = await open(f, 'w+');
    try {
      await fh.write('12345');
      const calls = m.fs.count('fgetattr');
      await fh.read(Buffer.alloc(100), 0, 100, 0);
      expect(m.fs.count('fgetattr')).toBeGreaterThan(calls);
    } finally {
      await fh.close();
    }
  });
});

describe('open, unlink, write, read, fstat, close (default: libfuse hides the file)', () => {
  let m: Mounted<MemoryFs>;
  beforeAll(async () => {
    m = await mountMemoryFs({ attrTimeout: 0, entryTimeout: 0 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('serves fstat too, and removes the hidden name on close', async () => {
    const f = join(m.dir, 'hidden');
    const fh = await open(f, 'w+');
    try {
      await fh.write('abc');
      await unlink(f);
      expect((await fh.stat()).size).toBe(3);
      const buf = Buffer.alloc(10);
      const { bytesRead } = await fh.read(buf, 0, 10, 0);
      expect(buf.subarray(0, bytesRead).toString()).toBe('abc');
    } finally {
      await fh.close();
    }
    await waitFor('release of the hidden file', () => m.fs.count('release') > 0);
    await waitFor('removal of the hidden name', () => m.fs.root.children?.size === 0);
    expect(m.fs.nullPathOps).toEqual([]);
  });
});
