import { FsError } from './fs-error.js';
import { MAX_FILE_SIZE, type OpenFiles } from './open-files.js';

/**
 * copy_file_range(2) between two open files of this mount: the bytes go from the source's
 * chunks (or its write buffer) into the destination's write buffer, one chunk at a time,
 * without passing through the kernel. Blocks are copied, not shared: a block belongs to one
 * chunk map, which retires it when the chunk is rewritten.
 * @returns the bytes copied: fewer than `length` when the source ends first
 * @throws FsError EINVAL for flags other than 0, EBADF for a handle not open for reading or
 *   writing, EFBIG past the largest file
 */
export async function copyRange(
  files: OpenFiles,
  chunkSize: number,
  from: { fh: number; offset: number },
  to: { fh: number; offset: number },
  length: number,
  flags: number,
): Promise<number> {
  if (flags !== 0) throw new FsError('EINVAL', 'copy_file_range takes no flags');
  if (from.offset < 0 || to.offset < 0) throw new FsError('EINVAL');
  if (to.offset + length > MAX_FILE_SIZE) throw new FsError('EFBIG');
  const buf = Buffer.alloc(Math.min(length, chunkSize));
  let copied = 0;
  while (copied < length) {
    // Pieces end on the destination's chunk boundaries, so its buffer stores whole chunks.
    const at = to.offset + copied;
    const want = Math.min(length - copied, chunkSize - (at % chunkSize));
    const got = await files.read(from.fh, from.offset + copied, want, buf);
    if (got === 0) break;
    await files.write(to.fh, at, buf.subarray(0, got));
    copied += got;
    if (got < want) break;
  }
  return copied;
}
