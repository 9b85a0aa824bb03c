import { createHash, type Hash } from 'node:crypto';
import { type ByteOffset, inChunk, minus, plus, sameOffset, smaller } from '../../chunk/byte-offset.js';
import type { FileSystem } from '../../inode/filesystem.js';
import { FsError } from '../../inode/fs-error.js';

/** Bytes read at a time. */
const PIECE_BYTES = 1024 * 1024;

/** Blocks the checksum is taken over. */
const BLOCK = 4096;
const ZEROS = Buffer.alloc(BLOCK);

/**
 * The SHA-256 a dump gives a file: its size and every 4 KiB block that is not all zeros, with
 * its offset. Holes and zeros count the same, and so do the pieces the data came in, so a
 * file reads back to the same checksum on a store with other chunk sizes. Pieces must come in
 * increasing offset order.
 */
export class ExtentHash {
  private readonly hash: Hash = createHash('sha256');
  private readonly block = Buffer.alloc(BLOCK);
  private blockStart: ByteOffset = -1;

  constructor(private readonly size: ByteOffset) {}

  add(offset: ByteOffset, bytes: Buffer): void {
    for (let done = 0; done < bytes.length; ) {
      const at = plus(offset, done);
      const within = inChunk(at, BLOCK);
      const start = minus(at, within);
      if (!sameOffset(start, this.blockStart)) {
        this.emit();
        this.blockStart = start;
      }
      const n = Math.min(bytes.length - done, BLOCK - within);
      bytes.copy(this.block, within, done, done + n);
      done += n;
    }
  }

  digest(): string {
    this.emit();
    this.hash.update(`size ${this.size}\n`);
    return this.hash.digest('hex');
  }

  private emit(): void {
    if (this.blockStart >= 0 && !this.block.equals(ZEROS)) {
      this.hash.update(`${this.blockStart}\n`);
      this.hash.update(this.block);
    }
    this.block.fill(0);
    this.blockStart = -1;
  }
}

/**
 * The data of open file `fh` of `size` bytes, piece by piece, skipping holes: work in
 * proportion to the data stored, not to the size (a sparse file of exabytes is a few pieces).
 */
export async function* dataPieces(fs: FileSystem, fh: number, size: ByteOffset): AsyncGenerator<{ offset: ByteOffset; bytes: Buffer }> {
  let at: ByteOffset = 0;
  while (at < size) {
    const start = await seek(fs, fh, at, 'data');
    if (start === undefined || start >= size) return;
    const end = smaller(size, (await seek(fs, fh, start, 'hole')) ?? size);
    for (let offset = start; offset < end; ) {
      const buf = Buffer.allocUnsafe(Number(smaller(PIECE_BYTES, minus(end, offset))));
      const n = await fs.files.read(fh, offset, buf.length, buf);
      if (n <= 0) return;
      yield { offset, bytes: buf.subarray(0, n) };
      offset = plus(offset, n);
    }
    at = end;
  }
}

async function seek(fs: FileSystem, fh: number, offset: ByteOffset, what: 'data' | 'hole'): Promise<ByteOffset | undefined> {
  try {
    return await fs.files.seek(fh, offset, what);
  } catch (err) {
    if (err instanceof FsError && err.code === 'ENXIO') return undefined;
    throw err;
  }
}
