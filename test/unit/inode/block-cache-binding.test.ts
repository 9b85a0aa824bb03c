// Regression: the mount's block cache was keyed by block id alone, so once file A's block was
// cached, a chunk map of B pointing at A's block (a tampered store) read A's plaintext through
// the cache, getting around crypt's binding of a block to its file. It must read as an error.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../src/backends/errors.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';
import { CHEAP_KDF, PASSPHRASE } from '../translators/fixtures.js';

describe('a chunk map pointing at another file\'s block, on an encrypted volume', () => {
  it('fails authentication even when that block is in the cache', async () => {
    const store = new MemoryStore();
    const fs = new FileSystem(
      await Volume.open({
        store,
        log: pino({ level: 'silent' }),
        prefix: 'c:',
        translators: { crypt: true },
        passphrase: async () => PASSPHRASE,
        kdf: { kdf: CHEAP_KDF },
      }),
    );
    const root = { uid: 0, gid: 0 };
    const write = async (name: string, text: string) => {
      const ino = await fs.namespace.create(1, name, S_IFREG | 0o644, root);
      const fh = await fs.files.open(ino, 2);
      // Past the inline threshold: the bytes go to a block of their own, which is what is tested.
      const bytes = Buffer.alloc(8192, '.');
      bytes.write(text);
      await fs.files.write(fh, 0, bytes);
      await fs.files.release(fh);
      return ino;
    };
    const read = async (ino: number) => {
      const fh = await fs.files.open(ino, 0);
      try {
        const buf = Buffer.alloc(16);
        return buf.subarray(0, await fs.files.read(fh, 0, 16, buf)).toString();
      } finally {
        await fs.files.release(fh);
      }
    };
    const a = await write('a', 'secret of a.....');
    const b = await write('b', 'contents of b...');
    expect(await read(a)).toBe('secret of a.....'); // a's block is now cached
    // Through the volume's metadata store, so the map is sealed validly under B's key: only the
    // block's own authentication can catch the swap.
    const meta = fs.volume.store;
    const mapOfA = await meta.get(`c:c:${a}:0`);
    const mapOfB = await meta.get(`c:c:${b}:0`);
    const moved = await meta.put(`c:c:${b}:0`, mapOfA!.value, { kind: 'ifVersion', version: mapOfB!.version });
    expect(moved.ok).toBe(true);
    await expect(read(b)).rejects.toBeInstanceOf(IntegrityError);
    await fs.close();
  });
});
