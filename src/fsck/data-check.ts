import { IntegrityError } from '../backends/errors.js';
import pMap from 'p-map';
import { isInline, type ChunkRef } from '../chunk/file-data.js';
import { BlockMissing, type BlockHealth, type BlockRef } from '../translators/block-store.js';
import { chunkStart, chunksFor, minus, plus, smaller } from '../chunk/byte-offset.js';
import type { FsckContext } from './context.js';
import { chunkRefOf, deleteChunkMaps } from './chunk-repairs.js';
import type { KeyCensus } from './key-census.js';
import { FIX_ORDER } from './problems.js';
import type { FileToCheck } from './tree-walk.js';

interface FoundMap {
  readonly file: FileToCheck;
  readonly index: number;
  readonly ref: BlockRef;
}

/**
 * File data of reachable regular files: each chunk map below ceil(size / chunkSize) must be
 * well formed and its block present, intact and of the recorded length (BlockStore.check,
 * which with repair rewrites missing erasure fragments byte-identically: safe while mounted,
 * since blocks never change). Collects the ids of referenced blocks for the leftover checks.
 */
export class DataChecker {
  /** Block ids the chunk maps of reachable files point at (below their ends). */
  readonly referenced = new Set<string>();

  constructor(
    private readonly ctx: FsckContext,
    private readonly census: KeyCensus | undefined,
  ) {}

  async checkFiles(files: readonly FileToCheck[]): Promise<void> {
    const { chunkSize } = this.ctx;
    if (chunkSize === undefined || !this.ctx.target.blocks) return;
    const wanted: { file: FileToCheck; index: number }[] = [];
    for (const file of files) {
      const chunks = chunksFor(file.size, chunkSize);
      if (this.census) {
        for (const index of this.census.chunkMaps.get(file.ino) ?? []) if (index < chunks) wanted.push({ file, index });
      } else {
        // Without a scan the file's chunk index names its chunk maps, past the end too.
        for (const index of await this.indexedChunks(file)) wanted.push({ file, index });
      }
    }
    const { keys, meta } = this.ctx.target;
    const found = await this.ctx.readMany(meta, wanted.map((w) => keys.chunkMap(w.file.ino, w.index)));
    const maps: FoundMap[] = [];
    wanted.forEach(({ file, index }, i) => {
      const f = found[i];
      if (!f) return;
      const key = keys.chunkMap(file.ino, index);
      const ref = chunkRefOf(this.ctx, key, f.value);
      if (!ref) {
        this.ctx.problems.add({
          kind: 'chunk-map-bad',
          path: file.path,
          ino: file.ino,
          key,
          what: `chunk map ${index} cannot be decoded or names no valid block: ${this.lostRange(file, index)} cannot be read`,
        });
        return;
      }
      if (index >= chunksFor(file.size, chunkSize)) {
        this.pastEnd(file, index, ref);
        return;
      }
      this.ctx.counts.chunkMaps++;
      // Inline bytes were authenticated (crypt) and decoded with their record: nothing more to check.
      if (isInline(ref)) return;
      this.referenced.add(ref.id);
      maps.push({ file, index, ref });
    });
    await pMap(maps, (m) => this.checkBlock(m), { concurrency: this.ctx.concurrency });
  }

  /** Chunk maps the file's chunk index names; an undecodable index is reported, and names none. */
  private async indexedChunks(file: FileToCheck): Promise<number[]> {
    const found: number[] = [];
    try {
      for await (const present of this.ctx.chunkIndex.presentChunks(file.ino, 0)) found.push(...present);
      return found;
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      this.ctx.problems.add({
        kind: 'chunk-index-bad',
        path: file.path,
        ino: file.ino,
        what: `the file's chunk index cannot be read (${err.message}): chunk maps it names past chunk ${found.at(-1) ?? 0} were not checked`,
      });
      return found;
    }
  }

  private pastEnd(file: FileToCheck, index: number, ref: ChunkRef): void {
    this.ctx.problems.add(
      {
        kind: 'chunk-map-past-eof',
        path: file.path,
        ino: file.ino,
        what: `chunk map ${index} lies past the end (size ${file.size}): left by a write whose size was never stored`,
      },
      {
        order: FIX_ORDER.chunkMaps,
        // A live mount stores chunks before the size that covers them.
        offlineOnly: true,
        run: async () => {
          const deleted = await deleteChunkMaps(this.ctx, file.ino, [index], this.referenced);
          const what = isInline(ref) ? 'chunk map (inline data) deleted' : `chunk map and block ${ref.id} deleted`;
          return deleted > 0 ? { outcome: 'repaired', done: what } : { outcome: 'gone', done: 'already gone' };
        },
      },
    );
  }

  private async checkBlock({ file, index, ref }: FoundMap): Promise<void> {
    const { blocks, superblock } = this.ctx.target;
    if (!blocks || !superblock) return;
    const context = { volumeId: superblock.volumeId, ino: file.ino, chunkIndex: index };
    let health: BlockHealth;
    let reason = '';
    try {
      health = await blocks.check(ref, context, this.ctx.repair);
    } catch (err) {
      // A ref the translators cannot parse is as unreadable as a missing block.
      if (!(err instanceof IntegrityError || err instanceof BlockMissing)) throw err;
      health = { readable: false, damaged: 1, repaired: 0 };
      reason = `: ${err.message}`;
    }
    this.ctx.counts.blocksChecked++;
    this.ctx.counts.fragmentsRewritten += health.repaired;
    if (this.ctx.counts.blocksChecked % 256 === 0) this.ctx.report();
    if (!health.readable) {
      this.ctx.problems.add({
        kind: 'block-lost',
        path: file.path,
        ino: file.ino,
        key: this.ctx.target.keys.chunkMap(file.ino, index),
        what: `block ${ref.id} of chunk ${index} is missing or corrupt beyond repair${reason}: ${this.lostRange(file, index)} lost`,
      });
      return;
    }
    if (health.damaged === 0) return;
    const what = `block ${ref.id} of chunk ${index}: ${health.damaged} of its records missing or corrupt (still readable)`;
    if (!this.ctx.repair) {
      this.ctx.problems.add({ kind: 'block-damaged', path: file.path, ino: file.ino, what, action: 'left' });
    } else if (health.repaired >= health.damaged) {
      this.ctx.problems.add({ kind: 'block-damaged', path: file.path, ino: file.ino, what, action: 'repaired', done: `${health.repaired} records rewritten` });
    } else {
      this.ctx.problems.add({
        kind: 'block-damaged',
        path: file.path,
        ino: file.ino,
        what,
        action: 'failed',
        done: `${health.repaired} records rewritten; the others are on servers that did not answer: run fsck again once they are back`,
      });
    }
  }

  private lostRange(file: FileToCheck, index: number): string {
    const chunkSize = this.ctx.chunkSize ?? 0;
    const from = chunkStart(index, chunkSize);
    const to = smaller(file.size, plus(from, chunkSize));
    return `bytes ${from} to ${minus(to, 1)}`;
  }
}
