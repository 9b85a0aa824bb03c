import { constants } from 'node:os';
import type { LowLevelOps } from 'fuse-native/lowlevel';
import { copyRange } from '../inode/copy-range.js';
import type { FileSystem } from '../inode/filesystem.js';
import type { Serve } from './serve-request.js';

const errno = constants.errno as Record<string, number>;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/** fallocate, lseek (SEEK_DATA / SEEK_HOLE) and copy_file_range, added to the handlers. */
export function withDataOperations(ops: LowLevelOps, fs: FileSystem, serve: Serve): LowLevelOps {
  return {
    ...ops,
    fallocate(req, ino, mode, offset, length) {
      const i = Number(ino);
      serve(req, 'fallocate', i, async () => {
        await fs.space.fallocate(i, mode, offset, length);
        req.replyOk();
      });
    },
    lseek(req, ino, offset, whence, fh) {
      const i = Number(ino);
      serve(req, 'lseek', i, async () => {
        // SEEK_SET/CUR/END never come here: the kernel answers them. The chunk index finds
        // data and holes in proportion to the chunks present (ENXIO past the last data).
        if (whence === SEEK_DATA) return req.replyLseek(await fs.files.seek(fh ?? 0, offset, 'data'));
        if (whence === SEEK_HOLE) return req.replyLseek(await fs.files.seek(fh ?? 0, offset, 'hole'));
        req.replyErr(errno.EINVAL);
      });
    },
    copyFileRange(req, inoIn, offIn, fhIn, inoOut, offOut, fhOut, length, flags) {
      serve(req, 'copy_file_range', Number(inoOut), async () => {
        const copied = await copyRange(fs.files, fs.volume.data.chunkSize, { fh: fhIn, offset: offIn }, { fh: fhOut, offset: offOut }, length, flags);
        req.replyWrite(copied);
      });
    },
  };
}
