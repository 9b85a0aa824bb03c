import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE } from '../../../src/inode/file-space.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { ROOT_INO, S_IFDIR, S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const O_RDWR = 2;
const MiB = 1024 * 1024;

async function expectErrno(p: Promise<unknown>, code: string) {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof FsError && e.code === code);
}

describe('FileSpace on the memory store: fallocate and lseek', () => {
  let store: MemoryStore;
  let fs: FileSystem;
  let ino: number;
  const content = Buffer.alloc(3 * MiB, 7);

  beforeEach(async () => {
    store = new MemoryStore();
    fs = new FileSystem(await Volume.open({ store, log, prefix: 't:', graceMs: 10, inlineMaxBytes: 0 }));
    ino = await fs.namespace.create(ROOT_INO, 'f', S_IFREG | 0o644, root);
    const fh = await fs.files.open(ino, O_RDWR);
    await fs.files.write(fh, 0, content);
    await fs.files.release(fh);
  });
  afterEach(async () => {
    await fs.close();
  });

  async function read(): Promise<Buffer> {
    const fh = await fs.files.open(ino, 0);
    const buf = Buffer.alloc(16 * MiB);
    const n = await fs.files.read(fh, 0, buf.length, buf);
    await fs.files.release(fh);
    return buf.subarray(0, n);
  }
  const chunkMaps = async () => {
    const keys: string[] = [];
    for await (const key of store.scan(`t:c:${ino}:`)) keys.push(key);
    return keys.sort();
  };

  it('mode 0 grows the size, KEEP_SIZE does not; both read zeros past the old end', async () => {
    await fs.space.fallocate(ino, FALLOC_FL_KEEP_SIZE, 0, 10 * MiB);
    expect((await fs.attributes.stat(ino)).size).toBe(3 * MiB);
    await fs.space.fallocate(ino, 0, MiB, 4 * MiB);
    const after = await read();
    expect(after.length).toBe(5 * MiB);
    expect(after.subarray(0, 3 * MiB).equals(content)).toBe(true);
    expect(after.subarray(3 * MiB).every((b) => b === 0)).toBe(true);
  });

  it('PUNCH_HOLE drops the whole chunks in range and zeros the partial ones, keeping the size', async () => {
    const chunk = fs.volume.data.chunkSize;
    const chunks = 3 * MiB / chunk;
    await fs.space.fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 2 * chunk);
    const after = await read();
    expect(after.length).toBe(3 * MiB);
    expect(after.subarray(0, 100).every((b) => b === 7)).toBe(true);
    expect(after.subarray(100, 2 * chunk + 100).every((b) => b === 0)).toBe(true);
    expect(after.subarray(2 * chunk + 100).every((b) => b === 7)).toBe(true);
    // Chunk 1 lay wholly inside: its map is gone; 0 and 2 were rewritten.
    const kept = [0, ...Array.from({ length: chunks - 2 }, (_, i) => i + 2)].map((i) => `t:c:${ino}:${i}`).sort();
    expect(await chunkMaps()).toEqual(kept);
  });

  it('punching to 2^63 - 1 costs the chunks present, not the length of the range', async () => {
    const last = 2n ** 63n - 1n;
    await fs.attributes.truncate(ino, last);
    const fh = await fs.files.open(ino, O_RDWR);
    await fs.files.write(fh, last - 5n, Buffer.from('tail!'));
    await fs.files.release(fh);
    // Before, a punch walked every chunk index of its range: 2^43 of them here.
    await fs.space.fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, last - BigInt(MiB));
    expect((await fs.attributes.stat(ino)).size).toBe(last);
    const head = await read();
    expect(head.subarray(0, MiB).equals(content.subarray(0, MiB))).toBe(true);
    expect(head.subarray(MiB).every((b) => b === 0)).toBe(true);
    const tail = Buffer.alloc(6);
    const reader = await fs.files.open(ino, 0);
    expect(await fs.files.read(reader, last - 6n, 6, tail)).toBe(6);
    await fs.files.release(reader);
    expect(tail.equals(Buffer.alloc(6))).toBe(true);
    // The last chunk also holds the byte at 2^63 - 1, outside the range: rewritten, not dropped.
    const chunk = fs.volume.data.chunkSize;
    const lastChunk = (last / BigInt(chunk)).toString();
    expect(await chunkMaps()).toEqual([...Array.from({ length: MiB / chunk }, (_, i) => `t:c:${ino}:${i}`), `t:c:${ino}:${lastChunk}`].sort());
  });

  it('ZERO_RANGE zeros and grows the size unless KEEP_SIZE', async () => {
    await fs.space.fallocate(ino, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 3 * MiB - 10, 100);
    expect((await fs.attributes.stat(ino)).size).toBe(3 * MiB);
    await fs.space.fallocate(ino, FALLOC_FL_ZERO_RANGE, 3 * MiB - 20, 100);
    const after = await read();
    expect(after.length).toBe(3 * MiB + 80);
    expect(after.subarray(0, 3 * MiB - 20).every((b) => b === 7)).toBe(true);
    expect(after.subarray(3 * MiB - 20).every((b) => b === 0)).toBe(true);
  });

  it('refuses other modes, a punch without KEEP_SIZE, bad ranges and directories', async () => {
    const FALLOC_FL_COLLAPSE_RANGE = 0x08;
    const FALLOC_FL_INSERT_RANGE = 0x20;
    await expectErrno(fs.space.fallocate(ino, FALLOC_FL_COLLAPSE_RANGE, 0, MiB), 'EOPNOTSUPP');
    await expectErrno(fs.space.fallocate(ino, FALLOC_FL_INSERT_RANGE, 0, MiB), 'EOPNOTSUPP');
    await expectErrno(fs.space.fallocate(ino, FALLOC_FL_PUNCH_HOLE, 0, MiB), 'EOPNOTSUPP');
    await expectErrno(fs.space.fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 0, MiB), 'EOPNOTSUPP');
    await expectErrno(fs.space.fallocate(ino, 0, -1, MiB), 'EINVAL');
    await expectErrno(fs.space.fallocate(ino, 0, 0, 0), 'EINVAL');
    await expectErrno(fs.space.fallocate(ino, 0, 2n ** 63n - 1n, 1), 'EFBIG');
    await expectErrno(fs.space.fallocate(ino, 0, 2n ** 62n, 2n ** 62n), 'EFBIG');
    const dir = await fs.namespace.create(ROOT_INO, 'd', S_IFDIR | 0o755, root);
    await expectErrno(fs.space.fallocate(dir, 0, 0, 1), 'EISDIR');
    expect((await read()).equals(content)).toBe(true);
  });

  it('lseek finds data and holes by the chunks present, and ENXIO past the last data', async () => {
    await fs.space.fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MiB, MiB);
    const fh = await fs.files.open(ino, 0);
    try {
      expect(await fs.files.seek(fh, 0, 'data')).toBe(0);
      expect(await fs.files.seek(fh, 5, 'hole')).toBe(MiB);
      expect(await fs.files.seek(fh, MiB, 'data')).toBe(2 * MiB);
      expect(await fs.files.seek(fh, 2 * MiB, 'hole')).toBe(3 * MiB);
      for (const offset of [3 * MiB, 4 * MiB]) await expectErrno(fs.files.seek(fh, offset, 'data'), 'ENXIO');
    } finally {
      await fs.files.release(fh);
    }
  });
});
