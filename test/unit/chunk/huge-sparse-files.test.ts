/**
 * Work follows the data a file holds, never its size: a 100 TB or 8 EiB sparse file is created,
 * read at both ends, truncated, deleted and checked with a few store calls. Counted on a store
 * that stops the test once an operation reads or writes more keys than its budget, so code that
 * walks every chunk index up to the size fails at once instead of filling memory.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { KvStore } from '../../../src/backends/kv-store.js';
import { MemoryData, MemoryStore, type FaultHook } from '../../../src/backends/memory/index.js';
import { withAtomicCommit } from '../../../src/cas/intent-store.js';
import { type ByteOffset, MAX_FILE_SIZE, exactOffset } from '../../../src/chunk/byte-offset.js';
import { GROUP_CHUNKS } from '../../../src/chunk/chunk-index.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { fsckVolume } from '../../../src/fsck/index.js';
import { ROOT_INO, S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';
import { testRuns } from '../../helpers/property-runs.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const O_RDWR = 2;
const TB = 2 ** 40;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Counts the keys every store call names; throws once the budget set for an operation is spent. */
class KeyBudget {
  used = 0;
  private limit = Infinity;

  readonly hook: FaultHook = (call) => {
    this.used += Math.max(1, call.keys.length);
    if (this.used > this.limit) throw new Error(`budget of ${this.limit} keys spent: ${call.op} of ${call.keys.length} keys`);
  };

  /** Runs `fn` with at most `limit` keys touched; @returns the keys it touched. */
  async within<T>(limit: number, fn: () => Promise<T>): Promise<{ result: T; keys: number }> {
    this.used = 0;
    this.limit = limit;
    try {
      const result = await fn();
      return { result, keys: this.used };
    } finally {
      this.limit = Infinity;
    }
  }
}

type Backing = 'memory' | 'intents';

function storeFor(backing: Backing, data: MemoryData, hook: FaultHook): KvStore {
  if (backing === 'memory') return new MemoryStore({ data, beforeOperation: hook });
  // memcached's shape: single-key CAS, commits by intent records, no scan.
  return withAtomicCommit(new NoCommitStore({ data, beforeOperation: hook, noScan: true }));
}

async function openFs(backing: Backing, budget: KeyBudget, data = new MemoryData()) {
  const store = storeFor(backing, data, budget.hook);
  const fs = new FileSystem(await Volume.open({ store, log, prefix: 'h:', graceMs: 0 }));
  return { fs, store, data };
}

async function expectErrno(p: Promise<unknown>, code: string) {
  await expect(p).rejects.toSatisfy((e: unknown) => e instanceof FsError && e.code === code);
}

async function readAt(fs: FileSystem, ino: number, offset: ByteOffset, length: number): Promise<Buffer> {
  const fh = await fs.files.open(ino, 0);
  const buf = Buffer.alloc(length);
  const n = await fs.files.read(fh, offset, length, buf);
  await fs.files.release(fh);
  return buf.subarray(0, n);
}

async function writeAt(fs: FileSystem, ino: number, offset: ByteOffset, data: Buffer): Promise<void> {
  const fh = await fs.files.open(ino, O_RDWR);
  await fs.files.write(fh, offset, data);
  await fs.files.release(fh);
}

/** Keys of the volume's data path that belong to `ino`: chunk maps and chunk index records. */
function dataKeysOf(data: MemoryData, ino: number): string[] {
  return [...data.keys()].filter((k) => k.startsWith(`h:c:${ino}:`) || k.startsWith(`h:x:${ino}:`));
}

/** Collects every garbage record now (the grace period is 0), as the mount's timers would. */
async function collectGarbage(fs: FileSystem, data: MemoryData): Promise<void> {
  for (const key of [...data.keys()].filter((k) => k.startsWith('h:g:'))) await fs.volume.garbage.collect(key, Date.now() + 1);
}

describe.each<Backing>(['memory', 'intents'])('huge sparse files (%s store)', (backing) => {
  it('truncate -s 100T then rm: deleting the file touches its chunks, not 100 million indexes', async () => {
    const budget = new KeyBudget();
    const { fs, data } = await openFs(backing, budget);
    const ino = await fs.namespace.create(ROOT_INO, 'huge', S_IFREG | 0o644, root);
    await budget.within(2_000, () => fs.attributes.truncate(ino, 100 * TB));
    expect((await fs.attributes.stat(ino)).size).toBe(100 * TB);
    await budget.within(2_000, () => fs.namespace.unlink(ROOT_INO, 'huge'));
    const { keys } = await budget.within(2_000, () => collectGarbage(fs, data));
    expect(keys).toBeLessThan(2_000);
    expect(dataKeysOf(data, ino)).toEqual([]);
    expect([...data.keys()].filter((k) => k.startsWith('h:g:'))).toEqual([]);
    await fs.close();
  });

  it('allocatedBound (st_blocks) counts the groups of chunks a sparse file holds, not its size', async () => {
    const budget = new KeyBudget();
    const { fs } = await openFs(backing, budget);
    const ino = await fs.namespace.create(ROOT_INO, 'sparse', S_IFREG | 0o644, root);
    const chunk = fs.volume.data.chunkSize;
    await writeAt(fs, ino, 0, Buffer.from('a'));
    await writeAt(fs, ino, 50 * TB, Buffer.from('z'));
    await fs.attributes.truncate(ino, 100 * TB);
    const { result: bound, keys } = await budget.within(100, () => fs.volume.data.allocatedBound(ino, 100 * TB));
    // The first group (always counted) and the group holding 50 TB, from a few index records.
    expect(bound).toBe(2 * 64 * chunk);
    expect(keys).toBeLessThanOrEqual(4);
    // A file within the first group counts as dense, with no index read.
    const small = await fs.namespace.create(ROOT_INO, 'small', S_IFREG | 0o644, root);
    await writeAt(fs, small, 0, Buffer.alloc(3 * chunk, 1));
    expect(await fs.volume.data.allocatedBound(small, 3 * chunk)).toBe(3 * chunk);
    await fs.close();
  });

  it('a file of the largest size, 2^63 - 1 bytes: written and read at both ends, truncated, deleted, fsck clean', async () => {
    const budget = new KeyBudget();
    const opened = await openFs(backing, budget);
    const { data, store } = opened;
    let fs = opened.fs;
    const ino = await fs.namespace.create(ROOT_INO, 'max', S_IFREG | 0o644, root);
    await budget.within(2_000, () => fs.attributes.truncate(ino, MAX_FILE_SIZE));
    // Across 2^53, where a double stops counting every byte.
    const across = 2 ** 53 - 3;
    await budget.within(2_000, async () => {
      await writeAt(fs, ino, 0, Buffer.from('head'));
      await writeAt(fs, ino, MAX_FILE_SIZE - 4n, Buffer.from('tail'));
      await writeAt(fs, ino, 100 * TB, Buffer.from('middle'));
      await writeAt(fs, ino, across, Buffer.from('abcdef'));
    });
    expect((await fs.attributes.stat(ino)).size).toBe(MAX_FILE_SIZE);
    await budget.within(2_000, async () => {
      expect((await readAt(fs, ino, 0, 6)).toString()).toBe('head\0\0');
      expect((await readAt(fs, ino, MAX_FILE_SIZE - 6n, 100)).toString()).toBe('\0\0tail');
      expect((await readAt(fs, ino, MAX_FILE_SIZE - 1n, 1)).toString()).toBe('l');
      expect((await readAt(fs, ino, MAX_FILE_SIZE, 1)).length).toBe(0);
      expect((await readAt(fs, ino, 100 * TB - 2, 10)).toString()).toBe('\0\0middle\0\0');
      expect((await readAt(fs, ino, 2 ** 52, 4)).equals(Buffer.alloc(4))).toBe(true);
      expect((await readAt(fs, ino, across - 1, 8)).toString()).toBe('\0abcdef\0');
      expect((await readAt(fs, ino, 2n ** 53n + 1n, 2)).toString()).toBe('ef');
    });
    // Every byte is where it was written, not at the nearest double.
    const seekFh = await fs.files.open(ino, 0);
    expect(await fs.files.seek(seekFh, 2n ** 62n, 'data')).toBe(exactOffset(MAX_FILE_SIZE + 1n - BigInt(fs.volume.data.chunkSize)));
    expect(await fs.files.seek(seekFh, MAX_FILE_SIZE - 5n, 'hole')).toBe(MAX_FILE_SIZE);
    await fs.files.release(seekFh);
    // Past the largest size: EFBIG for write, truncate and fallocate, as the kernel past its limit.
    const fh = await fs.files.open(ino, O_RDWR);
    await expectErrno(fs.files.write(fh, MAX_FILE_SIZE - 1n, Buffer.from('xy')), 'EFBIG');
    await expectErrno(fs.files.write(fh, MAX_FILE_SIZE, Buffer.from('x')), 'EFBIG');
    await fs.files.release(fh);
    await expectErrno(fs.attributes.truncate(ino, MAX_FILE_SIZE + 1n), 'EFBIG');
    await expectErrno(fs.attributes.truncate(ino, 2n ** 64n), 'EFBIG');
    await expectErrno(fs.space.fallocate(ino, 0, MAX_FILE_SIZE - 10n, 11), 'EFBIG');
    // The exact size survives a remount: the record holds it as a 64-bit integer.
    await fs.close();
    fs = (await openFs(backing, budget, data)).fs;
    expect((await fs.attributes.stat(ino)).size).toBe(MAX_FILE_SIZE);
    expect((await readAt(fs, ino, MAX_FILE_SIZE - 4n, 4)).toString()).toBe('tail');

    await budget.within(2_000, () => fs.attributes.truncate(ino, 100 * TB + 3));
    expect((await readAt(fs, ino, 100 * TB - 2, 10)).toString()).toBe('\0\0mid');
    await budget.within(2_000, () => fs.attributes.truncate(ino, 2 * TB));
    expect((await readAt(fs, ino, 0, 4)).toString()).toBe('head');
    // Growing again shows zeros where the cut bytes were, never the old ones.
    await budget.within(2_000, () => fs.attributes.truncate(ino, MAX_FILE_SIZE));
    expect((await readAt(fs, ino, 100 * TB, 6)).equals(Buffer.alloc(6))).toBe(true);
    expect((await readAt(fs, ino, MAX_FILE_SIZE - 4n, 4)).equals(Buffer.alloc(4))).toBe(true);
    // Only the first group's chunk is left: the index records of the cut groups went with them.
    expect(dataKeysOf(data, ino)).toEqual([`h:c:${ino}:0`]);

    // Closed first: the replaced blocks waiting for their garbage record are written out, and
    // collected (the grace period is 0) by the next mount.
    await fs.close();
    const again = (await openFs(backing, budget, data)).fs;
    await collectGarbage(again, data);
    const report = await budget.within(5_000, () => fsckVolume({ store, prefix: 'h:', log }, {}));
    expect(report.result.problems).toEqual([]);
    await budget.within(2_000, () => again.namespace.unlink(ROOT_INO, 'max'));
    await budget.within(2_000, () => collectGarbage(again, data));
    expect(dataKeysOf(data, ino)).toEqual([]);
    await again.close();
  });

  it('seekData and seekHole find the next data and hole from the chunks present', async () => {
    const budget = new KeyBudget();
    const { fs } = await openFs(backing, budget);
    const { data: fileData } = fs.volume;
    const chunk = fileData.chunkSize;
    const ino = await fs.namespace.create(ROOT_INO, 'seek', S_IFREG | 0o644, root);
    const size = 100 * TB;
    await fs.attributes.truncate(ino, size);
    // Chunks 3 and 4 full, chunk 5 holds 10 bytes, then one chunk near 50 TB.
    await writeAt(fs, ino, 3 * chunk, Buffer.alloc(2 * chunk + 10, 1));
    const far = 50 * TB + 7;
    await writeAt(fs, ino, far, Buffer.from('x'));
    const farChunk = Math.floor(far / chunk) * chunk;
    const { result } = await budget.within(2_000, async () => ({
      dataFrom0: await fileData.seekData(ino, 0, size),
      dataInside: await fileData.seekData(ino, 3 * chunk + 5, size),
      dataAfterShort: await fileData.seekData(ino, 5 * chunk + 10, size),
      holeFrom0: await fileData.seekHole(ino, 0, size),
      holeInData: await fileData.seekHole(ino, 3 * chunk + 5, size),
      holeFar: await fileData.seekHole(ino, far, size),
      dataPastLast: await fileData.seekData(ino, far + chunk, size),
      holeAtEnd: await fileData.seekHole(ino, size - 1, size),
      pastEnd: await fileData.seekData(ino, size, size),
    }));
    expect(result).toEqual({
      dataFrom0: 3 * chunk,
      dataInside: 3 * chunk + 5,
      dataAfterShort: farChunk,
      holeFrom0: 0,
      holeInData: 5 * chunk + 10,
      holeFar: far + 1,
      dataPastLast: undefined,
      holeAtEnd: size - 1,
      pastEnd: undefined,
    });
    await fs.close();
  });

  it('OpenFiles.seek: buffered writes count, ENXIO at the end and where no data follows', async () => {
    const budget = new KeyBudget();
    const { fs } = await openFs(backing, budget);
    const ino = await fs.namespace.create(ROOT_INO, 'seek-open', S_IFREG | 0o644, root);
    const fh = await fs.files.open(ino, O_RDWR);
    await fs.files.write(fh, 30 * TB, Buffer.from('buffered'));
    const { result } = await budget.within(2_000, async () => ({
      data: await fs.files.seek(fh, 0, 'data'),
      hole: await fs.files.seek(fh, 30 * TB, 'hole'),
      holeAtStart: await fs.files.seek(fh, 0, 'hole'),
    }));
    expect(result).toEqual({ data: 30 * TB, hole: 30 * TB + 8, holeAtStart: 0 });
    await expectErrno(fs.files.seek(fh, 30 * TB + 8, 'data'), 'ENXIO');
    await expectErrno(fs.files.seek(fh, 30 * TB + 8, 'hole'), 'ENXIO');
    await expectErrno(fs.files.seek(fh, -1, 'data'), 'ENXIO');
    await fs.files.release(fh);
    await fs.close();
  });

  it('a chunk created while a truncate clears its group stays named (store calls reordered)', async () => {
    const ROUNDS = testRuns(24, 12);
    const data = new MemoryData();
    const delay: FaultHook = () => new Promise((resolve) => setTimeout(resolve, Math.random() * 2));
    // The writer's chunk map writes are slow: a whole clear fits between its look at the index
    // and its write.
    const slowChunkWrites: FaultHook = (call) =>
      (call.op === 'put' || call.op === 'commit') && call.keys.some((k) => k.startsWith('h:c:')) ? sleep(20) : delay(call);
    const store = storeFor(backing, data, slowChunkWrites);
    const fs = new FileSystem(await Volume.open({ store, log, prefix: 'h:', graceMs: 0 }));
    // A second mount of the same volume: no lock or queue of this process orders the two.
    const other = new FileSystem(await Volume.open({ store: storeFor(backing, data, delay), log, prefix: 'h:', graceMs: 0 }));
    const fileData = fs.volume.data;
    const chunk = fileData.chunkSize;
    let survived = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const base = (round + 1) * 4 * GROUP_CHUNKS;
      const ino = await fs.namespace.create(ROOT_INO, `race${round}`, S_IFREG | 0o644, root);
      await fileData.rewriteChunk(ino, base, () => Buffer.alloc(10, 1));
      // One client cuts the group away; another creates a chunk in it meanwhile, sooner or later.
      const create = async (r: number) => {
        if (r % 2 === 1) await sleep(((r - 1) / 2) % 6);
        await fileData.rewriteChunk(ino, base + 1, () => Buffer.alloc(10, 2));
      };
      await Promise.all([other.volume.data.truncate(ino, (base + 1) * chunk, base * chunk), create(round)]);
      const named: number[] = [];
      for await (const present of fileData.index.presentChunks(ino, GROUP_CHUNKS)) named.push(...present);
      // The truncate may have dropped the new chunk too; whatever exists must be named.
      const stored = dataKeysOf(data, ino).filter((k) => k.startsWith('h:c:')).map((k) => Number(k.split(':')[3]));
      expect(named).toEqual(stored);
      survived += stored.length;
    }
    await fs.close();
    await other.close();
    // The new chunk outlived the truncate: the case where a clear could have lost it.
    expect(survived).toBeGreaterThan(0);
  });

  it('random sparse writes and truncates at far offsets, up to 2^63 - 1, read back as a model says, at a cost in chunks present', async () => {
    // Chunk numbers near the start, up to 2^53 bytes, and up to 2^63 bytes (1 MiB chunks).
    const chunkNumbers = fc.oneof(fc.nat(200), fc.integer({ min: 0, max: 2 ** 33 - 1 }), fc.bigInt({ min: 2n ** 33n, max: 2n ** 43n - 1n }));
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), chunk: chunkNumbers, within: fc.nat(2 ** 20 - 1), length: fc.integer({ min: 1, max: 64 }) }),
      fc.record({ kind: fc.constant('truncate' as const), chunk: chunkNumbers, within: fc.nat(2 ** 20 - 1) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const budget = new KeyBudget();
        const { fs, data } = await openFs(backing, budget);
        const chunk = BigInt(fs.volume.data.chunkSize);
        const ino = await fs.namespace.create(ROOT_INO, 'f', S_IFREG | 0o644, root);
        // The model, in exact integers: bytes written (offset -> byte) and the size.
        const bytes = new Map<bigint, number>();
        let size = 0n;
        const chunksPresent = () => new Set([...bytes.keys()].map((o) => o / chunk)).size;
        for (const [n, step] of ops.entries()) {
          const wanted = BigInt(step.chunk) * chunk + BigInt(step.within);
          const offset = wanted < MAX_FILE_SIZE - 64n ? wanted : MAX_FILE_SIZE - 64n;
          // Index records and the first group's getMany per group: a constant per chunk present.
          const limit = 400 + 200 * (chunksPresent() + 1);
          if (step.kind === 'write') {
            const payload = Buffer.alloc(step.length, (n % 250) + 1);
            await budget.within(limit, () => writeAt(fs, ino, exactOffset(offset), payload));
            for (let i = 0; i < step.length; i++) bytes.set(offset + BigInt(i), payload[i]);
            const end = offset + BigInt(step.length);
            if (end > size) size = end;
          } else {
            await budget.within(limit, () => fs.attributes.truncate(ino, exactOffset(offset)));
            for (const o of [...bytes.keys()]) if (o >= offset) bytes.delete(o);
            size = offset;
          }
          expect(BigInt((await fs.attributes.stat(ino)).size)).toBe(size);
        }
        const probes = new Set<bigint>([0n, size > 0n ? size - 1n : 0n]);
        for (const o of bytes.keys()) probes.add(o).add(o > 0n ? o - 1n : 0n);
        for (const at of probes) {
          const got = await readAt(fs, ino, exactOffset(at), 2);
          const want = Buffer.from([at, at + 1n].filter((o) => o < size).map((o) => bytes.get(o) ?? 0));
          expect(got.equals(want)).toBe(true);
        }
        // Stored chunk maps are exactly the model's chunks: nothing left past a truncate.
        const stored = dataKeysOf(data, ino).filter((k) => k.startsWith('h:c:')).map((k) => BigInt(k.split(':')[3]));
        const modelChunks = new Set([...bytes.keys()].map((o) => o / chunk));
        for (const c of stored) expect(modelChunks.has(c) || c < BigInt(GROUP_CHUNKS)).toBe(true);
        await fs.namespace.unlink(ROOT_INO, 'f');
        await budget.within(400 + 200 * (chunksPresent() + 1), () => collectGarbage(fs, data));
        expect(dataKeysOf(data, ino)).toEqual([]);
        await fs.close();
      }),
      { numRuns: testRuns(backing === 'memory' ? 40 : 15), seed: 1414 },
    );
  });
});
