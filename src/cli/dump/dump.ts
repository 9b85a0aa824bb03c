import type { Writable } from 'node:stream';
import type { FileSystem } from '../../inode/filesystem.js';
import { ROOT_INO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type InodeRecord } from '../../inode/records.js';
import { ExtentHash, dataPieces } from './extents.js';
import { FrameWriter } from './frames.js';
import type { FrameCipher, SealedHeader } from './sealing.js';

const O_RDONLY = 0;

/** How far a dump or load has come: entries and file bytes, of the totals when known. */
export interface TransferProgress {
  (done: { entries: number; bytes: number }, total?: { entries: number; bytes: number }): void;
}

/** Counts what a dump will hold, for its header and the progress bar: one walk of stats. */
async function measure(fs: FileSystem): Promise<{ entries: number; bytes: number }> {
  let entries = 1;
  let bytes = 0;
  const dirs = [ROOT_INO];
  while (dirs.length > 0) {
    for (const [, [ino, type]] of await fs.readdir(dirs.pop()!)) {
      entries++;
      if (type === S_IFDIR) dirs.push(ino);
      else if (type === S_IFREG) bytes += Number((await fs.attributes.stat(ino)).size);
    }
  }
  return { entries, bytes };
}

const common = (id: number, parent: number | undefined, name: string, r: InodeRecord) => ({
  id,
  ...(parent === undefined ? {} : { parent }),
  name,
  mode: r.mode,
  uid: r.uid,
  gid: r.gid,
  atime: r.atime,
  mtime: r.mtime,
  ...(r.xattrs && Object.keys(r.xattrs).length > 0 ? { xattrs: r.xattrs } : {}),
});

/**
 * Writes the whole volume behind `fs` to `out` as a dump stream (frames.ts): the tree with
 * every attribute, xattr and hard link, and file data without its holes. Ids in the stream
 * are the volume's inode numbers.
 * @param sealed makes a ciphertext dump (sealing.ts newSealedDump); absent, plaintext
 */
export async function dumpVolume(
  fs: FileSystem,
  out: Writable,
  volume: { name: string; translators: string },
  progress: TransferProgress,
  sealed?: { header: SealedHeader; cipher: FrameCipher },
): Promise<{ entries: number; bytes: number }> {
  const total = await measure(fs);
  const writer = new FrameWriter(out, sealed);
  await writer.start();
  await writer.write({ t: 'volume', ...volume, ...total });
  const done = { entries: 0, bytes: 0 };
  const seen = new Set<number>();
  const visit = async (ino: number, parent: number | undefined, name: string): Promise<number | undefined> => {
    const r = await fs.attributes.stat(ino);
    done.entries++;
    const type = r.mode & S_IFMT;
    if (type === S_IFDIR) {
      await writer.write({ t: 'dir', ...common(ino, parent, name, r) });
      return ino;
    }
    if (seen.has(ino)) {
      await writer.write({ t: 'link', of: ino, parent: parent!, name });
      return undefined;
    }
    if (r.nlink > 1) seen.add(ino);
    if (type === S_IFLNK) await writer.write({ t: 'symlink', ...common(ino, parent, name, r), target: r.target ?? '' });
    else if (type !== S_IFREG) await writer.write({ t: 'node', ...common(ino, parent, name, r), rdev: r.rdev });
    else {
      await writer.write({ t: 'file', ...common(ino, parent, name, r), size: r.size });
      const hash = new ExtentHash(r.size);
      const fh = await fs.files.open(ino, O_RDONLY);
      try {
        for await (const { offset, bytes } of dataPieces(fs, fh, r.size)) {
          hash.add(offset, bytes);
          await writer.write({ t: 'data', offset, bytes });
          done.bytes += bytes.length;
          progress(done, total);
        }
      } finally {
        await fs.files.release(fh);
      }
      await writer.write({ t: 'end', sha256: hash.digest() });
    }
    progress(done, total);
    return undefined;
  };
  // Depth first, a directory before what it holds.
  const stack: [number, number | undefined, string][] = [[ROOT_INO, undefined, '']];
  while (stack.length > 0) {
    const [ino, parent, name] = stack.pop()!;
    const dir = await visit(ino, parent, name);
    if (dir === undefined) continue;
    const children = await fs.readdir(dir);
    for (let i = children.length - 1; i >= 0; i--) stack.push([children[i][1][0], dir, children[i][0]]);
  }
  await writer.finish(done.entries, done.bytes);
  return done;
}
