// memcached's failure modes under a real mount (`npm run build` first):
// - full: servers with little memory and -M refuse new records; writes fail with ENOSPC (dd
//   says "No space left on device"), everything stored before still reads back, the mount keeps
//   serving reads and the log says the store is full;
// - restarted empty: one server of three loses everything under a running mount; every
//   operation still returns within a bounded time, files with no record on that server read
//   back intact, what was lost answers EIO with a log line naming it (two regressions below
//   fail today), and a new mount refuses with the "lost data" message.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memcachedBackend, MemcachedStore } from '../../src/backends/memcached/index.js';
import { withAtomicCommit } from '../../src/cas/intent-store.js';
import { decodeRecord } from '../../src/chunk/record-codec.js';
import type { ChunkMapRecord } from '../../src/chunk/file-data.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { defaultVoldfsCommand, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { patternBytes } from '../helpers/pattern.js';
import { run } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

/** Longest any single operation may take on a damaged store before it counts as a hang, ms. */
const BOUND_MS = 20_000;

describe('memcached full (-m 8, -M)', () => {
  let pool: MemcachedPool | undefined;
  let env: Record<string, string> = {};
  let mount: VoldfsMount | undefined;
  const before = new Map<string, Buffer>();
  let ddSeconds = 0;

  beforeAll(async () => {
    pool = await startMemcachedServers(3, { memoryMb: 8 });
    const work = await makeTempDir('mc-full');
    env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: pool.serversValue, VOLDFS_VOLUME: 'full', VOLDFS_STATE_DIR: join(work, 'state') };
    mount = await mountVoldfs({ env });
    await mkdir(join(mount.dir, 'keep'));
    for (let i = 0; i < 4; i++) {
      const data = patternBytes(200_000 + i * 100_000, i + 1);
      await writeFile(join(mount.dir, `keep/f${i}`), data);
      before.set(`keep/f${i}`, data);
    }
  });
  afterAll(async () => {
    await mount?.unmount();
    await pool?.stop();
  });

  it('fails dd with "No space left on device"', async () => {
    const dir = mount?.dir ?? '';
    const started = Date.now();
    const dd = await run('dd', ['if=/dev/zero', `of=${join(dir, 'big')}`, 'bs=1M', 'count=400'], { timeoutMs: 120_000 });
    ddSeconds = (Date.now() - started) / 1000;
    const written = await run('stat', ['-c', '%s', join(dir, 'big')]);
    console.log(`[full] dd exit ${dd.code} after ${ddSeconds.toFixed(2)} s, file size ${written.stdout.trim()}: ${dd.stderr.trim().split('\n').join(' | ')}`);
    expect(dd.timedOut).toBe(false);
    expect(dd.code).not.toBe(0);
    expect(dd.stderr).toMatch(/No space left on device/);
  }, 180_000);

  it('logs that the store is full, naming the server and what to do', async () => {
    const log = await readFile(mount?.logFile ?? '', 'utf8');
    expect(log).toMatch(/"msg":"store is full"/);
    expect(log).toMatch(/memcached at 127\.0\.0\.1:\d+ is out of memory and refuses new records/);
  });

  it('still reads back everything stored before, on this mount and on a fresh one', async () => {
    const dir = mount?.dir ?? '';
    for (const [path, data] of before) expect((await readFile(join(dir, path))).equals(data), path).toBe(true);
    expect((await run('ls', ['-la', join(dir, 'keep')])).code).toBe(0);
    const fresh = await mountVoldfs({ env, mkfs: false });
    try {
      for (const [path, data] of before) expect((await readFile(join(fresh.dir, path))).equals(data), path).toBe(true);
    } finally {
      await fresh.unmount();
    }
  });
});

describe('a memcached server restarted empty under a mount', () => {
  let pool: MemcachedPool | undefined;
  let env: Record<string, string> = {};
  let mount: VoldfsMount | undefined;
  let volume = '';
  let lostServer = '';
  /** Every file, with the records a read of it needs. */
  const files: { path: string; data: Buffer; ino: number; dirIno: number; lost: string[] }[] = [];

  beforeAll(async () => {
    pool = await startMemcachedServers(3);
    const work = await makeTempDir('mc-lost');
    const servers = pool.serversValue;
    const probe = await memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: servers }));
    try {
      if (!(probe instanceof MemcachedStore)) throw new Error('not a memcached store');
      // A volume whose superblock and root inode live on different servers, so that losing the
      // superblock's server leaves the root behind: the state a new mount must refuse.
      for (let i = 0; volume === ''; i++) {
        if (probe.serverOf(`lost${i}:sb`) !== probe.serverOf(`lost${i}:i:1`)) volume = `lost${i}`;
      }
      lostServer = probe.serverOf(`${volume}:sb`);
      env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: servers, VOLDFS_VOLUME: volume, VOLDFS_STATE_DIR: join(work, 'state') };
      mount = await mountVoldfs({ env });
      const meta = withAtomicCommit(probe);
      /** What a read of `file` needs, and which of it sits on the server about to lose everything. */
      const census = async (file: (typeof files)[number]): Promise<void> => {
        const needs: [string, string][] = [
          ['directory inode', `${volume}:i:${file.dirIno}`],
          ['directory record', `${volume}:d:${file.dirIno}:r`],
          ['inode', `${volume}:i:${file.ino}`],
          ['chunk map', `${volume}:c:${file.ino}:0`],
        ];
        for (const [what, key] of needs) if (probe.serverOf(key) === lostServer) file.lost.push(what);
        const map = await meta.get(`${volume}:c:${file.ino}:0`);
        const block = map ? decodeRecord<ChunkMapRecord>('chunk map', map.value).block?.id : undefined;
        if (block && probe.serverOf(`${volume}:b:${block}`) === lostServer) file.lost.push('block');
      };
      const dirInos: number[] = [];
      for (let d = 0; d < 6; d++) {
        await mkdir(join(mount.dir, `d${d}`));
        dirInos.push((await stat(join(mount.dir, `d${d}`))).ino);
      }
      // Six files per directory, then more until one has lost its chunk map and nothing else:
      // block ids are random, so 36 files leave none such about one run in twelve.
      const onlyChunkMapLost = () => files.some((f) => f.lost.length === 1 && f.lost[0] === 'chunk map');
      for (let n = 0; n < 36 || (!onlyChunkMapLost() && n < 200); n++) {
        const d = n % 6;
        const path = `d${d}/f${Math.floor(n / 6)}`;
        const data = patternBytes(100_000, n + 1);
        await writeFile(join(mount.dir, path), data);
        const file = { path, data, ino: (await stat(join(mount.dir, path))).ino, dirIno: dirInos[d], lost: [] };
        await census(file);
        files.push(file);
      }
    } finally {
      await probe.close();
    }
    const server = pool.servers.find((s) => s.address === lostServer);
    if (!server) throw new Error(`no server ${lostServer} in the pool`);
    await server.restart();
  });
  afterAll(async () => {
    await mount?.unmount().catch(() => undefined);
    await pool?.stop();
  });

  /**
   * What reading each file gives now: 'ok', 'zeros', 'wrong content', or the error code. Waits
   * out the kernel's and the mount's caches (1 s) first, so every answer comes from the store.
   */
  const readAll = async (): Promise<Map<string, string>> => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const out = new Map<string, string>();
    for (const f of files) {
      out.set(
        f.path,
        await readFile(join(mount?.dir ?? '', f.path)).then(
          (b) => (b.equals(f.data) ? 'ok' : b.equals(Buffer.alloc(b.length)) ? `zeros (${b.length} bytes)` : 'wrong content'),
          (err: NodeJS.ErrnoException) => err.code ?? String(err),
        ),
      );
    }
    return out;
  };

  it('answers every operation within a bounded time', async () => {
    const dir = mount?.dir ?? '';
    const results: { what: string; ms: number; outcome: string }[] = [];
    const timed = async (what: string, cmd: string, args: string[]) => {
      const started = Date.now();
      const r = await run(cmd, args, { timeoutMs: BOUND_MS });
      const outcome = r.timedOut ? 'TIMED OUT' : r.code === 0 ? 'ok' : (r.stderr.trim().split(': ').pop() ?? `exit ${r.code}`);
      results.push({ what, ms: Date.now() - started, outcome });
    };
    for (const f of files) {
      await timed(`stat ${f.path}`, 'stat', [join(dir, f.path)]);
      await timed(`cat ${f.path}`, 'cat', [join(dir, f.path)]);
    }
    for (let d = 0; d < 6; d++) await timed(`ls d${d}`, 'ls', [join(dir, `d${d}`)]);
    for (let d = 0; d < 6; d++) await timed(`touch d${d}/new`, 'touch', [join(dir, `d${d}/new`)]);
    await timed('mkdir fresh', 'mkdir', [join(dir, 'fresh')]);
    const byOutcome = new Map<string, number>();
    for (const r of results) byOutcome.set(r.outcome, (byOutcome.get(r.outcome) ?? 0) + 1);
    const slowest = Math.max(...results.map((r) => r.ms));
    console.log(
      `[lost] server ${lostServer} restarted empty; ${results.length} operations, slowest ${slowest} ms; ` +
        `outcomes: ${JSON.stringify(Object.fromEntries(byOutcome))}`,
    );
    expect(results.filter((r) => r.outcome === 'TIMED OUT')).toEqual([]);
    expect(slowest).toBeLessThan(BOUND_MS);
  }, 300_000);

  it('loses only files that had records on the lost server', async () => {
    const reads = await readAll();
    const intact = files.filter((f) => f.lost.length === 0);
    // A lost block may still be in the mount's block cache: those files are left out here.
    const counts = new Map<string, number>();
    for (const f of files) counts.set(f.lost.join('+') || 'nothing', (counts.get(f.lost.join('+') || 'nothing') ?? 0) + 1);
    console.log(`[lost] files by what they lost: ${JSON.stringify(Object.fromEntries(counts))}`);
    expect(intact.length).toBeGreaterThan(0);
    expect(intact.filter((f) => reads.get(f.path) !== 'ok').map((f) => `${f.path}: ${reads.get(f.path)}`)).toEqual([]);
  });

  // Regression (fails): src/chunk/file-data.ts chunkRef() takes a missing chunk map for a hole,
  // so a file whose chunk map a restart lost reads back as zeros, silently.
  it('answers EIO, never zeros, for a file whose chunk map was lost', async () => {
    const reads = await readAll();
    const victims = files.filter((f) => f.lost.length === 1 && f.lost[0] === 'chunk map');
    console.log(`[lost] files with only their chunk map lost: ${victims.map((f) => `${f.path} -> ${reads.get(f.path)}`).join(', ')}`);
    expect(victims.length).toBeGreaterThan(0);
    expect(victims.map((f) => `${f.path}: ${reads.get(f.path)}`)).toEqual(victims.map((f) => `${f.path}: EIO`));
  });

  // Regression (fails): src/inode/inode-table.ts read() and directory-tree.ts findLeaf() answer
  // ENOENT for a record a directory entry still points at, without a log line: the files just
  // vanish. A name whose inode or directory record is gone is damage: EIO, logged.
  it('answers EIO with a log line, not ENOENT, for a file whose inode or directory records were lost', async () => {
    const reads = await readAll();
    // Blocks are immutable, so one still in the mount's block cache reads back correctly:
    // files that lost nothing but blocks are left out, as in the test above.
    const victims = files.filter((f) => f.lost.some((w) => w !== 'chunk map' && w !== 'block'));
    console.log(`[lost] files with metadata lost: ${victims.map((f) => `${f.path} (${f.lost.join(', ')}) -> ${reads.get(f.path)}`).join('; ')}`);
    expect(victims.length).toBeGreaterThan(0);
    expect(victims.map((f) => `${f.path}: ${reads.get(f.path)}`)).toEqual(victims.map((f) => `${f.path}: EIO`));
    expect(await readFile(mount?.logFile ?? '', 'utf8')).toMatch(/has no record/);
  });

  it('refuses a new mount with the "lost data" message', async () => {
    const [node, ...cli] = await defaultVoldfsCommand();
    const target = await makeTempDir('mc-lost-mount');
    const r = await run(node, [...cli, 'mount', target], { env: { ...process.env, ...env }, timeoutMs: 60_000 });
    console.log(`[lost] voldfs mount: exit ${r.code}: ${(r.stdout + r.stderr).trim()}`);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/lost data/);
    expect(r.stdout + r.stderr).toMatch(/voldfs fsck/);
  }, 120_000);
});
