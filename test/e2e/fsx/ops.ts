/**
 * fsx-style random file operations: the operation type, fast-check generators for it, and how
 * one operation is applied to a directory tree, with its result reduced to comparable data.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { chmod, link, lstat, mkdir, open, readdir, rename, rmdir, symlink, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { patternBytes } from '../posix/util.js';

/** One operation; paths are relative to the run directory. */
export type FsOp =
  | { op: 'create'; path: string; mode: number; excl: boolean }
  | { op: 'write'; path: string; offset: number; length: number; seed: number }
  | { op: 'truncate'; path: string; size: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'link'; from: string; to: string }
  | { op: 'unlink'; path: string }
  | { op: 'mkdir'; path: string; mode: number }
  | { op: 'rmdir'; path: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'read'; path: string; offset: number; length: number }
  | { op: 'lstat'; path: string }
  | { op: 'readdir'; path: string }
  | { op: 'fallocate'; path: string; mode: number; offset: number; length: number }
  | { op: 'copy'; from: string; to: string; fromOffset: number; toOffset: number; length: number };

/** Outcome of an operation: comparable data on success, the errno code on failure. */
export type OpResult = { ok: unknown } | { err: string };

const NAMES = ['a', 'b', 'c'];
/** Every path the generator uses: a small pool, so operations keep hitting the same names. */
export const PATHS: readonly string[] = [...NAMES, ...NAMES.flatMap((d) => NAMES.map((n) => `${d}/${n}`))];

const KiB = 1024;
const MiB = 1024 * KiB;
const pathArb = fc.constantFrom(...PATHS);
/** Offsets and sizes: small, next to likely block boundaries, and beyond EOF up to ~2.3 MiB. */
const offsetArb = fc.oneof(
  fc.integer({ min: 0, max: 4 * KiB }),
  fc.constantFrom(64 * KiB - 7, 128 * KiB - 3, MiB - 100, MiB, 2 * MiB + 5),
  fc.integer({ min: 0, max: 2300 * KiB }),
);
const lengthArb = fc.oneof(fc.integer({ min: 1, max: 512 }), fc.integer({ min: 1, max: 200 * KiB }));
const modeArb = fc.constantFrom(0o644, 0o600, 0o755, 0o700, 0o4755, 0o1777, 0o000);
const targetArb = fc.constantFrom(...PATHS, 'nowhere', 'a/nowhere', '.');

/**
 * Operations every sequence starts with, so that random operations meet files, directories,
 * content and links instead of mostly ENOENT.
 */
export const PRELUDE: readonly FsOp[] = [
  { op: 'mkdir', path: 'a', mode: 0o755 },
  { op: 'mkdir', path: 'c', mode: 0o755 },
  { op: 'create', path: 'b', mode: 0o644, excl: true },
  { op: 'write', path: 'b', offset: 0, length: 3000, seed: 11 },
  { op: 'create', path: 'a/a', mode: 0o644, excl: true },
  { op: 'write', path: 'a/a', offset: 100, length: 150 * KiB, seed: 12 },
  { op: 'create', path: 'c/b', mode: 0o600, excl: true },
  { op: 'symlink', target: 'a', path: 'a/c' },
];

/** fallocate modes: 0, KEEP_SIZE, PUNCH_HOLE | KEEP_SIZE, ZERO_RANGE, ZERO_RANGE | KEEP_SIZE. */
const fallocateModeArb = fc.constantFrom(0, 0x01, 0x03, 0x10, 0x11);

/** fast-check generator of one operation. */
export const opArb: fc.Arbitrary<FsOp> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('create' as const), path: pathArb, mode: modeArb, excl: fc.boolean() }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('write' as const), path: pathArb, offset: offsetArb, length: lengthArb, seed: fc.integer({ min: 1, max: 1e9 }) }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('truncate' as const), path: pathArb, size: offsetArb }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('rename' as const), from: pathArb, to: pathArb }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('link' as const), from: pathArb, to: pathArb }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('unlink' as const), path: pathArb }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('mkdir' as const), path: pathArb, mode: fc.constantFrom(0o755, 0o700, 0o1777) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('rmdir' as const), path: pathArb }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('symlink' as const), target: targetArb, path: pathArb }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('chmod' as const), path: pathArb, mode: modeArb }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('read' as const), path: pathArb, offset: offsetArb, length: lengthArb }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('lstat' as const), path: pathArb }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('readdir' as const), path: fc.constantFrom('.', ...NAMES) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant('fallocate' as const), path: pathArb, mode: fallocateModeArb, offset: offsetArb, length: lengthArb }), weight: 1 },
  {
    arbitrary: fc.record({ op: fc.constant('copy' as const), from: pathArb, to: pathArb, fromOffset: offsetArb, toOffset: offsetArb, length: lengthArb }),
    weight: 1,
  },
);

/**
 * Python for the calls Node lacks: fallocate(2) through libc and os.copy_file_range. Prints the
 * result (0, or the bytes copied) or the errno name.
 */
const SYSCALL_PY = `
import ctypes, errno, os, sys
op = sys.argv[1]
try:
    if op == 'fallocate':
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
        fd = os.open(sys.argv[2], os.O_RDWR)
        if libc.fallocate(fd, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])) != 0:
            raise OSError(ctypes.get_errno(), 'fallocate')
        print(0)
    else:
        src = os.open(sys.argv[2], os.O_RDONLY)
        dst = os.open(sys.argv[3], os.O_RDWR)
        n, off_in, off_out, total = int(sys.argv[6]), int(sys.argv[4]), int(sys.argv[5]), 0
        while total < n:
            k = os.copy_file_range(src, dst, n - total, off_in + total, off_out + total)
            if k == 0:
                break
            total += k
        print(total)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
`;

async function syscall(args: string[]): Promise<OpResult> {
  const { stdout } = await promisify(execFile)('python3', ['-c', SYSCALL_PY, ...args]);
  const out = stdout.trim();
  return /^E[A-Z]+$/.test(out) ? { err: out } : { ok: Number(out) };
}

/** A readable one-line form of an operation, for failure reports. */
export function describeOp(o: FsOp): string {
  const { op, ...rest } = o;
  const args = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'number' && k === 'mode' ? `0${v.toString(8)}` : JSON.stringify(v)}`);
  return `${op}(${args.join(', ')})`;
}

async function result(fn: () => Promise<unknown>): Promise<OpResult> {
  try {
    return { ok: await fn() };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    return { err: code };
  }
}

const digest = (b: Buffer): string => `${b.length}:${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;

/** Applies `o` below `root` and returns its comparable outcome. Errnos are results, not throws. */
export function applyOp(root: string, o: FsOp): Promise<OpResult> {
  const at = (p: string): string => join(root, p);
  switch (o.op) {
    case 'create':
      return result(async () => {
        const fh = await open(at(o.path), o.excl ? 'wx' : 'w', o.mode);
        await fh.close();
      });
    case 'write':
      return result(async () => {
        const fh = await open(at(o.path), 'r+');
        try {
          const { bytesWritten } = await fh.write(patternBytes(o.length, o.seed), 0, o.length, o.offset);
          return bytesWritten;
        } finally {
          await fh.close();
        }
      });
    case 'truncate':
      return result(() => truncate(at(o.path), o.size));
    case 'rename':
      return result(() => rename(at(o.from), at(o.to)));
    case 'link':
      return result(() => link(at(o.from), at(o.to)));
    case 'unlink':
      return result(() => unlink(at(o.path)));
    case 'mkdir':
      return result(() => mkdir(at(o.path), o.mode));
    case 'rmdir':
      return result(() => rmdir(at(o.path)));
    case 'symlink':
      return result(() => symlink(o.target, at(o.path)));
    case 'chmod':
      return result(() => chmod(at(o.path), o.mode));
    case 'read':
      return result(async () => {
        const fh = await open(at(o.path), 'r');
        try {
          const buf = Buffer.alloc(o.length);
          const { bytesRead } = await fh.read(buf, 0, o.length, o.offset);
          return digest(buf.subarray(0, bytesRead));
        } finally {
          await fh.close();
        }
      });
    case 'lstat':
      return result(async () => {
        const s = await lstat(at(o.path));
        const type = s.isFile() ? 'file' : s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : 'other';
        // Directory sizes differ between filesystems by design; everything else must match.
        return { type, mode: s.mode & 0o7777, size: type === 'dir' ? 0 : s.size, nlink: s.nlink };
      });
    case 'readdir':
      return result(async () => (await readdir(at(o.path))).sort());
    case 'fallocate':
      return syscall(['fallocate', at(o.path), String(o.mode), String(o.offset), String(o.length)]);
    case 'copy':
      return syscall(['copy', at(o.from), at(o.to), String(o.fromOffset), String(o.toOffset), String(o.length)]);
  }
}
