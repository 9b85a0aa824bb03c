/** The errno names the filesystem layers may raise; src/fs maps them to numbers in one place. */
export type ErrnoCode =
  | 'EPERM' | 'ENOENT' | 'EIO' | 'EBADF' | 'EACCES' | 'EEXIST' | 'EXDEV' | 'ENOTDIR'
  | 'EISDIR' | 'EINVAL' | 'EFBIG' | 'ENOSPC' | 'EROFS' | 'EMLINK' | 'ERANGE' | 'ENAMETOOLONG'
  | 'ENOSYS' | 'ENOTEMPTY' | 'ELOOP' | 'ENODATA' | 'ENOTSUP' | 'E2BIG' | 'ETIMEDOUT' | 'EBUSY'
  | 'EOPNOTSUPP' | 'ENODEV' | 'ENXIO';

/**
 * An expected filesystem error, thrown by src/inode and src/chunk and turned into `-errno` by
 * src/fs. Anything else reaching a handler is unexpected: logged with its stack, answered EIO.
 */
export class FsError extends Error {
  constructor(
    readonly code: ErrnoCode,
    message?: string,
  ) {
    super(message ?? code);
    this.name = 'FsError';
  }
}
