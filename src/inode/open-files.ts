import type { Transaction } from '../cas/transaction.js';
import { type ByteOffset, MAX_FILE_SIZE, chunkAt, inChunk, larger, minus, plus, sameOffset, smaller } from '../chunk/byte-offset.js';
import { ReadAhead } from '../chunk/read-ahead.js';
import { WriteBuffer } from '../chunk/write-buffer.js';
import type { AlongsideChunk, ChunkRef } from '../chunk/file-data.js';
import { FsError } from './fs-error.js';
import type { InodeTable } from './inode-table.js';
import { isDir, isReg, type InodeRecord } from './records.js';
import { now, type Timespec } from './timespec.js';
import type { Volume } from './volume.js';

/**
 * Chunk refs an open file remembers: a read through a huge sparse file would otherwise keep one
 * per chunk it passed. Enough for the readahead window and a cache's worth of 1 MiB chunks.
 */
const MAX_REMEMBERED_REFS = 4096;

/** A Map that forgets its oldest entry past `limit` entries. */
class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }

  override set(key: K, value: V): this {
    if (!this.has(key) && this.size >= this.limit) {
      const oldest = this.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    return super.set(key, value);
  }
}

/** What this mount knows of a file while it has it open. */
class OpenInode {
  handles = 0;
  /** Size including writes not yet persisted. */
  size: ByteOffset;
  /** Whether `size` is past what the inode record holds. */
  sizeDirty = false;
  /** The size the inode record is known to hold at least. */
  storedSize: ByteOffset;
  /** An inode update growing the stored size, shared by the chunk stores waiting for it. */
  growing: Promise<void> | undefined;
  mtime: Timespec | undefined;
  /** Chunk refs read while open; dropped when this mount rewrites the chunk. */
  readonly refs = new BoundedMap<number, ChunkRef | undefined>(MAX_REMEMBERED_REFS);
  readonly buffer: WriteBuffer;
  readonly readAhead: ReadAhead;

  constructor(
    volume: Volume,
    readonly ino: number,
    record: InodeRecord,
    grow: (state: OpenInode, end: ByteOffset) => Promise<void>,
    alongside: ((state: OpenInode) => AlongsideChunk) | undefined,
  ) {
    this.size = record.size;
    this.storedSize = record.size;
    this.readAhead = new ReadAhead(volume.data, ino, this.refs);
    this.buffer = new WriteBuffer(volume.data, ino, {
      onChunkStored: (i) => this.refs.delete(i),
      beforeStore: (end) => grow(this, end),
      alongside: alongside && (() => alongside(this)),
    });
  }
}

interface Handle {
  readonly ino: number;
  readonly flags: number;
  /** Wrote since its data was last stored. */
  wrote: boolean;
  /** A failure to store data this handle wrote, not yet reported to it. */
  error?: unknown;
}

const O_ACCMODE = 3;
const O_RDONLY = 0;

/**
 * Open files of this mount: handles, write-back buffers, readahead. Close-to-open consistency:
 * opening reads the inode afresh; closing (flush) persists data, then size and mtime.
 */
export class OpenFiles {
  private readonly handles = new Map<number, Handle>();
  private readonly inodes = new Map<number, OpenInode>();
  private nextHandle = 1;

  constructor(
    private readonly volume: Volume,
    private readonly table: InodeTable,
    /** Deletes an inode whose last name went while it was open here. */
    private readonly reap: (ino: number) => Promise<void>,
  ) {}

  isOpen(ino: number): boolean {
    return this.inodes.has(ino);
  }

  /** @returns a handle number (never 0) */
  async open(ino: number, flags: number): Promise<number> {
    this.volume.cache.invalidate(this.volume.keys.inode(ino));
    let state = this.inodes.get(ino);
    if (!state) {
      const record = await this.volume.transact((tx) => this.table.read(tx, ino));
      if (isDir(record.mode)) throw new FsError('EISDIR');
      state =
        this.inodes.get(ino) ??
        new OpenInode(this.volume, ino, record, (st, end) => this.grow(st, end), this.sizeInChunkCommit());
      this.inodes.set(ino, state);
    } else {
      state.refs.clear();
      state.readAhead.reset();
    }
    return this.addHandle(state, ino, flags);
  }

  /**
   * Opens a file this mount has just created, from the record it wrote: nothing can have
   * changed it yet, so it is not read again.
   * @returns a handle number (never 0)
   */
  openCreated(ino: number, record: InodeRecord, flags: number): number {
    if (this.inodes.has(ino)) throw new Error(`inode ${ino} is open already: it cannot have just been created`);
    const state = new OpenInode(this.volume, ino, record, (st, end) => this.grow(st, end), this.sizeInChunkCommit());
    this.inodes.set(ino, state);
    return this.addHandle(state, ino, flags);
  }

  private addHandle(state: OpenInode, ino: number, flags: number): number {
    state.handles += 1;
    const fh = this.nextHandle++;
    if (this.nextHandle > 0x7fffffff) this.nextHandle = 1;
    this.handles.set(fh, { ino, flags, wrote: false });
    return fh;
  }

  inoOf(fh: number): number {
    const handle = this.handles.get(fh);
    if (!handle) throw new FsError('EBADF');
    return handle.ino;
  }

  /** Overlays what this mount has not persisted yet onto a stored inode record. */
  overlay(ino: number, record: InodeRecord): InodeRecord {
    const state = this.inodes.get(ino);
    if (!state || !isReg(record.mode)) return record;
    const out = { ...record };
    if (state.sizeDirty) out.size = larger(record.size, state.size);
    if (state.mtime) out.mtime = out.ctime = state.mtime;
    return out;
  }

  async read(fh: number, offset: ByteOffset, length: number, into: Buffer): Promise<number> {
    const state = this.stateOf(fh);
    const end = smaller(plus(offset, length), state.size);
    if (offset >= end) return 0;
    const chunkSize = this.volume.data.chunkSize;
    const first = chunkAt(offset, chunkSize);
    const last = chunkAt(minus(end, 1), chunkSize);
    state.readAhead.onRead(offset, end, state.size);
    let copied = 0;
    for (let index = first; index <= last; index++) {
      // Cached refs and blocks are used without an await: most reads of a sequential scan
      // hit both, and each await costs a trip through the microtask queue.
      if (state.buffer.pending(index)) await state.buffer.settle(index);
      const from = index === first ? inChunk(offset, chunkSize) : 0;
      const to = index === last ? inChunk(minus(end, 1), chunkSize) + 1 : chunkSize;
      const ref = state.refs.has(index) ? state.refs.get(index) : await this.refOf(state, index);
      const data = ref ? (this.volume.data.cachedChunk(ref, state.ino, index) ?? (await this.volume.data.readChunk(ref, state.ino, index))) : undefined;
      const available = data ? Math.max(0, Math.min(to, data.length) - from) : 0;
      if (data && available > 0) data.copy(into, copied, from, from + available);
      // Holes and the tail past a short block read as zeros.
      into.fill(0, copied + available, copied + (to - from));
      copied += to - from;
    }
    return copied;
  }

  async write(fh: number, offset: ByteOffset, data: Buffer): Promise<number> {
    const handle = this.handles.get(fh);
    if (!handle) throw new FsError('EBADF');
    if ((handle.flags & O_ACCMODE) === O_RDONLY) throw new FsError('EBADF');
    const state = this.stateOf(fh);
    const end = plus(offset, data.length);
    if (typeof end === 'bigint' && end > MAX_FILE_SIZE) throw new FsError('EFBIG');
    handle.wrote = true;
    // The size first: a chunk stored by this write grows the stored size to it beforehand.
    if (end > state.size) {
      state.size = end;
      state.sizeDirty = true;
    }
    state.mtime = now();
    await state.buffer.write(offset, data);
    return data.length;
  }

  /**
   * lseek(2) SEEK_DATA (`what` 'data') and SEEK_HOLE ('hole'): the first offset at or after
   * `offset` in data, or in a hole (the end of the file is one). Writes buffered here are
   * stored first, so that they count. Costs the chunks the file holds from `offset`.
   * @throws FsError ENXIO when `offset` is negative, at or past the end, or no data follows it;
   *   EBADF for an unknown handle
   */
  async seek(fh: number, offset: ByteOffset, what: 'data' | 'hole'): Promise<ByteOffset> {
    const state = this.stateOf(fh);
    await state.buffer.flush();
    const { data } = this.volume;
    const found = what === 'data' ? await data.seekData(state.ino, offset, state.size) : await data.seekHole(state.ino, offset, state.size);
    if (found === undefined) throw new FsError('ENXIO');
    return found;
  }

  /**
   * Persists data, then size and times, and commits what this mount answered before committing
   * (the file's create, attribute changes): close-to-open, another mount's open sees it all.
   */
  async flush(fh: number): Promise<void> {
    const handle = this.handles.get(fh);
    if (!handle) throw new FsError('EBADF');
    await this.persistFor(handle.ino, this.stateOf(fh));
    await this.volume.commits.publish();
    if (handle.error !== undefined) {
      const err = handle.error;
      handle.error = undefined;
      throw err;
    }
  }

  /**
   * Persists, and on failure makes the error reach every handle that wrote data since it was
   * last stored (Linux does the same with errseq): the buffer is shared, so the handle that
   * happens to flush first must not be the only one told its bytes were lost.
   */
  private async persistFor(ino: number, state: OpenInode): Promise<void> {
    const writers = [...this.handles.values()].filter((h) => h.ino === ino && h.wrote);
    try {
      await this.persist(state);
    } catch (err) {
      for (const h of writers) h.error ??= err;
    } finally {
      for (const h of writers) h.wrote = false;
    }
  }

  async release(fh: number): Promise<void> {
    const handle = this.handles.get(fh);
    if (!handle) return;
    const state = this.inodes.get(handle.ino);
    if (!state) {
      this.handles.delete(fh);
      return;
    }
    try {
      // Nobody hears release's answer: a failure goes to the other handles that wrote.
      await this.persistFor(handle.ino, state);
    } finally {
      this.handles.delete(fh);
      state.handles -= 1;
      if (state.handles === 0) {
        this.inodes.delete(handle.ino);
        await this.reap(handle.ino);
      }
    }
  }

  /** Truncation seen by open state: dirty bytes past the end forgotten, size set. */
  async truncated(ino: number, size: ByteOffset): Promise<void> {
    const state = this.inodes.get(ino);
    if (!state) return;
    await state.buffer.truncate(size);
    state.size = size;
    state.storedSize = size;
    state.sizeDirty = false;
    state.refs.clear();
  }

  /**
   * Before an explicit mtime (utimens): writes made so far no longer set the mtime when their
   * data is stored. @returns false when chunks of the file are being stored right now (their
   * size update may carry the old time): then persist first
   */
  supersedeWriteTime(ino: number): boolean {
    const state = this.inodes.get(ino);
    if (!state) return true;
    if (state.growing || state.buffer.storing) return false;
    state.mtime = undefined;
    return true;
  }

  /** Forgets the chunk refs read while open: the chunks were changed behind the buffer (fallocate). */
  forgetChunks(ino: number): void {
    const state = this.inodes.get(ino);
    if (!state) return;
    state.refs.clear();
    state.readAhead.reset();
  }

  /** Persists pending writes of an inode if this mount has it open (before truncate, setattr). */
  async persistIno(ino: number): Promise<void> {
    const state = this.inodes.get(ino);
    if (state) await this.persist(state);
  }

  /** Persists everything (unmount). */
  async persistAll(): Promise<void> {
    for (const state of this.inodes.values()) await this.persist(state);
  }

  /**
   * Makes the stored size reach `end` before bytes up to `end` are stored: one inode update
   * (to everything written so far) serves all the chunk stores waiting at that moment.
   */
  private async grow(state: OpenInode, end: ByteOffset): Promise<void> {
    while (state.storedSize < end) {
      if (!state.growing) {
        const target = state.size;
        // The times of the writes so far go along: a small file's close then has no inode
        // update left to make.
        const mtime = state.mtime;
        state.growing = this.volume.transact(async (tx) => {
          const record = await this.table.find(tx, state.ino);
          if (!record) return; // deleted meanwhile: nothing to grow
          if (record.size < target) {
            record.size = target;
            if (mtime) record.mtime = record.ctime = mtime;
            this.table.write(tx, state.ino, record);
          }
        })
          .then(() => {
            state.storedSize = larger(state.storedSize, target);
            if (sameOffset(state.size, target)) state.sizeDirty = false;
            if (mtime && state.mtime === mtime) state.mtime = undefined;
          })
          .finally(() => {
            state.growing = undefined;
          });
      }
      const pending = state.growing;
      await pending;
      // A truncate may have shrunk the file meanwhile: nothing more to grow then.
      if (state.size < end) return;
    }
  }

  /**
   * On a store with its own multi-key transactions, the last chunk of a file is stored in one
   * commit with the inode's size and mtime (a small file's close is one commit). Stores that
   * build commits from intent records keep two single-key updates, size first.
   */
  private sizeInChunkCommit(): ((state: OpenInode) => AlongsideChunk) | undefined {
    return this.volume.store.capabilities.commitByIntents ? undefined : (state) => (tx) => this.stageSize(state, tx);
  }

  /** Stages the inode update that persist() would make; returns what to note once committed. */
  private async stageSize(state: OpenInode, tx: Transaction): Promise<() => void> {
    const size = state.size;
    const mtime = state.mtime;
    const key = this.volume.keys.inode(state.ino);
    const record = await this.table.find(tx, state.ino);
    if (record && (record.size < size || mtime)) {
      record.size = larger(record.size, size);
      if (mtime) record.mtime = record.ctime = mtime;
      this.table.write(tx, state.ino, record);
    }
    return () => {
      this.volume.cache.invalidate(key);
      state.storedSize = larger(state.storedSize, size);
      if (sameOffset(state.size, size)) state.sizeDirty = false;
      if (mtime && state.mtime === mtime) state.mtime = undefined;
    };
  }

  private async persist(state: OpenInode): Promise<void> {
    await state.buffer.flush();
    if (!state.sizeDirty && !state.mtime) return;
    const size = state.size;
    const mtime = state.mtime;
    await this.volume.transact(async (tx) => {
      const record = await this.table.find(tx, state.ino);
      if (!record) return; // deleted meanwhile (by another mount): nothing to persist into
      if (state.sizeDirty) record.size = larger(record.size, size);
      if (mtime) record.mtime = record.ctime = mtime;
      this.table.write(tx, state.ino, record);
    });
    state.storedSize = larger(state.storedSize, size);
    if (sameOffset(state.size, size)) state.sizeDirty = false;
    if (state.mtime === mtime) state.mtime = undefined;
  }

  private stateOf(fh: number): OpenInode {
    const state = this.inodes.get(this.inoOf(fh));
    if (!state) throw new FsError('EBADF');
    return state;
  }

  private async refOf(state: OpenInode, index: number): Promise<ChunkRef | undefined> {
    if (state.refs.has(index)) return state.refs.get(index);
    const ref = await this.volume.data.chunkRef(state.ino, index);
    state.refs.set(index, ref);
    return ref;
  }
}
