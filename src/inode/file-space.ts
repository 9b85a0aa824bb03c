import pMap from 'p-map';
import { type ByteOffset, MAX_FILE_SIZE, chunkAt, inChunk, minus, plus, smaller } from '../chunk/byte-offset.js';
import { UTIME_NOW, UTIME_OMIT, type Attributes } from './attributes.js';
import { FsError } from './fs-error.js';
import type { OpenFiles } from './open-files.js';
import { isDir, isReg } from './records.js';
import type { Volume } from './volume.js';

export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

/**
 * The space of a file as fallocate(2) and lseek(2) see it. A store has no capacity to reserve,
 * so preallocation only sets the size; punching and zeroing drop the chunks wholly inside the
 * range (they read as zeros) and rewrite the partial ones.
 */
export class FileSpace {
  constructor(
    private readonly volume: Volume,
    private readonly open: OpenFiles,
    private readonly attributes: Attributes,
  ) {}

  /**
   * fallocate(2): mode 0 (size grows to offset + length), FALLOC_FL_KEEP_SIZE,
   * FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE (with or without KEEP_SIZE).
   * @throws FsError EOPNOTSUPP for any other mode, EINVAL for a negative offset or an empty
   *   range, EFBIG past the largest file, EISDIR / ENODEV for directories and special files
   */
  async fallocate(ino: number, mode: number, offset: ByteOffset, length: ByteOffset): Promise<void> {
    const known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
    if (mode & ~known) throw new FsError('EOPNOTSUPP', `fallocate mode 0x${mode.toString(16)} is not supported`);
    const punch = (mode & FALLOC_FL_PUNCH_HOLE) !== 0;
    const zero = (mode & FALLOC_FL_ZERO_RANGE) !== 0;
    const keepSize = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
    if ((punch && !keepSize) || (punch && zero)) throw new FsError('EOPNOTSUPP', 'a hole is punched with FALLOC_FL_KEEP_SIZE alone');
    if (offset < 0 || length <= 0) throw new FsError('EINVAL');
    const end = plus(offset, length);
    if (end > MAX_FILE_SIZE) throw new FsError('EFBIG');
    await this.open.persistIno(ino);
    const record = await this.attributes.stat(ino);
    if (isDir(record.mode)) throw new FsError('EISDIR');
    if (!isReg(record.mode)) throw new FsError('ENODEV');
    if (punch || zero) {
      await this.zeroRange(ino, offset, smaller(end, record.size));
      this.open.forgetChunks(ino);
    }
    // Data first, then the size: the range past the old end is a hole, read as zeros.
    if (!keepSize && end > record.size) await this.attributes.truncate(ino, end);
    else if (punch || zero) await this.attributes.utimens(ino, { sec: 0, nsec: UTIME_OMIT }, { sec: 0, nsec: UTIME_NOW });
  }

  /**
   * Zeros [from, to): chunks wholly inside are dropped, partial ones rewritten. Costs the chunks
   * the file holds from `from`, not the length of the range.
   */
  private async zeroRange(ino: number, from: ByteOffset, to: ByteOffset): Promise<void> {
    if (from >= to) return;
    const data = this.volume.data;
    const chunkSize = data.chunkSize;
    const first = chunkAt(from, chunkSize);
    const last = chunkAt(minus(to, 1), chunkSize);
    for await (const found of data.index.presentChunks(ino, first)) {
      const present = found.filter((index) => index <= last);
      await pMap(present, async (index) => {
        const start = index === first ? inChunk(from, chunkSize) : 0;
        const stop = index === last ? inChunk(minus(to, 1), chunkSize) + 1 : chunkSize;
        if (start === 0 && stop === chunkSize) return data.dropChunk(ino, index);
        return data.rewriteChunk(ino, index, (current) => {
          // A copy: the current bytes may be a cached block that other readers share.
          const out = Buffer.from(current ?? Buffer.alloc(0));
          if (start < out.length) out.fill(0, start, Math.min(stop, out.length));
          return out;
        });
      }, { concurrency: 8 });
      if (present.length < found.length) return;
    }
  }
}
