/**
 * One stress worker process: on one mount, for a bounded time, runs random operations on its
 * own files in directories every worker shares (create, rename, rename over, link, unlink),
 * writes its own byte range of files every worker shares, appends to its own file, and reads
 * its files back; it logs each operation that completed as one JSON line (model.ts).
 *
 * Run as: node --import tsx worker.ts '<json WorkerArgs>'
 */
import { appendFile, link, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seededRandom } from '../../helpers/seeded-random.js';
import { LAYOUT, appendLine, fileBytes, rangeBytes, type LogEntry } from './model.js';

export interface WorkerArgs {
  readonly mount: string;
  readonly worker: number;
  readonly seed: number;
  /** Wall-clock ms since epoch at which to stop starting operations. */
  readonly until: number;
  readonly log: string;
}

/** Largest file a worker creates, bytes: up to two memcached chunks and a bit. */
const MAX_FILE = 1100 * 1024;

async function main(args: WorkerArgs): Promise<void> {
  const random = seededRandom(args.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const live = new Map<string, { seed: number; len: number }>();
  const at = (rel: string) => join(args.mount, rel);
  let created = 0;
  let appended = 0;
  let appendBroken = false;
  let iteration = 0;
  const freshName = () => `${pick(LAYOUT.dirs)}/w${args.worker}-${created++}`;
  const log = async (entry: LogEntry) => appendFile(args.log, JSON.stringify(entry) + '\n');

  while (Date.now() < args.until) {
    iteration++;
    const roll = random();
    const names = [...live.keys()];
    let kind: string;
    if (names.length === 0 || roll < 0.22) kind = 'create';
    else if (roll < 0.4) kind = 'range';
    else if (roll < 0.5) kind = appendBroken ? 'create' : 'append';
    else if (roll < 0.64) kind = 'rename';
    else if (roll < 0.74) kind = 'link';
    else if (roll < 0.86) kind = 'unlink';
    else kind = 'verify';
    const started = Date.now();
    const ms = () => Date.now() - started;
    let paths: string[] = [];
    let file: string | undefined;
    try {
      switch (kind) {
        case 'create': {
          const path = freshName();
          paths = [path];
          const seed = (args.seed * 7919 + iteration) >>> 0;
          const len = Math.floor(random() ** 2 * MAX_FILE);
          await writeFile(at(path), fileBytes(seed, len), { flag: 'wx' });
          live.set(path, { seed, len });
          await log({ op: 'create', path, seed, len, ms: ms() });
          break;
        }
        case 'range': {
          file = pick(LAYOUT.rangeFiles);
          const seed = ((args.worker + 1) << 20) | iteration;
          const offset = LAYOUT.rangeBase + args.worker * LAYOUT.rangeBytes;
          const fh = await open(at(file), 'r+');
          try {
            await fh.write(rangeBytes(seed), 0, LAYOUT.rangeBytes, offset);
          } finally {
            await fh.close();
          }
          await log({ op: 'range', file, offset, seed, ms: ms() });
          break;
        }
        case 'append': {
          const seq = appended;
          await writeFile(at(LAYOUT.appendFile(args.worker)), appendLine(args.worker, seq), { flag: 'a' });
          appended++;
          await log({ op: 'append', seq, ms: ms() });
          break;
        }
        case 'rename': {
          const from = pick(names);
          // Half the time over another of its own names, else to a fresh name.
          const others = names.filter((n) => n !== from);
          const to = others.length > 0 && random() < 0.5 ? pick(others) : freshName();
          paths = [from, to];
          await rename(at(from), at(to));
          const moved = live.get(from);
          // Two names of one file: rename does nothing (POSIX).
          if (moved !== live.get(to)) {
            live.delete(from);
            if (moved) live.set(to, moved);
          }
          await log({ op: 'rename', from, to, ms: ms() });
          break;
        }
        case 'link': {
          const from = pick(names);
          const to = freshName();
          paths = [from, to];
          await link(at(from), at(to));
          const target = live.get(from);
          if (target) live.set(to, target);
          await log({ op: 'link', from, to, ms: ms() });
          break;
        }
        case 'unlink': {
          const path = pick(names);
          paths = [path];
          await unlink(at(path));
          live.delete(path);
          await log({ op: 'unlink', path, ms: ms() });
          break;
        }
        default: {
          const path = pick(names);
          const want = live.get(path);
          const got = await readFile(at(path));
          const ok = want !== undefined && got.equals(fileBytes(want.seed, want.len));
          await log({ op: 'verify', path, ok, detail: ok ? undefined : `read ${got.length} bytes, expected ${want?.len}`, ms: ms() });
        }
      }
    } catch (err) {
      const error = (err as NodeJS.ErrnoException).code ?? String(err);
      // What a failed operation touched is unknown from now on: stop using it.
      for (const p of paths) live.delete(p);
      if (kind === 'append') appendBroken = true;
      await log({ op: 'error', failed: kind, error, paths, file, ms: ms() });
    }
  }
}

const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs;
main(args).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`stress worker ${args.worker}:`, err);
    process.exit(1);
  },
);
