/**
 * Small files: a chunk of at most the inline threshold lives in its chunk map record, and a
 * file's last chunk is stored in one commit with its size and mtime where the store has its own
 * transactions. Counted on a store that records every call, and read back through a second
 * volume on the same store (what another mount sees after close).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { CommitCheck, CommitOp, KvStore, WriteCondition } from '../../../src/backends/kv-store.js';
import { MemoryData, MemoryStore } from '../../../src/backends/memory/index.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { withAtomicCommit } from '../../../src/cas/intent-store.js';
import { IntegrityError } from '../../../src/backends/errors.js';
import { decodeRecord, encodeRecord } from '../../../src/chunk/record-codec.js';
import { DEFAULT_INLINE_MAX_BYTES, type ChunkMapRecord } from '../../../src/chunk/file-data.js';
import { fsckVolume } from '../../../src/fsck/index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { ROOT_INO, S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';
import { patternBytes } from '../../helpers/pattern.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const O_RDWR = 2;

/** Counts the writes that reach a store: single puts and deletes, and multi-key commits. */
class CountingStore {
  puts: string[] = [];
  commits: string[][] = [];

  wrap<S extends KvStore>(store: S): S {
    const put = store.put.bind(store);
    store.put = (key: string, value: Buffer, condition?: WriteCondition) => {
      this.puts.push(key);
      return put(key, value, condition);
    };
    const commit = store.commit?.bind(store);
    if (commit) {
      store.commit = (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => {
        this.commits.push(ops.map((o) => o.key));
        return commit(ops, checks);
      };
    }
    const versioned = store.commitVersioned?.bind(store);
    if (versioned) {
      store.commitVersioned = (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => {
        this.commits.push(ops.map((o) => o.key));
        return versioned(ops, checks);
      };
    }
    return store;
  }

  reset(): void {
    this.puts = [];
    this.commits = [];
  }
}

/** A volume whose deferred operations wait for the next commit, not for a timer (10 s). */
async function open(store: KvStore, inlineMaxBytes?: number): Promise<FileSystem> {
  return new FileSystem(await Volume.open({ store, log, prefix: 's:', graceMs: 10, inlineMaxBytes, commitDelayMs: 10_000 }));
}

async function createFile(fs: FileSystem, name: string): Promise<{ ino: number; fh: number }> {
  const ino = await fs.namespace.create(ROOT_INO, name, S_IFREG | 0o644, root);
  return { ino, fh: await fs.files.open(ino, O_RDWR) };
}

async function readAll(fs: FileSystem, ino: number): Promise<Buffer> {
  const fh = await fs.files.open(ino, 0);
  try {
    const buf = Buffer.alloc(Number((await fs.attributes.stat(ino)).size));
    const n = await fs.files.read(fh, 0, buf.length, buf);
    return buf.subarray(0, n);
  } finally {
    await fs.files.release(fh);
  }
}

async function keysUnder(store: MemoryStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.scan(prefix)) keys.push(key);
  return keys;
}
const blockKeys = (store: MemoryStore) => keysUnder(store, 's:b:');

/** What a later mount does with garbage records once they are due. */
async function collectAllGarbage(fs: FileSystem, store: MemoryStore): Promise<void> {
  const later = Date.now() + 3_600_000;
  for (const key of await keysUnder(store, 's:g:')) expect(await fs.volume.garbage.collect(key, later)).toBe(true);
}

describe('small files', () => {
  it('close of a small file is one commit: its bytes inline with the chunk map, beside the size', async () => {
    const counting = new CountingStore();
    const store = counting.wrap(new MemoryStore());
    const fs = await open(store);
    const { ino, fh } = await createFile(fs, 'small');
    counting.reset();
    const data = patternBytes(3000, 1);
    await fs.files.write(fh, 0, data);
    await fs.files.release(fh);
    expect(counting.puts).toEqual([]);
    expect(counting.commits).toEqual([[fs.volume.keys.chunkMap(ino, 0), fs.volume.keys.inode(ino)]]);
    expect(await blockKeys(store)).toEqual([]);
    await fs.close();

    const other = await open(store);
    expect((await other.attributes.stat(ino)).size).toBe(3000);
    expect((await readAll(other, ino)).equals(data)).toBe(true);
    await other.close();
  });

  it('create (as FUSE does, opened), write and close of a small file is one commit in all', async () => {
    const counting = new CountingStore();
    const store = counting.wrap(new MemoryStore());
    const fs = await open(store);
    counting.reset();
    const ino = await fs.namespace.create(ROOT_INO, 'one', S_IFREG | 0o644, root, { opened: true });
    const fh = await fs.files.open(ino, O_RDWR);
    await fs.files.write(fh, 0, Buffer.from('hello'));
    expect(counting.commits).toEqual([]);
    await fs.files.flush(fh);
    await fs.files.release(fh);
    expect(counting.puts).toEqual([fs.volume.keys.inodeAllocator()]);
    expect(counting.commits).toHaveLength(1);
    expect(new Set(counting.commits[0])).toEqual(
      new Set([fs.volume.keys.inode(ino), fs.volume.keys.dirNode(ROOT_INO, 'r'), fs.volume.keys.inode(ROOT_INO), fs.volume.keys.chunkMap(ino, 0)]),
    );
    await fs.close();
    const other = await open(store);
    expect((await readAll(other, ino)).toString()).toBe('hello');
    await other.close();
  });

  it('untar-like files (create, write, close, utimens, chown, chmod) take one commit each', async () => {
    const counting = new CountingStore();
    const store = counting.wrap(new MemoryStore());
    const fs = await open(store);
    counting.reset();
    const inos: number[] = [];
    for (let i = 0; i < 20; i++) {
      const ino = await fs.namespace.create(ROOT_INO, `f${i}`, S_IFREG | 0o600, root, { opened: true });
      const fh = await fs.files.open(ino, O_RDWR);
      await fs.files.write(fh, 0, patternBytes(100 + i, i));
      await fs.files.flush(fh);
      await fs.files.release(fh);
      await fs.attributes.utimens(ino, { sec: 1_000_000 + i, nsec: 5 }, { sec: 2_000_000 + i, nsec: 7 });
      await fs.attributes.chown(ino, 1000 + i, 100);
      await fs.attributes.chmod(ino, 0o644);
      inos.push(ino);
    }
    await fs.close();
    // The attribute changes of each file ride with the next file's close; the last file's go
    // at unmount, as one put of its inode. The inode allocator claims its range once.
    expect(counting.commits.length).toBe(20);
    expect(counting.puts).toEqual([fs.volume.keys.inodeAllocator(), fs.volume.keys.inode(inos[19])]);
    const other = await open(store);
    for (const [i, ino] of inos.entries()) {
      const record = await other.attributes.stat(ino);
      expect(record).toMatchObject({ mode: S_IFREG | 0o644, uid: 1000 + i, gid: 100, size: 100 + i });
      expect(record.mtime).toEqual({ sec: 2_000_000 + i, nsec: 7 });
      expect((await readAll(other, ino)).equals(patternBytes(100 + i, i))).toBe(true);
    }
    await other.close();
  });

  it('utimens on a file open with buffered data commits nothing; close stores the data with the explicit mtime', async () => {
    const counting = new CountingStore();
    const store = counting.wrap(new MemoryStore());
    const fs = await open(store);
    const { ino, fh } = await createFile(fs, 'timed');
    counting.reset();
    await fs.files.write(fh, 0, patternBytes(2000, 9));
    await fs.attributes.utimens(ino, { sec: 10, nsec: 1 }, { sec: 20, nsec: 2 });
    expect(counting.commits.length + counting.puts.length).toBe(0);
    expect((await fs.attributes.stat(ino)).mtime).toEqual({ sec: 20, nsec: 2 });
    await fs.files.flush(fh);
    expect(counting.commits).toHaveLength(1);
    const stored = await fs.attributes.stat(ino);
    expect(stored).toMatchObject({ size: 2000, mtime: { sec: 20, nsec: 2 }, atime: { sec: 10, nsec: 1 } });
    // A write after it sets the mtime again, as on a local disk.
    await fs.files.write(fh, 2000, Buffer.from('more'));
    await fs.files.release(fh);
    const later = await fs.attributes.stat(ino);
    expect(later.size).toBe(2004);
    expect(later.mtime.sec).toBeGreaterThan(20);
    await fs.close();
  });

  it('a file past the threshold gets a block, still in one commit with its size', async () => {
    const counting = new CountingStore();
    const store = counting.wrap(new MemoryStore());
    const fs = await open(store);
    const { ino, fh } = await createFile(fs, 'medium');
    counting.reset();
    const data = patternBytes(DEFAULT_INLINE_MAX_BYTES + 1, 2);
    await fs.files.write(fh, 0, data);
    await fs.files.release(fh);
    // The block is its own record under a fresh id, written before the commit that names it.
    expect(counting.puts).toHaveLength(1);
    expect(counting.commits).toEqual([[fs.volume.keys.chunkMap(ino, 0), fs.volume.keys.inode(ino)]]);
    expect(await blockKeys(store)).toHaveLength(1);
    expect((await readAll(fs, ino)).equals(data)).toBe(true);
    await fs.close();
  });

  it('moves between inline and a block as the file grows and shrinks, retiring the block', async () => {
    const store = new MemoryStore();
    const fs = await open(store);
    const { ino, fh } = await createFile(fs, 'moving');
    await fs.files.write(fh, 0, Buffer.from('tiny'));
    await fs.files.flush(fh);
    expect(await blockKeys(store)).toEqual([]);
    const grown = patternBytes(20_000, 3);
    await fs.files.write(fh, 0, grown);
    await fs.files.flush(fh);
    expect(await blockKeys(store)).toHaveLength(1);
    expect((await readAll(fs, ino)).equals(grown)).toBe(true);
    await fs.attributes.truncate(ino, 100);
    expect((await readAll(fs, ino)).equals(grown.subarray(0, 100))).toBe(true);
    // Extending again shows zeros past the cut, never the old bytes.
    await fs.attributes.truncate(ino, 5000);
    const back = await readAll(fs, ino);
    expect(back.subarray(0, 100).equals(grown.subarray(0, 100))).toBe(true);
    expect(back.subarray(100).equals(Buffer.alloc(4900))).toBe(true);
    await fs.files.release(fh);
    await fs.close();
    // The 20,000-byte block was retired: it goes once its garbage record is due.
    const again = await open(store);
    await collectAllGarbage(again, store);
    expect(await blockKeys(store)).toEqual([]);
    await again.close();
  });

  it('a file unlinked after close leaves no chunk map, inline or not', async () => {
    const store = new MemoryStore();
    const fs = await open(store);
    for (const [name, length] of [['a', 10], ['b', 9000]] as const) {
      const { fh } = await createFile(fs, name);
      await fs.files.write(fh, 0, patternBytes(length, 4));
      await fs.files.release(fh);
      await fs.namespace.unlink(ROOT_INO, name);
    }
    await fs.close();
    const again = await open(store);
    await collectAllGarbage(again, store);
    expect(await keysUnder(store, 's:c:')).toEqual([]);
    expect(await blockKeys(store)).toEqual([]);
    await again.close();
  });

  it('a flipped bit in inline bytes reads as an integrity error (EIO), and fsck reports the chunk', async () => {
    const store = new MemoryStore();
    const fs = await open(store);
    const { ino, fh } = await createFile(fs, 'flipped');
    await fs.files.write(fh, 0, Buffer.from('inline bytes here'));
    await fs.files.release(fh);
    await fs.close();
    const key = fs.volume.keys.chunkMap(ino, 0);
    const found = await store.get(key);
    const record = decodeRecord<ChunkMapRecord>(key, found!.value);
    expect(record.inline?.toString()).toBe('inline bytes here');
    record.inline![0] ^= 0x04;
    await store.put(key, encodeRecord(record));
    const again = await open(store);
    await expect(readAll(again, ino)).rejects.toBeInstanceOf(IntegrityError);
    await again.close();
    const report = await fsckVolume({ store, prefix: 's:', log }, {});
    expect(report.problems).toMatchObject([{ kind: 'chunk-map-bad', path: '/flipped' }]);
  });

  it('a chmod answered before its commit and lost to another mount makes the next fsync answer EIO', async () => {
    const data = new MemoryData();
    const here = await open(new MemoryStore({ data }));
    const there = await open(new MemoryStore({ data }));
    const { ino, fh } = await createFile(here, 'contested');
    await here.files.flush(fh);
    await here.attributes.chmod(ino, 0o600); // queued: answered, not committed yet
    await there.namespace.unlink(ROOT_INO, 'contested');
    await expect(here.fsync(fh)).rejects.toSatisfy((e: unknown) => e instanceof FsError && e.code === 'EIO');
    // Reported once: the next fsync has nothing to report.
    await here.fsync(fh);
    await here.files.release(fh);
    await here.close();
    await there.close();
  });

  it('with inline data off, every chunk is a block', async () => {
    const store = new MemoryStore();
    const fs = await open(store, 0);
    const { ino, fh } = await createFile(fs, 'f');
    await fs.files.write(fh, 0, Buffer.from('x'));
    await fs.files.release(fh);
    expect(await blockKeys(store)).toHaveLength(1);
    expect((await readAll(fs, ino)).toString()).toBe('x');
    await fs.close();
  });

  it('on a store whose commits are intent records, the size and the chunk map stay two single-key updates', async () => {
    const counting = new CountingStore();
    const inner = counting.wrap(new NoCommitStore());
    const fs = await open(withAtomicCommit(inner));
    const { ino, fh } = await createFile(fs, 'small');
    counting.reset();
    const data = patternBytes(1000, 5);
    await fs.files.write(fh, 0, data);
    await fs.files.release(fh);
    // The size first, then the chunk map: no intent record.
    expect(counting.puts).toEqual([fs.volume.keys.inode(ino), fs.volume.keys.chunkMap(ino, 0)]);
    expect((await readAll(fs, ino)).equals(data)).toBe(true);
    await fs.close();
  });
});
