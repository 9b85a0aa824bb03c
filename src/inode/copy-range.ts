import { type ByteOffset, MAX_FILE_SIZE, inChunk, plus } from '../chunk/byte-offset.js';
import { FsError } from './fs-error.js';
import type { OpenFiles } from './open-files.js';

/**
 * Bytes one copy_file_range call moves at most, as Linux's read and write (MAX_RW_COUNT): the
 * caller repeats for the rest, and a length near 2^63 costs no more than this per call.
 */
export const MAX_COPY_BYTES = 0x7ffff000;

/**
 * copy_file_range(2) between two open files of this mount: the bytes go from the source's
 * chunks (or its write buffer) into the destination's write buffer, one chunk at a time,
 * without passing through the kernel. Blocks are copied, not shared: a block belongs to one
 * chunk map, which retires it when the chunk is rewritten.
 * @returns the bytes copied: fewer than `length` when the source ends first, or past
 *   {@link MAX_COPY_BYTES}
 * @throws FsError EINVAL for flags other than 0, EBADF for a handle not open for reading or
 *   writing, EFBIG past the largest file
 */
export async function copyRange(
  files: OpenFiles,
  chunkSize: number,
  from: { fh: number; offset: ByteOffset },
  to: { fh: number; offset: ByteOffset },
  requested: ByteOffset,
  flags: number,
): Promise<number> {
  if (flags !== 0) throw new FsError('EINVAL', 'copy_file_range takes no flags');
  if (from.offset < 0 || to.offset < 0 || requested < 0) throw new FsError('EINVAL');
  const length = Number(requested < MAX_COPY_BYTES ? requested : MAX_COPY_BYTES);
  if (plus(to.offset, length) > MAX_FILE_SIZE) throw new FsError('EFBIG');
  const buf = Buffer.alloc(Math.min(length, chunkSize));
  let copied = 0;
  while (copied < length) {
    // Pieces end on the destination's chunk boundaries, so its buffer stores whole chunks.
    const at = plus(to.offset, copied);
    const want = Math.min(length - copied, chunkSize - inChunk(at, chunkSize));
    const got = await files.read(from.fh, plus(from.offset, copied), want, buf);
    if (got === 0) break;
    await files.write(to.fh, at, buf.subarray(0, got));
    copied += got;
    if (got < want) break;
  }
  return copied;
}
