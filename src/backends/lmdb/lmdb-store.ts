import { mkdir } from 'node:fs/promises';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { IF_EXISTS, open, type RootDatabase } from 'lmdb';
import { IntegrityError, StoreUnavailable, ValueTooLarge } from '../errors.js';
import { settleWithin } from '../timeout.js';
import {
  UNCONDITIONAL,
  type CommitCheck,
  type CommitOp,
  type KvStore,
  SINGLE_DOMAIN,
  type PutResult,
  type StoreCapabilities,
  type TakenCommit,
  type Version,
  type VersionedValue,
  type WriteCondition,
} from '../kv-store.js';
import { checkDataFile } from './data-file.js';
import { freeBytes, openFailure, writeFailure } from './lmdb-errors.js';
import { LMDB_MAX_VALUE_BYTES, type LmdbOptions } from './options.js';
import { decodeVersion, encodeVersion, newVersion } from './versions.js';


/** Ops + checks per commit; each check is a nested condition block on LMDB's write thread. */
const MAX_COMMIT_OPS = 1024;
/**
 * Address space mapped at open. lmdb-js grows the map when it fills, but each growth remaps
 * the file and stalls writers; a large map costs only virtual address space (the file grows
 * with the data, not with the map).
 */
const INITIAL_MAP_BYTES = 2 ** 40;
/** Keys a scan hands out before letting other work run. */
const SCAN_YIELD_EVERY = 1024;

/** A condition of a commit: the key must have this version, or be absent (`null`). */
interface Guard {
  readonly key: string;
  readonly version: number | null;
}

/**
 * The embedded default store, on LMDB through lmdb-js. Several processes may open one
 * directory: LMDB serialises their write transactions and every condition is checked inside the
 * transaction that writes.
 *
 * Writes go through lmdb-js's asynchronous write thread, which batches concurrent writes into
 * one transaction; reads are memory-mapped. Commits are nested `ifVersion`/`ifNoExists` blocks
 * inside one batch: the write thread applies the innermost writes only if every enclosing
 * condition held, all in one LMDB transaction. (lmdb-js's `transaction()` needs thread-safe
 * callbacks into JavaScript and is not used.)
 */
/** How long close() waits for the last commits to reach the disk. */
const CLOSE_FLUSH_WAIT_MS = 5_000;
/** How long a reading of the reader table stands. */
const ATTACHED_FRESH_MS = 20;
/** How often at most the reader table is cleared of dead processes. */
const READER_CHECK_EVERY_MS = 1_000;
/** How often a pending write checks that the disk is not full. */
const WRITE_WATCH_MS = 1_000;

export class LmdbStore implements KvStore {
  readonly name = 'lmdb';
  readonly capabilities: StoreCapabilities = Object.freeze({
    maxValueBytes: LMDB_MAX_VALUE_BYTES,
    atomicCommit: true,
    maxCommitOps: MAX_COMMIT_OPS,
    placement: SINGLE_DOMAIN,
    scansByRange: true,
    // A resolved write has been committed into the map, which no longer needs the buffer.
    putReleasesValue: true,
  });
  private closed = false;
  private readerCheckAt = 0;
  private attachedAt = 0;
  private attached = true;

  private constructor(
    private readonly db: RootDatabase<Buffer, string>,
    /** Directory of the store, for messages. */
    readonly path: string,
  ) {}

  /**
   * Opens (creating if needed) the store in `options.path`.
   * @throws StoreUnavailable naming the path and VOLDFS_LMDB_PATH when it cannot.
   */
  static async open(options: LmdbOptions): Promise<LmdbStore> {
    const { path } = options;
    try {
      await mkdir(path, { recursive: true });
      await checkDataFile(path);
      const db = open<Buffer, string>({
        path,
        noSubdir: false,
        useVersions: true,
        encoding: 'binary',
        mapSize: INITIAL_MAP_BYTES,
        // Without event-turn batching lmdb-js still groups concurrent writes into one
        // transaction, but it keeps no internal promise per batch that would reject unhandled
        // when a commit fails (disk full).
        eventTurnBatching: false,
        // A write resolves once committed (visible to every process); the disk flush follows
        // off the writer lock. LMDB's meta pages keep the store consistent at the last flushed
        // commit after a power loss, and sync() (fsync of a file) waits for the flush. Waiting
        // for the disk on every commit would cap metadata updates at a few hundred a second.
        overlappingSync: true,
      });
      return new LmdbStore(db, path);
    } catch (err) {
      throw openFailure(path, err);
    }
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    this.ensureOpen();
    return this.read(key);
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    this.ensureOpen();
    if (keys.length === 0) return [];
    // Page faults for cold records happen on lmdb-js's reader thread, not on the event loop.
    await this.db.prefetch([...keys]);
    this.ensureOpen(); // closed while the reader thread was paging
    return keys.map((key) => this.read(key));
  }

  /** See {@link KvStore.getValueInto}: one copy, from LMDB's map into `alloc`'s memory. */
  async getValueInto(key: string, alloc: (bytes: number) => Buffer): Promise<Buffer | undefined> {
    this.ensureOpen();
    // A block not in the page cache would otherwise be paged in by synchronous faults on the
    // event loop, 128 KiB of disk at a time; lmdb-js's prefetch pages it in on a thread-pool
    // thread, so the reads the file's readahead starts overlap with each other and with serving
    // requests (docs/performance.md, "Figures behind choices in the code").
    await this.db.prefetch([key]);
    this.ensureOpen(); // closed while the thread was paging
    // A view of lmdb-js's reusable read buffer (or of the map), valid until the next read:
    // copied before anything else can run.
    this.freshSnapshot();
    const shared = this.db.getBinaryFast(key);
    if (shared === undefined) return undefined;
    const length = shared.length;
    const out = alloc(length);
    if (out.length !== length) throw new RangeError(`alloc(${length}) returned ${out.length} bytes`);
    out.set(new Uint8Array(shared.buffer, shared.byteOffset, length));
    return out;
  }

  /**
   * See {@link KvStore.put}. The value is handed to LMDB's write thread without a copy: the
   * caller must not modify it until the returned promise settles (as with `fs.write`).
   */
  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    this.checkSize(key, value);
    this.ensureOpen();
    const version = newVersion();
    let ok: boolean;
    switch (condition.kind) {
      case 'none':
        ok = await this.write(this.db.put(key, value, version));
        break;
      case 'ifAbsent':
        ok = await this.write(this.db.ifNoExists(key, () => void this.db.put(key, value, version)));
        break;
      case 'ifVersion': {
        const expected = decodeVersion(condition.version);
        if (expected === undefined) return { ok: false };
        ok = await this.write(this.db.put(key, value, version, expected));
        break;
      }
    }
    return ok ? { ok: true, version: encodeVersion(version) } : { ok: false };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    this.ensureOpen();
    switch (condition.kind) {
      case 'none':
        // IF_EXISTS makes the removal report whether there was a record.
        return this.write(this.db.remove(key, IF_EXISTS));
      case 'ifAbsent':
        return false;
      case 'ifVersion': {
        const expected = decodeVersion(condition.version);
        if (expected === undefined) return false;
        return this.write(this.db.remove(key, expected));
      }
    }
  }

  /** See {@link KvStore.commit}; values are not copied, as with {@link LmdbStore.put}. */
  async commit(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<boolean> {
    return (await this.commitVersioned(ops, checks)) !== undefined;
  }

  /** See {@link KvStore.commitVersioned}: versions are chosen here, before the write. */
  async commitVersioned(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<(Version | undefined)[] | undefined> {
    const taken = await this.commitAhead(ops, checks);
    return (await taken.applied) ? [...taken.versions] : undefined;
  }

  /**
   * See {@link KvStore.commitAhead}. lmdb-js applies writes in the order they are given, on its
   * write thread, and settles them only after the disk flush that follows.
   */
  async commitAhead(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<TakenCommit> {
    if (ops.length + checks.length > MAX_COMMIT_OPS) {
      throw new RangeError(`commit of ${ops.length + checks.length} ops and checks exceeds maxCommitOps ${MAX_COMMIT_OPS}`);
    }
    const written = new Set<string>();
    for (const op of ops) {
      if (written.has(op.key)) throw new RangeError(`commit writes key ${op.key} twice`);
      written.add(op.key);
      if (op.value) this.checkSize(op.key, op.value);
    }
    this.ensureOpen();
    const versions = ops.map(() => newVersion());
    const encoded = ops.map((op, i) => (op.value ? encodeVersion(versions[i]) : undefined));
    const guards = commitGuards(ops, checks);
    if (guards === undefined) return { versions: encoded, applied: Promise.resolve(false) };

    const applyOps = (): void => {
      ops.forEach((op, i) => {
        // Inside a block these calls only queue instructions; the block's promise reports.
        if (op.value) void this.db.put(op.key, op.value, versions[i]);
        else void this.db.remove(op.key);
      });
    };
    const blocks: Promise<boolean>[] = [];
    const nest = (depth: number): void => {
      if (depth === guards.length) return applyOps();
      const { key, version } = guards[depth];
      const inner = () => nest(depth + 1);
      blocks.push(version === null ? this.db.ifNoExists(key, inner) : this.db.ifVersion(key, version, inner));
    };
    if (guards.length === 0) blocks.push(this.db.batch(applyOps));
    else nest(0);
    const applied = this.write(Promise.all(blocks)).then((results) => results.every(Boolean));
    return { versions: encoded, applied };
  }

  /**
   * See {@link KvStore.otherProcessesAttached}: from LMDB's reader table, where every process
   * that has read the store holds a slot. Slots of processes that died are cleared first.
   */
  otherProcessesAttached(): boolean {
    this.ensureOpen();
    const now = Date.now();
    // Asked once per operation: the table is read again only after a few milliseconds.
    if (now - this.attachedAt < ATTACHED_FRESH_MS) return this.attached;
    this.attachedAt = now;
    this.attached = this.othersInReaderTable();
    if (this.attached && now - this.readerCheckAt >= READER_CHECK_EVERY_MS) {
      this.readerCheckAt = now;
      this.db.readerCheck();
      this.attached = this.othersInReaderTable();
    }
    return this.attached;
  }

  /**
   * lmdb-js keeps one read snapshot until a zero-delay timer renews it: a read a moment after
   * another process committed could miss that commit (close-to-open between mounts). With
   * another process attached, every read starts from the latest commit.
   */
  private freshSnapshot(): void {
    if (this.otherProcessesAttached()) this.db.resetReadTxn();
  }

  private othersInReaderTable(): boolean {
    const own = String(process.pid);
    // Lines of "pid thread txnid" after a heading line.
    for (const line of this.db.readerList().split('\n').slice(1)) {
      const pid = line.trim().split(/\s+/)[0];
      if (pid && pid !== own) return true;
    }
    return false;
  }

  async *scan(prefix: string): AsyncIterable<string> {
    this.ensureOpen();
    let listed = 0;
    // snapshot: false lets the read transaction move on between batches of a long scan.
    for (const key of this.db.getKeys({ start: prefix, snapshot: false })) {
      if (typeof key !== 'string' || !key.startsWith(prefix)) return;
      yield key;
      if (++listed % SCAN_YIELD_EVERY === 0) await nextTurn();
    }
  }

  async sync(): Promise<void> {
    this.ensureOpen();
    await this.write(Promise.resolve(this.db.flushed));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // lmdb-js resets its read transaction on a zero-delay timer after each read; closing first
    // makes that timer throw "Attempt to reset an invalid read txn" and kill the process.
    await sleep(1);
    // After a failed commit lmdb-js never settles `flushed` nor close(): bound both waits.
    await settleWithin(Promise.resolve(this.db.flushed).catch(() => undefined), CLOSE_FLUSH_WAIT_MS, () => undefined);
    await settleWithin(this.db.close().catch(() => undefined), CLOSE_FLUSH_WAIT_MS, () => undefined);
  }

  private read(key: string): VersionedValue | undefined {
    this.freshSnapshot();
    const entry = this.db.getEntry(key);
    if (entry === undefined) return undefined;
    if (typeof entry.version !== 'number' || !(entry.value instanceof Uint8Array)) {
      throw new IntegrityError(
        `record ${key} in the LMDB store at ${this.path} has no version or no binary value; ` +
          'the directory was written by something other than voldfs',
      );
    }
    return { value: entry.value, version: encodeVersion(entry.version) };
  }

  /** Awaits a write, turning lmdb-js failures into StoreFull / StoreUnavailable. */
  /**
   * Waits for a write. With overlapped syncing, lmdb-js never settles a commit that failed to
   * reach a full disk: a watchdog looks at the free space while a write is pending and gives
   * StoreFull instead of hanging.
   */
  private async write<T>(pending: Promise<T>): Promise<T> {
    const minFree = 2 * LMDB_MAX_VALUE_BYTES;
    let timer: NodeJS.Timeout | undefined;
    const watchdog = new Promise<never>((_, reject) => {
      const look = () => {
        freeBytes(this.path).then(
          (free) => {
            if (free < minFree) reject(new Error(`No space left on the filesystem (${free} bytes free)`));
            else timer = setTimeout(look, WRITE_WATCH_MS);
          },
          reject,
        );
      };
      timer = setTimeout(look, WRITE_WATCH_MS);
    });
    try {
      return await Promise.race([pending, watchdog]);
    } catch (err) {
      throw await writeFailure(this.path, err, minFree);
    } finally {
      clearTimeout(timer);
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreUnavailable(`the LMDB store at ${this.path} is closed; open it again`);
  }

  private checkSize(key: string, value: Buffer): void {
    if (value.length > LMDB_MAX_VALUE_BYTES) throw new ValueTooLarge(key, value.length, LMDB_MAX_VALUE_BYTES);
  }
}

/**
 * Every condition the commit must verify, checks first; `undefined` when a version token is not
 * one of ours, so the commit cannot succeed.
 */
function commitGuards(ops: readonly CommitOp[], checks: readonly CommitCheck[]): Guard[] | undefined {
  const guards: Guard[] = [];
  for (const check of checks) {
    const version = check.version === null ? null : decodeVersion(check.version);
    if (version === undefined) return undefined;
    guards.push({ key: check.key, version });
  }
  for (const op of ops) {
    if (op.condition.kind === 'ifAbsent') guards.push({ key: op.key, version: null });
    if (op.condition.kind === 'ifVersion') {
      const version = decodeVersion(op.condition.version);
      if (version === undefined) return undefined;
      guards.push({ key: op.key, version });
    }
  }
  return guards;
}
