import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KvStore } from '../backends/kv-store.js';
import { IF_ABSENT } from '../backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import type { ByteOffset } from '../chunk/byte-offset.js';
import type { FileData } from '../chunk/file-data.js';
import pMap from 'p-map';
import type { BlockRef, BlockStore } from '../translators/block-store.js';
import type { VolumeKeys } from './keys.js';
import type { GarbageRecord } from './records.js';

export interface GarbageOptions {
  readonly store: KvStore;
  readonly keys: VolumeKeys;
  readonly blocks: BlockStore;
  readonly log: Logger;
  /** How long replaced blocks and deleted inodes' data stay readable, in ms. Default 30 s. */
  readonly graceMs?: number;
  /** How often retired blocks are written out as one garbage record, in ms. Default 1 s. */
  readonly batchMs?: number;
}

/**
 * Deferred deletion. Replaced blocks and the data of deleted files are not deleted at once,
 * since a reader (here or on another mount) may still hold the old chunk map: they are listed
 * in a garbage record first, so a crash forgets nothing, and deleted after the grace period by
 * this mount, or by fsck if this mount is gone by then.
 */
export class GarbageCollector {
  private pendingBlocks: BlockRef[] = [];
  /** Garbage records waiting out their grace, oldest first from `waitingHead` (one grace for all). */
  private waiting: { key: string; at: number }[] = [];
  private waitingHead = 0;
  /** One timer, for the oldest waiting record: a burst of deletes makes no timer each. */
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  private batchTimer: NodeJS.Timeout | undefined;
  private readonly graceMs: number;
  private readonly batchMs: number;
  private fileData: FileData | undefined;
  /** Keys of garbage records whose time has come, waiting for a collection slot. */
  private readonly due: string[] = [];
  private collecting = 0;
  private closed = false;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: GarbageOptions) {
    this.graceMs = options.graceMs ?? 30_000;
    this.batchMs = options.batchMs ?? 1000;
  }

  /** The data path, for deleting a dead inode's chunks. Set once the volume is assembled. */
  attach(fileData: FileData): void {
    this.fileData = fileData;
  }

  /** Blocks no chunk map points at any more. */
  retire(refs: BlockRef[]): void {
    this.pendingBlocks.push(...refs);
    this.batchTimer ??= setTimeout(() => {
      this.batchTimer = undefined;
      this.track(this.writeBatch());
    }, this.batchMs);
  }

  /** The record to stage in the same transaction that deletes an inode (nlink reached 0). */
  deadInodeRecord(ino: number, size: ByteOffset): { key: string; value: Buffer } {
    const record: GarbageRecord = { notBefore: Date.now() + this.graceMs, inodes: [{ ino, size }] };
    const key = this.options.keys.garbage(newGarbageId());
    this.schedule(key);
    return { key, value: encodeRecord(record) };
  }

  /**
   * Takes over the garbage records no mount is left to collect: a mount unmounted or killed
   * within the grace of its last deletions leaves them behind. A record is taken once it is
   * overdue by a whole grace (a writer still mounted has collected it by then); the sweep runs
   * again when the next one will be. Stores that cannot list a prefix's keys alone leave this to fsck.
   */
  sweepLeftBehind(): void {
    const { store, keys } = this.options;
    if (!store.scan || !store.capabilities.scansByRange || this.closed) return;
    const scan = store.scan.bind(store);
    this.track(
      (async () => {
        let nextSweep = Infinity;
        let swept = 0;
        // Listed first, collected after: a store's range scan may skip keys deleted under it.
        const listed: string[] = [];
        for await (const key of scan(keys.garbagePrefix())) listed.push(key);
        await pMap(
          listed,
          async (key) => {
            if (this.closed) return;
            const found = await store.get(key);
            if (!found) return;
            const takenAt = decodeRecord<GarbageRecord>(key, found.value).notBefore + this.graceMs;
            if (takenAt > Date.now()) nextSweep = Math.min(nextSweep, takenAt);
            else if (await this.collect(key)) swept++;
          },
          { concurrency: MAX_COLLECTIONS },
        );
        if (swept > 0) this.options.log.info({ records: swept }, 'collected garbage left behind by earlier mounts');
        if (nextSweep < Infinity && !this.closed) {
          this.sweepTimer = setTimeout(() => this.sweepLeftBehind(), nextSweep - Date.now() + 100);
          this.sweepTimer.unref();
        }
      })().catch((err: unknown) => this.options.log.warn({ err }, 'could not collect garbage left behind by earlier mounts; fsck --repair will')),
    );
  }

  /** Writes out what is pending; on close, deletes nothing early: fsck or a later mount will. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    await this.writeBatch();
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.waiting = [];
    this.waitingHead = 0;
    this.due.splice(0);
    await Promise.all(this.running);
  }

  /** Deletes what a garbage record lists if its time has come; returns whether it did. */
  async collect(key: string, now = Date.now()): Promise<boolean> {
    const found = await this.options.store.get(key);
    if (!found) return true;
    const record = decodeRecord<GarbageRecord>(key, found.value);
    if (record.notBefore > now) return false;
    await pMap(record.blocks ?? [], (ref) => this.options.blocks.delete(ref), { concurrency: 16 });
    for (const { ino } of record.inodes ?? []) await this.deleteInodeData(ino);
    // Another mount may have collected it meanwhile: then it is gone, and that is as good.
    if (!(await this.options.store.delete(key, { kind: 'ifVersion', version: found.version }))) return (await this.options.store.get(key)) === undefined;
    return true;
  }

  private async deleteInodeData(ino: number): Promise<void> {
    await this.fileData?.deleteAll(ino, (ref) => this.options.blocks.delete(ref));
  }

  private async writeBatch(): Promise<void> {
    while (this.pendingBlocks.length > 0) {
      // One record per batch of blocks, so that a burst of replaced blocks never makes a record
      // larger than the store takes.
      const blocks = this.pendingBlocks.splice(0, MAX_BLOCKS_PER_RECORD);
      const key = this.options.keys.garbage(newGarbageId());
      const record: GarbageRecord = { notBefore: Date.now() + this.graceMs, blocks };
      try {
        await this.options.store.put(key, encodeRecord(record), IF_ABSENT);
        this.schedule(key);
      } catch (err) {
        this.options.log.warn({ err, blocks: blocks.length }, 'could not record replaced blocks; fsck will find them');
      }
    }
  }

  private schedule(key: string): void {
    this.waiting.push({ key, at: Date.now() + this.graceMs + 100 });
    this.armGrace();
  }

  /** Sets the timer for the oldest waiting record, unless it is set. */
  private armGrace(): void {
    if (this.graceTimer || this.waitingHead >= this.waiting.length) return;
    const delay = Math.max(0, this.waiting[this.waitingHead].at - Date.now());
    this.graceTimer = setTimeout(() => {
      this.graceTimer = undefined;
      const now = Date.now();
      while (this.waitingHead < this.waiting.length && this.waiting[this.waitingHead].at <= now) {
        this.due.push(this.waiting[this.waitingHead++].key);
      }
      // Drop the entries handed on once they are most of the array.
      if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.waitingHead);
        this.waitingHead = 0;
      }
      this.collectDue();
      this.armGrace();
    }, delay);
    this.graceTimer.unref();
  }

  /** Collects due records, a few at a time: thousands of files deleted together come due together. */
  private collectDue(): void {
    while (this.collecting < MAX_COLLECTIONS && this.due.length > 0) {
      const key = this.due.shift() as string;
      this.collecting++;
      this.track(
        this.collect(key)
          .then(
            () => undefined,
            (err: unknown) => this.options.log.warn({ err, key }, 'garbage collection failed; fsck will retry'),
          )
          .finally(() => {
            this.collecting--;
            this.collectDue();
          }),
      );
    }
  }

  private track(job: Promise<void>): void {
    this.running.add(job);
    void job.finally(() => this.running.delete(job));
  }
}

/** Blocks listed by one garbage record: a few hundred KiB at most, with erasure placements. */
export const MAX_BLOCKS_PER_RECORD = 2048;
/** Garbage records collected at once. */
const MAX_COLLECTIONS = 4;

function newGarbageId(): string {
  return `${Date.now().toString(36)}.${randomBytes(6).toString('base64url')}`;
}
