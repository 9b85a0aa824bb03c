import { type ByteOffset, plus } from '../../chunk/byte-offset.js';
import type { FileSystem } from '../../inode/filesystem.js';
import { ROOT_INO, S_IFDIR, S_IFMT } from '../../inode/records.js';
import type { Timespec } from '../../inode/timespec.js';
import type { TransferProgress } from './dump.js';
import { ExtentHash, dataPieces } from './extents.js';
import { DumpFormatError, type DumpEntry } from './frames.js';

const O_RDWR = 2;

type WithAttributes = Extract<DumpEntry, { t: 'dir' | 'file' | 'symlink' | 'node' }>;

export class LoadRefused extends Error {}

/**
 * Loads the entries of a dump (open-dump.ts) into the empty volume behind `fs`, checking every
 * file as it goes: the data written is read back and must hash as the dump says. Directory
 * times are set last, since filling a directory changes them.
 * @throws LoadRefused when the volume is not empty; DumpFormatError for a bad stream, or a
 *   file that does not read back as dumped
 */
export async function loadVolume(fs: FileSystem, entries: AsyncIterable<DumpEntry>, progress: TransferProgress): Promise<{ entries: number; bytes: number }> {
  if ((await fs.readdir(ROOT_INO)).length > 0) throw new LoadRefused('load needs an empty volume, and this one has files: use another volume name, or mkfs --force');
  const inos = new Map<number, number>();
  const directoryTimes: [number, Timespec, Timespec][] = [];
  const done = { entries: 0, bytes: 0 };
  let total: { entries: number; bytes: number } | undefined;
  let file: { ino: number; fh: number; size: ByteOffset; end: ByteOffset; hash: ExtentHash; entry: WithAttributes } | undefined;
  let ended = false;

  const parentOf = (id: number | undefined): number => {
    const ino = id === undefined ? undefined : inos.get(id);
    if (ino === undefined) throw new DumpFormatError(`the dump names directory ${id} before it holds it`);
    return ino;
  };
  const finishAttributes = async (ino: number, e: WithAttributes) => {
    for (const [name, value] of Object.entries(e.xattrs ?? {})) await fs.attributes.setxattr(ino, name, Buffer.from(value), 0);
    await fs.attributes.chown(ino, e.uid, e.gid);
    if ((e.mode & S_IFMT) !== 0o120000) await fs.attributes.chmod(ino, e.mode & 0o7777);
    if ((e.mode & S_IFMT) === S_IFDIR) directoryTimes.push([ino, e.atime, e.mtime]);
    else await fs.attributes.utimens(ino, e.atime, e.mtime);
  };

  for await (const entry of entries) {
    if (file && entry.t !== 'data' && entry.t !== 'end') throw new DumpFormatError(`file ${file.entry.name} ends without its checksum`);
    const caller = 'uid' in entry ? { uid: entry.uid, gid: entry.gid } : { uid: 0, gid: 0 };
    switch (entry.t) {
      case 'volume':
        total = { entries: entry.entries, bytes: entry.bytes };
        break;
      case 'dir': {
        const ino = entry.parent === undefined ? ROOT_INO : await fs.namespace.create(parentOf(entry.parent), entry.name, S_IFDIR | (entry.mode & 0o7777), caller);
        inos.set(entry.id, ino);
        await finishAttributes(ino, entry);
        break;
      }
      case 'symlink': {
        const ino = await fs.namespace.symlink(parentOf(entry.parent), entry.name, entry.target, caller);
        inos.set(entry.id, ino);
        await finishAttributes(ino, entry);
        break;
      }
      case 'node': {
        const ino = await fs.namespace.create(parentOf(entry.parent), entry.name, entry.mode, caller, { rdev: entry.rdev });
        inos.set(entry.id, ino);
        await finishAttributes(ino, entry);
        break;
      }
      case 'link': {
        const ino = inos.get(entry.of);
        if (ino === undefined) throw new DumpFormatError(`the dump links to file ${entry.of} before it holds it`);
        await fs.namespace.link(ino, parentOf(entry.parent), entry.name);
        break;
      }
      case 'file': {
        // Created open: the create commits with the file's data, in one commit.
        const ino = await fs.namespace.create(parentOf(entry.parent), entry.name, entry.mode, caller, { opened: true });
        inos.set(entry.id, ino);
        file = { ino, fh: await fs.files.open(ino, O_RDWR), size: entry.size, end: 0, hash: new ExtentHash(entry.size), entry };
        break;
      }
      case 'data':
        if (!file) throw new DumpFormatError('the dump has data outside a file');
        file.hash.add(entry.offset, Buffer.from(entry.bytes));
        await fs.files.write(file.fh, entry.offset, Buffer.from(entry.bytes));
        file.end = plus(entry.offset, entry.bytes.length);
        done.bytes += entry.bytes.length;
        progress(done, total);
        break;
      case 'end': {
        if (!file) throw new DumpFormatError('the dump ends a file it never began');
        const { ino, fh, size, hash, entry: header, end } = file;
        file = undefined;
        if (hash.digest() !== entry.sha256) throw new DumpFormatError(`file ${header.name}: its data in the dump does not match its checksum`);
        // A hole at the end has no data frame to give the size.
        if (end < size) await fs.attributes.truncate(ino, size);
        await fs.files.release(fh);
        await verify(fs, ino, size, entry.sha256, header.name);
        await finishAttributes(ino, header);
        break;
      }
      case 'trailer':
        ended = true;
        break;
    }
    if (entry.t !== 'data' && entry.t !== 'end' && entry.t !== 'volume' && entry.t !== 'trailer') done.entries++;
    if (entry.t !== 'data') progress(done, total);
  }
  if (!ended) throw new DumpFormatError('the dump is cut short');
  for (const [ino, atime, mtime] of directoryTimes.reverse()) await fs.attributes.utimens(ino, atime, mtime);
  return done;
}

/** Reads a loaded file back and checks it hashes as the dump said. */
async function verify(fs: FileSystem, ino: number, size: ByteOffset, sha256: string, name: string): Promise<void> {
  const fh = await fs.files.open(ino, 0);
  try {
    const hash = new ExtentHash(size);
    for await (const { offset, bytes } of dataPieces(fs, fh, size)) hash.add(offset, bytes);
    if (hash.digest() !== sha256) throw new DumpFormatError(`file ${name} does not read back as it was dumped: the store lost or changed its data`);
  } finally {
    await fs.files.release(fh);
  }
}
