/**
 * Names of every record of one volume. All keys start with the volume's prefix, so several
 * volumes can share a store, and contain only numbers and random ids: never file names, so a
 * dump of the keys reveals nothing of the tree.
 */
export class VolumeKeys {
  constructor(readonly prefix: string) {}

  superblock(): string {
    return `${this.prefix}sb`;
  }
  /** Marker written on every failure domain at mkfs, to tell lost records from absent ones. */
  sentinel(): string {
    return `${this.prefix}alive`;
  }
  /** The mounts attached to the volume now, each with its last heartbeat (sessions.ts). */
  mounts(): string {
    return `${this.prefix}mounts`;
  }
  inodeAllocator(): string {
    return `${this.prefix}alloc`;
  }
  inode(ino: number): string {
    return `${this.prefix}i:${ino}`;
  }
  /** One node of a directory's hash tree; `node` is `r` for the root. */
  dirNode(ino: number, node: string): string {
    return `${this.prefix}d:${ino}:${node}`;
  }
  chunkMap(ino: number, chunkIndex: number): string {
    return `${this.prefix}c:${ino}:${chunkIndex}`;
  }
  /** A record of the bitmap tree naming which chunks of a file may exist (src/chunk/chunk-index.ts). */
  chunkIndex(ino: number, level: number, group: number): string {
    return `${this.prefix}x:${ino}:${level}:${group}`;
  }
  blockPrefix(): string {
    return `${this.prefix}b:`;
  }
  /** A batch of records due for deletion after the grace period. */
  garbage(id: string): string {
    return `${this.prefix}g:${id}`;
  }
  garbagePrefix(): string {
    return `${this.prefix}g:`;
  }
  /** The file locks (flock, fcntl) held on an inode by every mount. */
  locks(ino: number): string {
    return `${this.prefix}l:${ino}`;
  }
  locksPrefix(): string {
    return `${this.prefix}l:`;
  }
  /** A mount's lease: its locks count while it is renewed. */
  mountLease(mountId: string): string {
    return `${this.prefix}m:${mountId}`;
  }
  mountLeasePrefix(): string {
    return `${this.prefix}m:`;
  }
}
