// Regression: on a fresh mount, `truncate -s 100T f && rm f` made the daemon grow from 90 MB to
// over 3 GB some 30 s later (the garbage grace period) and V8 abort: deleting the file's data
// walked every chunk index up to its size. Now truncate, delete and fsck walk the chunks a file
// has. Runs that line and its siblings on a real mount, on LMDB and on memcached, with the
// daemon's RSS sampled throughout and held under a bound, then `voldfs fsck`.
// Also: write-back of many open files stays within its share of VOLDFS_MEMORY_MB.
// Needs `npm run build` (dist/ is what the CLI runs).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { defaultVoldfsCommand, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { processesMentioning } from '../helpers/processes.js';
import { run, sleep } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

/** Largest file voldfs holds, 2^63 - 1 bytes: the kernel's too. A string: a double would round it. */
const MAX_SIZE = (2n ** 63n - 1n).toString();
/** Garbage grace period of a mount (GarbageCollector's default) and the margin of its timer. */
const GRACE_MS = 30_000 + 2_000;
/** The daemon's resident memory may not pass this, whatever the sizes asked for. */
const RSS_LIMIT_MB = 400;
const TEST_MS = 240_000;

/** Resident memory of a process in MB, from /proc; undefined once it is gone. */
async function rssMb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  }
}

/** Samples a process's RSS every 100 ms until stopped; keeps the highest. */
function sampleRss(pid: number): { stop: () => Promise<{ maxMb: number; samples: number }> } {
  let maxMb = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const mb = await rssMb(pid);
      if (mb !== undefined) {
        maxMb = Math.max(maxMb, mb);
        samples++;
      }
      await sleep(100);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { maxMb, samples };
    },
  };
}

async function daemonPid(mount: VoldfsMount): Promise<number> {
  const found = (await processesMentioning(mount.dir)).filter((p) => p.argv.includes('mount'));
  if (found.length !== 1) throw new Error(`expected one voldfs daemon for ${mount.dir}, found ${found.length}`);
  return found[0].pid;
}

/** Runs a shell line in `dir`; the result, never an exception for a non-zero exit. */
function sh(dir: string, line: string, timeoutMs = 60_000) {
  return run('bash', ['-c', line], { cwd: dir, timeoutMs });
}

async function shOk(dir: string, line: string, timeoutMs = 60_000): Promise<string> {
  const r = await sh(dir, line, timeoutMs);
  if (r.code !== 0) throw new Error(`${line} exited ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr}`);
  return r.stdout;
}

async function fsck(env: Record<string, string>, args: string[]) {
  const [node, ...cli] = await defaultVoldfsCommand();
  const started = Date.now();
  const r = await run(node, [...cli, 'fsck', '--offline', '--json', ...args], { env: { ...process.env, ...env }, timeoutMs: 120_000 });
  const report = JSON.parse(r.stdout || '{}') as {
    summary?: { garbageCollected?: number; problems?: number };
    problems?: { kind: string; action: string; what: string }[];
  };
  return { code: r.code, report, ms: Date.now() - started, stderr: r.stderr };
}


describe('write-back memory of many open files on a real mount (lmdb)', () => {
  it(
    'partial chunks written into 40 files held open: write-back waits at its share of VOLDFS_MEMORY_MB, RSS stays under 300 MB, data reads back',
    async () => {
      const work = await makeTempDir('write-back-ceiling');
      // 64 MiB: 16 MiB of write-back for the whole mount. Without the shared bound, 40 files x 10
      // partial chunks of 900 KB held 400 chunk buffers until their close (RSS over 440 MB).
      const env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'store.lmdb'), VOLDFS_STATE_DIR: join(work, 'state'), VOLDFS_MEMORY_MB: '64' };
      const mount = await mountVoldfs({ env });
      const sampler = sampleRss(await daemonPid(mount));
      let rss: { maxMb: number; samples: number } | undefined;
      try {
        const script = [
          'import os',
          'fds = [os.open(f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644) for i in range(40)]',
          'for c in range(10):',
          '    for i, fd in enumerate(fds):',
          '        os.pwrite(fd, bytes([i + 1]) * 900_000, c * 2**20 + 7)',
          'for fd in fds: os.close(fd)',
        ].join('\n');
        await shOk(mount.dir, `python3 -c '${script}'`, 120_000);
        for (const i of [0, 17, 39]) {
          const od = await shOk(mount.dir, `dd if=f${i} iflag=skip_bytes,count_bytes skip=${9 * 2 ** 20 + 7} count=2 status=none | od -An -tu1`);
          expect(od.trim().split(/\s+/)).toEqual([String(i + 1), String(i + 1)]);
        }
      } finally {
        rss = await sampler.stop();
        await mount.unmount();
      }
      console.log(`write-back of 40 open files: daemon RSS at most ${rss.maxMb.toFixed(0)} MB over ${rss.samples} samples`);
      expect(rss.maxMb).toBeLessThan(300);
    },
    TEST_MS,
  );
});

describe.each(['lmdb', 'memcached'] as const)('huge sparse files on a real mount (%s)', (backend) => {
  let env: Record<string, string> = {};
  let pool: MemcachedPool | undefined;

  beforeAll(async () => {
    const work = await makeTempDir(`huge-sparse-${backend}`);
    const state = { VOLDFS_STATE_DIR: join(work, 'state') };
    if (backend === 'lmdb') {
      env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'store.lmdb'), ...state };
    } else {
      pool = await startMemcachedServers(1, { memoryMb: 256 });
      env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: pool.serversValue, ...state };
    }
  });
  afterAll(async () => {
    await pool?.stop();
  });

  it(
    'truncate -s 100T && rm, 8E, the largest file read at both ends, far writes, truncates: RSS bounded, fsck clean',
    async () => {
      const mount = await mountVoldfs({ env });
      const dir = mount.dir;
      let rss: { maxMb: number; samples: number } | undefined;
      const sampler = sampleRss(await daemonPid(mount));
      try {
        await shOk(dir, 'truncate -s 100T huge && rm huge');

        // Past what any offset can say: coreutils refuses 8E (2^63) itself; an fallocate reaching
        // past 2^63 - 1 is EFBIG; a write there, EINVAL (the kernel's answer on any filesystem:
        // its end overflows loff_t).
        const eight = await sh(dir, 'truncate -s 8E f8');
        expect(eight.code).not.toBe(0);
        expect(eight.stderr).toMatch(/Value too large|File too large/);
        const past = (call: string) =>
          shOk(dir, `python3 -c 'import os, errno\nfd = os.open("past", os.O_CREAT | os.O_RDWR, 0o644)\ntry:\n    ${call}; print("ok")\nexcept OSError as e: print(errno.errorcode[e.errno])'`);
        expect((await past(`os.pwrite(fd, b"x", ${MAX_SIZE})`)).trim()).toBe('EINVAL');
        expect((await past(`os.posix_fallocate(fd, ${MAX_SIZE} - 1, 2)`)).trim()).toBe('EFBIG');
        // Exact past 2^53 - 1, where a double would round.
        await shOk(dir, 'truncate -s 9007199254740993 odd');
        expect((await shOk(dir, 'stat -c %s odd')).trim()).toBe('9007199254740993');

        // The largest file: created, stat'ed, written and read at both ends (dd skip), copied.
        await shOk(dir, `truncate -s ${MAX_SIZE} max`);
        expect((await shOk(dir, 'stat -c %s max')).trim()).toBe(MAX_SIZE);
        const tailAt = (2n ** 63n - 5n).toString();
        await shOk(dir, `printf head | dd of=max conv=notrunc status=none && printf tail | dd of=max oflag=seek_bytes seek=${tailAt} conv=notrunc status=none`);
        expect(await shOk(dir, 'head -c 4 max')).toBe('head');
        // A read whose end would pass 2^63 is the kernel's EINVAL: exactly 4 bytes.
        expect(await shOk(dir, `dd if=max bs=4 iflag=skip_bytes skip=${tailAt} count=1 status=none`)).toBe('tail');
        expect(await shOk(dir, 'tail -c 5 max | od -An -tx1')).toMatch(/^\s*00 74 61 69 6c\s*$/);
        expect((await shOk(dir, 'stat -c %s max')).trim()).toBe(MAX_SIZE);
        await shOk(dir, 'cp --sparse=always max max-copy', 60_000);
        expect((await shOk(dir, 'stat -c %s max-copy')).trim()).toBe(MAX_SIZE);
        expect(await shOk(dir, `head -c 4 max-copy; dd if=max-copy bs=4 iflag=skip_bytes skip=${tailAt} count=1 status=none`)).toBe('headtail');
        await shOk(dir, 'rm max-copy odd past');

        // Sparse writes at far offsets, read back; the holes between read as zeros.
        const offsets = [0, 2 ** 40, 50 * 2 ** 40 + 3, 7 * 2 ** 50 + 11];
        for (const [i, at] of offsets.entries()) {
          await shOk(dir, `printf 'w${i}' | dd of=sparse oflag=seek_bytes seek=${at} conv=notrunc status=none`);
        }
        for (const [i, at] of offsets.entries()) {
          expect(await shOk(dir, `dd if=sparse iflag=skip_bytes,count_bytes skip=${at} count=2 status=none`)).toBe(`w${i}`);
        }
        expect(await shOk(dir, `dd if=sparse iflag=skip_bytes,count_bytes skip=${2 ** 45} count=4 status=none | od -An -tx1`)).toMatch(/^\s*00 00 00 00\s*$/);

        // Truncates down and up again: cut bytes come back as zeros.
        await shOk(dir, `truncate -s ${2 ** 40 + 1} sparse && truncate -s 1P sparse`);
        expect(await shOk(dir, `dd if=sparse iflag=skip_bytes,count_bytes skip=${2 ** 40} count=2 status=none | od -An -tx1`)).toMatch(/^\s*77 00\s*$/);
        expect(await shOk(dir, `dd if=sparse iflag=skip_bytes,count_bytes skip=${50 * 2 ** 40 + 3} count=2 status=none | od -An -tx1`)).toMatch(/^\s*00 00\s*$/);
        expect(await shOk(dir, 'head -c 2 sparse')).toBe('w0');
        await shOk(dir, `truncate -s 100 max && truncate -s ${MAX_SIZE} max`);
        expect(await shOk(dir, 'tail -c 4 max | od -An -tx1')).toMatch(/^\s*00 00 00 00\s*$/);

        await shOk(dir, 'rm max sparse');
        const lastDeletedAt = Date.now();
        // The garbage records fall due, the 100T file's first: the mount deletes their data. Under
        // load the commands since the first rm take seconds, so wait for the last one's too.
        await sleep(Math.max(0, lastDeletedAt + GRACE_MS - Date.now()));
      } finally {
        rss = await sampler.stop();
        await mount.unmount();
      }
      console.log(`huge sparse files (${backend}): daemon RSS at most ${rss?.maxMb.toFixed(0)} MB over ${rss?.samples} samples`);
      expect(rss?.samples).toBeGreaterThan(100);
      expect(rss?.maxMb).toBeLessThan(RSS_LIMIT_MB);

      const checked = await fsck(env, []);
      expect(checked.report.problems).toEqual([]);
      expect(checked.code).toBe(0);
    },
    TEST_MS,
  );

  it(
    'fsck --repair collects the garbage of a 100T file deleted just before the unmount, in seconds',
    async () => {
      const mount = await mountVoldfs({ env, mkfs: false });
      try {
        await shOk(mount.dir, `truncate -s 100T late && printf x | dd of=late oflag=seek_bytes seek=${2 ** 46} conv=notrunc status=none && rm late`);
      } finally {
        await mount.unmount();
      }
      const repaired = await fsck(env, ['--repair']);
      expect(repaired.stderr).not.toMatch(/heap|out of memory/i);
      expect(repaired.code).toBe(0);
      expect(repaired.report.summary?.garbageCollected).toBeGreaterThanOrEqual(1);
      expect(repaired.ms).toBeLessThan(30_000);
      const checked = await fsck(env, []);
      expect(checked.report.problems).toEqual([]);
      expect(checked.code).toBe(0);
    },
    TEST_MS,
  );

  it(
    'cp --sparse=always of a huge sparse file',
    async () => {
      const mount = await mountVoldfs({ env, mkfs: false });
      try {
        const dir = mount.dir;
        await shOk(dir, `truncate -s 100T src && printf a | dd of=src conv=notrunc status=none && printf z | dd of=src oflag=seek_bytes seek=${100 * 2 ** 40 - 1} conv=notrunc status=none`);
        await shOk(dir, 'cp --sparse=always src dst', 60_000);
        expect((await shOk(dir, 'stat -c %s dst')).trim()).toBe(String(100 * 2 ** 40));
        expect(await shOk(dir, 'head -c 1 dst; tail -c 1 dst')).toBe('az');
        await shOk(dir, 'rm src dst');
      } finally {
        await mount.unmount();
      }
    },
    TEST_MS,
  );
});
