/**
 * A small tree that still has every shape the data path cares about, for the translator
 * proofs: a few hundred files of sizes around block and erasure boundaries, a file of several
 * MiB, sparse files, symlinks (relative, absolute, dangling, to a directory) and hard-link
 * groups across directories. Contents are seeded, so a run reproduces.
 */
import { link, mkdir, open, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { patternBytes } from '../../helpers/pattern.js';

export interface SmallTreeOptions {
  /** Number of small files (default 300). */
  readonly files?: number;
  /** Size of the large file in bytes (default 6 MiB + 123). */
  readonly bigBytes?: number;
  /** Written into one file's content (default none). */
  readonly contentMarker?: string;
}

const MiB = 1024 * 1024;
/** Sizes at the edges that matter: empty, tiny, erasure's copy/stripe switch, chunk size. */
const EDGE_SIZES = [0, 1, 7, 8, 4095, 4096, 16_383, 16_384, 16_385, MiB - 1, MiB, MiB + 1];

/** Builds the tree at `dir` (created). Returns the number of regular files written. */
export async function buildSmallTree(dir: string, opts: SmallTreeOptions = {}): Promise<number> {
  const count = opts.files ?? 300;
  let files = 0;
  await mkdir(join(dir, 'edges'), { recursive: true });
  for (const size of EDGE_SIZES) {
    await writeFile(join(dir, 'edges', `size-${size}`), patternBytes(size, size + 1));
    files++;
  }
  for (let i = 0; i < count; i++) {
    const sub = join(dir, 'files', `d${i % 7}`, i % 3 === 0 ? 'deeper' : '');
    await mkdir(sub, { recursive: true });
    // Mostly small, some tens of KiB: many blocks, both erasure layouts.
    const size = i % 10 === 0 ? 20_000 + i * 997 : (i * 131) % 9000;
    await writeFile(join(sub, `f${String(i).padStart(4, '0')}.dat`), patternBytes(size, 1000 + i));
    files++;
  }
  const big = join(dir, 'big.bin');
  await writeFile(big, patternBytes(opts.bigBytes ?? 6 * MiB + 123, 77));
  files++;

  await mkdir(join(dir, 'sparse'));
  await writeSparse(join(dir, 'sparse', 'holes'), [[0, 4096], [9 * MiB + 7, 5000]], 12 * MiB);
  await writeSparse(join(dir, 'sparse', 'tail-hole'), [[0, 100]], 5 * MiB);
  await writeSparse(join(dir, 'sparse', 'all-hole'), [], 3 * MiB + 1);
  files += 3;

  await mkdir(join(dir, 'links', 'other'), { recursive: true });
  await writeFile(join(dir, 'links', 'group'), patternBytes(30_000, 5));
  await link(join(dir, 'links', 'group'), join(dir, 'links', 'group-2'));
  await link(join(dir, 'links', 'group'), join(dir, 'links', 'other', 'group-3'));
  await writeFile(join(dir, 'links', 'pair'), 'pair\n');
  await link(join(dir, 'links', 'pair'), join(dir, 'links', 'other', 'pair-b'));
  files += 2;

  await mkdir(join(dir, 'symlinks'));
  await symlink('../links/group', join(dir, 'symlinks', 'relative'));
  await symlink('/etc/hostname', join(dir, 'symlinks', 'absolute'));
  await symlink('does/not/exist', join(dir, 'symlinks', 'dangling'));
  await symlink('../files', join(dir, 'symlinks', 'to-dir'));

  if (opts.contentMarker !== undefined) {
    await writeFile(join(dir, 'marker.txt'), `${opts.contentMarker}\n`.repeat(50));
    files++;
  }
  return files;
}

async function writeSparse(path: string, pieces: ReadonlyArray<[offset: number, length: number]>, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const [offset, length] of pieces) await fh.write(patternBytes(length, offset + 3), 0, length, offset);
  } finally {
    await fh.close();
  }
  await truncate(path, size);
}
