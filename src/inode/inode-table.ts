import type { Transaction } from '../cas/transaction.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import { FsError } from './fs-error.js';
import type { VolumeKeys } from './keys.js';
import type { LossDetector } from './loss-detector.js';
import type { InodeRecord } from './records.js';

/** Reading and staging inode records inside a transaction. */
export class InodeTable {
  constructor(
    private readonly keys: VolumeKeys,
    private readonly loss: LossDetector,
  ) {}

  /**
   * @throws FsError ENOENT when the inode record is gone (deleted by another mount);
   *   IntegrityError when the store lost it
   */
  async read(tx: Transaction, ino: number): Promise<InodeRecord> {
    const found = await this.find(tx, ino);
    if (!found) {
      await this.loss.checkMissing(this.keys.inode(ino), `inode ${ino}`);
      throw new FsError('ENOENT', `inode ${ino} has no record`);
    }
    return found;
  }

  async find(tx: Transaction, ino: number): Promise<InodeRecord | undefined> {
    const key = this.keys.inode(ino);
    const bytes = await tx.read(key);
    return bytes ? decodeRecord<InodeRecord>(key, bytes) : undefined;
  }

  write(tx: Transaction, ino: number, record: InodeRecord): void {
    tx.write(this.keys.inode(ino), encodeRecord(record));
  }

  create(tx: Transaction, ino: number, record: InodeRecord): void {
    tx.create(this.keys.inode(ino), encodeRecord(record));
  }

  remove(tx: Transaction, ino: number): void {
    tx.remove(this.keys.inode(ino));
  }
}
