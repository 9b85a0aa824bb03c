// A sequential read of a file bigger than the block cache drops the blocks it has passed, so a
// long read reuses a few buffers instead of filling the cache with fresh memory. What it must
// not change: the bytes read, a second pass, random reads, and files the cache can hold.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';
import { patternBytes } from '../../helpers/pattern.js';

const CHUNKS = 24;
const PIECE = 128 * 1024;

async function setup(blockCacheMiB: number) {
  let blockGets = 0;
  const store = new MemoryStore({
    beforeOperation: (call) => {
      if (call.op === 'get') blockGets += call.keys.filter((key) => key.startsWith('d:b:')).length;
    },
  });
  const fs = new FileSystem(
    await Volume.open({ store, log: pino({ level: 'silent' }), prefix: 'd:', blockCacheBytes: blockCacheMiB * 1024 * 1024 }),
  );
  const chunk = fs.volume.data.chunkSize;
  const content = patternBytes(CHUNKS * chunk - 1000, 5);
  const ino = await fs.namespace.create(1, 'big', S_IFREG | 0o644, { uid: 0, gid: 0 });
  const wh = await fs.files.open(ino, 2);
  for (let at = 0; at < content.length; at += PIECE) await fs.files.write(wh, at, content.subarray(at, at + PIECE));
  await fs.files.release(wh);
  const refs = await fs.volume.data.chunkRefs(ino, Array.from({ length: CHUNKS }, (_, i) => i));
  const cached = () => refs.flatMap((ref, i) => (fs.volume.data.cachedChunk(ref!, ino, i) ? [i] : []));
  const drop = () => refs.forEach((ref, i) => fs.volume.data.dropCached(ref!, ino, i));
  return { fs, ino, content, chunk, cached, drop, gets: () => blockGets };
}

async function readAt(fs: FileSystem, fh: number, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, await fs.files.read(fh, offset, length, buf));
}

/** One sequential pass over the file, PIECE bytes per read, as the kernel sends them. */
async function readWhole(fs: FileSystem, fh: number, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < length; at += PIECE) parts.push(await readAt(fs, fh, at, PIECE));
  return Buffer.concat(parts);
}

describe('drop-behind of sequential reads', () => {
  it('leaves only the last blocks of a sequential read of a file bigger than the cache, reads every byte right, and a second pass fetches again', async () => {
    const { fs, ino, content, cached, drop, gets } = await setup(8);
    drop();
    const fh = await fs.files.open(ino, 0);
    for (let pass = 1; pass <= 2; pass++) {
      const before = gets();
      expect((await readWhole(fs, fh, content.length)).equals(content), `pass ${pass}`).toBe(true);
      // The second pass finds the blocks the first one kept.
      expect(gets() - before, `block fetches in pass ${pass}`).toBe(pass === 1 ? CHUNKS : CHUNKS - 3);
      // The read ended in chunk 23: 21 and below were passed by 2 chunks or more.
      expect(cached(), `pass ${pass}`).toEqual([CHUNKS - 3, CHUNKS - 2, CHUNKS - 1]);
    }
    await fs.files.release(fh);
    await fs.close();
  });

  it('keeps every block of a file the cache can hold: a second pass fetches nothing', async () => {
    const { fs, ino, content, cached, drop, gets } = await setup(32);
    drop();
    const fh = await fs.files.open(ino, 0);
    for (let pass = 1; pass <= 2; pass++) {
      const before = gets();
      expect((await readWhole(fs, fh, content.length)).equals(content), `pass ${pass}`).toBe(true);
      expect(gets() - before, `block fetches in pass ${pass}`).toBe(pass === 1 ? CHUNKS : 0);
    }
    expect(cached()).toHaveLength(CHUNKS);
    await fs.files.release(fh);
    await fs.close();
  });

  it('keeps the blocks of reads that are not sequential', async () => {
    const { fs, ino, content, chunk, cached, drop } = await setup(8);
    drop();
    const fh = await fs.files.open(ino, 0);
    for (const index of [9, 3, 15, 6]) {
      const got = await readAt(fs, fh, index * chunk + 100, 4096);
      expect(got.equals(content.subarray(index * chunk + 100, index * chunk + 4196))).toBe(true);
    }
    expect(cached()).toEqual(expect.arrayContaining([3, 6, 9, 15]));
    await fs.files.release(fh);
    await fs.close();
  });
});
