import { constants } from 'node:os';
import type { LowLevelOps } from 'fuse-native/lowlevel';
import type { Logger } from 'pino';
import { copyRange } from '../inode/copy-range.js';
import type { FileSystem } from '../inode/filesystem.js';
import { serveRequest } from './serve-request.js';

const errno = constants.errno as Record<string, number>;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/** fallocate, lseek (SEEK_DATA / SEEK_HOLE) and copy_file_range, added to the handlers. */
export function withDataOperations(ops: LowLevelOps, fs: FileSystem, log: Logger): LowLevelOps {
  return {
    ...ops,
    fallocate(req, ino, mode, offset, length) {
      const i = Number(ino);
      serveRequest(req, log, 'fallocate', i, async () => {
        await fs.space.fallocate(i, mode, offset, length);
        req.replyOk();
      });
    },
    lseek(req, ino, offset, whence) {
      const i = Number(ino);
      serveRequest(req, log, 'lseek', i, async () => {
        // SEEK_SET/CUR/END never come here: the kernel answers them.
        if (whence === SEEK_DATA) return req.replyLseek(await fs.space.seekData(i, offset));
        if (whence === SEEK_HOLE) return req.replyLseek(await fs.space.seekHole(i, offset));
        req.replyErr(errno.EINVAL);
      });
    },
    copyFileRange(req, inoIn, offIn, fhIn, inoOut, offOut, fhOut, length, flags) {
      serveRequest(req, log, 'copy_file_range', Number(inoOut), async () => {
        const copied = await copyRange(fs.files, fs.volume.data.chunkSize, { fh: fhIn, offset: offIn }, { fh: fhOut, offset: offOut }, length, flags);
        req.replyWrite(copied);
      });
    },
  };
}
