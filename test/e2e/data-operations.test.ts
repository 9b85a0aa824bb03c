// fallocate(1) modes, lseek SEEK_DATA/SEEK_HOLE and copy_file_range (a python3 program and
// cp --reflink=never) on a voldfs mount, each step compared with the same step in a local
// directory: sizes, bytes and errnos. Store: VOLDFS_* if VOLDFS_DB is set, else LMDB.
// `npm run build` first.
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useVoldfsMount } from '../helpers/mount-hooks.js';
import { patternBytes } from '../helpers/pattern.js';
import { run } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const mount = useVoldfsMount();
const DATA_OPS = join(import.meta.dirname, 'data-ops', 'data-ops.py');
const MB = 1024 * 1024;

let local: string;
beforeAll(async () => {
  local = await makeTempDir('data-ops-local');
});

async function fingerprint(path: string): Promise<{ size: number; sha256: string }> {
  const { size } = await stat(path);
  return { size, sha256: createHash('sha256').update(await readFile(path)).digest('hex') };
}

/** Runs `args` with `{}` replaced by the directory, on voldfs and locally; returns both outcomes. */
async function both(cmd: string, args: string[], sub: string): Promise<[string, string]> {
  const out: string[] = [];
  for (const root of [join(mount.get().dir, sub), join(local, sub)]) {
    await mkdir(root, { recursive: true });
    const r = await run(cmd, args.map((a) => a.replaceAll('{}', root)), { timeoutMs: 60_000 });
    out.push(`${r.code} ${r.stdout.trim()} ${r.stderr.replace(/^.*: /, '').trim()}`.trim());
  }
  return [out[0], out[1]];
}

async function sameFile(sub: string, name: string): Promise<void> {
  expect(await fingerprint(join(mount.get().dir, sub, name)), `${sub}/${name} differs from the local copy`).toEqual(await fingerprint(join(local, sub, name)));
}

describe('fallocate(1) against a local directory', () => {
  const steps: [string, string[]][] = [
    ['preallocate past the end', ['-l', '5000000']],
    ['keep size (-n) past the end', ['-n', '-o', '0', '-l', '9000000']],
    ['punch a hole (-p) across a chunk boundary', ['-p', '-o', '100', '-l', String(MB + 5000)]],
    ['punch a whole chunk', ['-p', '-o', String(2 * MB), '-l', String(MB)]],
    ['punch past the end changes nothing past it', ['-p', '-o', '4900000', '-l', '3000000']],
    ['zero (-z) inside a chunk', ['-z', '-o', '3500000', '-l', '200']],
    ['zero past the end grows the file', ['-z', '-o', '4500000', '-l', '1000000']],
    ['zero with -n past the end keeps the size', ['-z', '-n', '-o', '5400000', '-l', '1000000']],
  ];

  it('gives the same sizes and bytes after each step', async () => {
    await mkdir(join(mount.get().dir, 'fa'), { recursive: true });
    await mkdir(join(local, 'fa'), { recursive: true });
    const start = patternBytes(3 * MB + 12345, 12);
    await writeFile(join(mount.get().dir, 'fa', 'f'), start);
    await writeFile(join(local, 'fa', 'f'), start);
    for (const [what, args] of steps) {
      const [onVoldfs, onLocal] = await both('fallocate', [...args, '{}/f'], 'fa');
      expect(onVoldfs, what).toBe(onLocal);
      await sameFile('fa', 'f');
    }
  }, 120_000);

  it('preallocates a new empty file', async () => {
    const [onVoldfs, onLocal] = await both('fallocate', ['-l', '100', '{}/empty'], 'fa-new');
    expect(onVoldfs).toBe(onLocal);
    await sameFile('fa-new', 'empty');
  });

  it('answers EOPNOTSUPP for collapse (-c) and insert (-i) ranges, changing nothing', async () => {
    const file = join(mount.get().dir, 'unsupported');
    await writeFile(file, patternBytes(3 * MB, 3));
    for (const mode of ['-c', '-i']) {
      const r = await run('fallocate', [mode, '-o', '0', '-l', String(MB), file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Operation not supported/);
    }
    expect((await readFile(file)).equals(patternBytes(3 * MB, 3))).toBe(true);
  });
});

describe('lseek SEEK_DATA / SEEK_HOLE', () => {
  it('answers as a local directory does for a file without holes, and ENXIO at and past the end', async () => {
    const data = patternBytes(2 * MB + 7, 5);
    await mkdir(join(mount.get().dir, 'seek'), { recursive: true });
    await mkdir(join(local, 'seek'), { recursive: true });
    await writeFile(join(mount.get().dir, 'seek', 'f'), data);
    await writeFile(join(local, 'seek', 'f'), data);
    await writeFile(join(mount.get().dir, 'seek', 'empty'), '');
    await writeFile(join(local, 'seek', 'empty'), '');
    const cases = [
      ['f', 'data', 0], ['f', 'data', MB + 3], ['f', 'data', 2 * MB + 6], ['f', 'data', 2 * MB + 7], ['f', 'data', 9 * MB],
      ['f', 'hole', 0], ['f', 'hole', 2 * MB + 6], ['f', 'hole', 2 * MB + 7], ['f', 'hole', 9 * MB],
      ['empty', 'data', 0], ['empty', 'hole', 0],
    ] as const;
    const results: string[] = [];
    for (const [name, whence, offset] of cases) {
      const [onVoldfs, onLocal] = await both('python3', [DATA_OPS, 'seek', `{}/${name}`, whence, String(offset)], 'seek');
      results.push(`${name} ${whence} ${offset}: ${onVoldfs}`);
      expect(onVoldfs, `${name} SEEK_${whence.toUpperCase()} ${offset}`).toBe(onLocal);
    }
    expect(results).toContain(`f data ${2 * MB + 7}: 0 ENXIO`);
    expect(results).toContain(`f hole 0: 0 ${2 * MB + 7}`);
  });

  it('SEEK_HOLE in a file with a hole answers where its data ends, within the chunk that holds it', async () => {
    const file = join(mount.get().dir, 'seek', 'sparse');
    await writeFile(file, 'x');
    await run('truncate', ['-s', String(8 * MB), file]);
    const r = await run('python3', [DATA_OPS, 'seek', file, 'hole', '0']);
    const hole = Number(r.stdout.trim());
    // ext4 says 4096 (its block), voldfs the end of the chunk's stored bytes: both are before
    // the end of the file, as a hole there must be.
    expect(hole).toBeGreaterThanOrEqual(1);
    expect(hole).toBeLessThanOrEqual(MB);
  });
});

describe('copy_file_range', () => {
  it('copies within and between files as a local directory does (os.copy_file_range)', async () => {
    const sub = 'cfr';
    await mkdir(join(mount.get().dir, sub), { recursive: true });
    await mkdir(join(local, sub), { recursive: true });
    for (const root of [join(mount.get().dir, sub), join(local, sub)]) {
      await writeFile(join(root, 'src'), patternBytes(3 * MB + 99, 7));
      await writeFile(join(root, 'dst'), patternBytes(MB / 2, 8));
    }
    const copies: string[][] = [
      ['{}/src', '{}/dst', '0', '0', String(3 * MB + 99)],
      ['{}/src', '{}/dst', '1000', String(MB - 10), String(2 * MB)],
      ['{}/src', '{}/dst', String(3 * MB), '100', '5000'], // runs past the source's end: 99 bytes
      ['{}/src', '{}/dst', String(9 * MB), '0', '10'], // at the source's end: 0
      ['{}/dst', '{}/dst', '0', String(5 * MB), '4096'], // within one file, past its end
      ['{}/src', '{}/new', '17', '3', String(MB)],
    ];
    for (const args of copies) {
      const [onVoldfs, onLocal] = await both('python3', [DATA_OPS, 'copy', ...args], sub);
      expect(onVoldfs, args.join(' ')).toBe(onLocal);
    }
    await sameFile(sub, 'dst');
    await sameFile(sub, 'new');
  }, 120_000);

  it('answers EBADF, EISDIR and EINVAL as a local directory does', async () => {
    const sub = 'cfr-errors';
    for (const root of [join(mount.get().dir, sub), join(local, sub)]) {
      await mkdir(join(root, 'dir'), { recursive: true });
      await writeFile(join(root, 'a'), patternBytes(10000, 1));
      await writeFile(join(root, 'b'), '');
    }
    const cases: [string, string[]][] = [
      ['destination open read-only: EBADF', ['{}/a', '{}/b', '0', '0', '10', 'r', 'r']],
      ['source open write-only: EBADF', ['{}/a', '{}/b', '0', '0', '10', 'w', 'rw']],
      ['source is a directory: EISDIR', ['{}/dir', '{}/b', '0', '0', '10', 'r', 'rw']],
      ['overlapping ranges of one file: EINVAL', ['{}/a', '{}/a', '0', '100', '1000', 'r', 'rw']],
    ];
    for (const [what, args] of cases) {
      const [onVoldfs, onLocal] = await both('python3', [DATA_OPS, 'copy', ...args], sub);
      expect(onVoldfs, what).toBe(onLocal);
      expect(onVoldfs, what).toMatch(/^0 E[A-Z]+/);
    }
  });

  it('cp --reflink=never of a multi-chunk file gives the same bytes', async () => {
    const file = join(mount.get().dir, 'cp-src');
    await writeFile(file, patternBytes(5 * MB + 1, 9));
    const r = await run('cp', ['--reflink=never', file, join(mount.get().dir, 'cp-dst')]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readFile(join(mount.get().dir, 'cp-dst'))).equals(patternBytes(5 * MB + 1, 9))).toBe(true);
  });
});
