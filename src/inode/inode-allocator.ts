import type { KvStore } from '../backends/kv-store.js';
import { IntegrityError } from '../backends/errors.js';
import { transact } from '../cas/transaction.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import { FsError } from './fs-error.js';

/** Inode numbers stay below 2^32: st_ino crosses FUSE and tools as 32 bits in places. */
const MAX_INO = 2 ** 32 - 1;

/**
 * Hands out inode numbers without coordination on the hot path: each mount claims a range of
 * numbers by one CAS on the allocator record and serves creates from it locally. Numbers of a
 * range a mount never used are simply skipped.
 */
export class InodeAllocator {
  private next = 0;
  private end = 0;
  private claiming: Promise<void> | undefined;

  constructor(
    private readonly store: KvStore,
    private readonly key: string,
    private readonly rangeSize = 1024,
  ) {}

  async allocate(): Promise<number> {
    while (this.next >= this.end) {
      this.claiming ??= this.claim().finally(() => (this.claiming = undefined));
      await this.claiming;
    }
    return this.next++;
  }

  private async claim(): Promise<void> {
    const [start, end] = await transact(this.store, undefined, async (tx) => {
      const bytes = await tx.read(this.key);
      if (!bytes) throw new IntegrityError(`allocator record ${this.key} is missing`);
      const { next } = decodeRecord<{ next: number }>(this.key, bytes);
      const upTo = Math.min(next + this.rangeSize, MAX_INO);
      if (upTo <= next) throw new FsError('ENOSPC', 'inode numbers exhausted');
      tx.write(this.key, encodeRecord({ next: upTo }));
      return [next, upTo];
    });
    this.next = start;
    this.end = end;
  }
}
