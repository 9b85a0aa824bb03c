import { Attributes } from './attributes.js';
import { FileSpace } from './file-space.js';
import { FsError } from './fs-error.js';
import { InodeTable } from './inode-table.js';
import { LockTable } from './locks/lock-table.js';
import { Namespace, type Caller } from './namespace.js';
import { OpenFiles } from './open-files.js';
import { ROOT_INO, S_IFDIR, isDir, type DirEntry, type InodeRecord } from './records.js';
import type { Volume } from './volume.js';
import type { ListingPage } from './directory-tree.js';

/** statfs figures: a store has no fixed capacity, so voldfs reports a large, constant one. */
export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/**
 * The filesystem by inode: hands each operation to the part that owns it (Namespace,
 * Attributes, OpenFiles). The path helpers (resolve, resolveParent, mkdir) serve scripts and
 * tests that work on a volume without mounting it; FUSE requests name inodes.
 */
export class FileSystem {
  readonly namespace: Namespace;
  readonly attributes: Attributes;
  readonly files: OpenFiles;
  /** fallocate and lseek's data and holes. */
  readonly space: FileSpace;
  /** flock and fcntl locks, shared with every mount of the volume. */
  readonly locks: LockTable;
  private readonly inodes: InodeTable;

  /**
   * @param syncStore makes completed store writes durable (fsync); default: nothing to do,
   *   for stores whose writes are durable when they complete
   * @param lockLeaseMs how long this mount's locks outlive it if it dies (LockTable's default)
   */
  constructor(
    readonly volume: Volume,
    private readonly syncStore: () => Promise<void> = async () => undefined,
    lockLeaseMs?: number,
  ) {
    this.inodes = new InodeTable(volume.keys, volume.loss);
    this.files = new OpenFiles(volume, this.inodes, (ino) => this.reapIfUnlinked(ino));
    this.namespace = new Namespace(volume, this.inodes, (ino) => this.files.isOpen(ino));
    this.attributes = new Attributes(volume, this.inodes, this.files);
    this.space = new FileSpace(volume, this.files, this.attributes);
    this.locks = new LockTable({ store: volume.store, keys: volume.keys, log: volume.log, leaseMs: lockLeaseMs });
  }

  /** The inode a path names. @throws FsError ENOENT, ENOTDIR */
  async resolve(path: string): Promise<number> {
    let ino = ROOT_INO;
    for (const name of components(path)) {
      const entry = await this.namespace.lookup(ino, name);
      if (!entry) throw new FsError('ENOENT');
      ino = entry[0];
    }
    return ino;
  }

  /** The parent directory's inode and the last component. */
  async resolveParent(path: string): Promise<[number, string]> {
    const parts = components(path);
    const name = parts.pop();
    if (name === undefined) throw new FsError('EBUSY', 'the root has no parent');
    let ino = ROOT_INO;
    for (const part of parts) {
      const entry = await this.namespace.lookup(ino, part);
      if (!entry) throw new FsError('ENOENT');
      ino = entry[0];
    }
    return [ino, name];
  }

  async readdir(ino: number): Promise<[string, DirEntry][]> {
    const record = await this.attributes.stat(ino);
    if (!isDir(record.mode)) throw new FsError('ENOTDIR');
    // Through the volume's store view: names answered but not committed yet are listed too.
    return this.volume.dirs.list(this.volume.store, ino);
  }

  /** A stretch of directory `ino`'s listing from position `from` on (see {@link DirectoryTree.listPage}). */
  listPage(ino: number, from: number, wanted: number): Promise<ListingPage> {
    return this.volume.dirs.listPage(this.volume.store, ino, from, wanted);
  }

  statfs(): StatFs {
    const blocks = 2 ** 40 / 4096; // 1 PiB in 4 KiB blocks... of which all free
    return {
      bsize: 4096,
      frsize: 4096,
      blocks,
      bfree: blocks,
      bavail: blocks,
      files: 2 ** 32 - 1,
      ffree: 2 ** 31,
      favail: 2 ** 31,
      namemax: 255,
    };
  }

  /** mkdir by path (scripts, tests). */
  async mkdir(path: string, mode: number, caller: Caller): Promise<number> {
    const [parent, name] = await this.resolveParent(path);
    return this.namespace.create(parent, name, S_IFDIR | (mode & 0o7777), caller);
  }

  /** fsync(2): the file's data and attributes persisted, and the store's writes durable. */
  async fsync(fh: number): Promise<void> {
    await this.files.flush(fh);
    await this.volume.commits.settle();
    await this.syncStore();
    const lost = this.volume.commits.takeLostUpdate();
    if (lost !== undefined) throw new FsError('EIO', 'an earlier change of this mount could not be committed (see the log)');
  }

  /** Persists everything and stops background work (unmount). */
  async close(): Promise<void> {
    await this.locks.close();
    await this.files.persistAll();
    await this.volume.close();
    await this.syncStore();
  }

  /** Deletes an inode whose names all went while it was open, once the last handle closes. */
  private async reapIfUnlinked(ino: number): Promise<void> {
    await this.volume.transact(async (tx) => {
      const record: InodeRecord | undefined = await this.inodes.find(tx, ino);
      if (!record || record.nlink > 0 || this.files.isOpen(ino)) return;
      this.inodes.remove(tx, ino);
      const garbage = this.volume.garbage.deadInodeRecord(ino, record.size);
      tx.create(garbage.key, garbage.value);
    });
  }
}

function components(path: string): string[] {
  return path.split('/').filter((p) => p.length > 0);
}
