import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreFull, StoreUnavailable } from '../../src/backends/errors.js';
import { IF_ABSENT, ifVersion } from '../../src/backends/kv-store.js';
import { LmdbStore, lmdbBackend } from '../../src/backends/lmdb/index.js';
import { increment } from './lmdb-cas-worker.js';

const run = promisify(execFile);
const WORKER = new URL('./lmdb-cas-worker.ts', import.meta.url).pathname;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'voldfs-lmdb-unit-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('opening an LMDB store', () => {
  it('creates missing parent directories', async () => {
    const store = await lmdbBackend.create(lmdbBackend.parseOptions({ VOLDFS_LMDB_PATH: join(dir, 'a/b/c') }));
    expect(store.name).toBe('lmdb');
    await store.put('k', Buffer.from('v'));
    await store.close();
  });

  it('explains a path under a regular file, naming VOLDFS_LMDB_PATH', async () => {
    await writeFile(join(dir, 'plain-file'), 'x');
    const open = LmdbStore.open({ path: join(dir, 'plain-file', 'lmdb') });
    await expect(open).rejects.toBeInstanceOf(StoreUnavailable);
    await expect(LmdbStore.open({ path: join(dir, 'plain-file', 'lmdb') })).rejects.toThrow(
      /cannot open the LMDB store at .*plain-file\/lmdb \(VOLDFS_LMDB_PATH\): .*ENOTDIR.*Set VOLDFS_LMDB_PATH to a directory/,
    );
  });

  it('explains a path that is a regular file', async () => {
    await writeFile(join(dir, 'not-a-dir'), 'x');
    await expect(LmdbStore.open({ path: join(dir, 'not-a-dir') })).rejects.toThrow(
      /cannot open the LMDB store at .*not-a-dir \(VOLDFS_LMDB_PATH\)/,
    );
  });

  // lmdb-js crashes the process on these files, so the store must refuse them first.
  it('refuses a data.mdb that is not LMDB', async () => {
    const path = join(dir, 'garbage');
    await mkdir(path);
    await writeFile(join(path, 'data.mdb'), Buffer.alloc(64 * 1024, 0x41));
    await expect(LmdbStore.open({ path })).rejects.toThrow(
      /cannot open the LMDB store at .*garbage \(VOLDFS_LMDB_PATH\): .*data.mdb is not an LMDB data file/,
    );
  });

  it('refuses a truncated data.mdb', async () => {
    const source = join(dir, 'to-truncate');
    const store = await LmdbStore.open({ path: source });
    for (let i = 0; i < 4; i++) await store.put(`k${i}`, Buffer.alloc(20_000, i));
    await store.close();
    const whole = await readFile(join(source, 'data.mdb'));
    for (const keep of [4096, 8192, whole.length - 4096]) {
      const path = join(dir, `truncated-${keep}`);
      await mkdir(path);
      await writeFile(join(path, 'data.mdb'), whole.subarray(0, keep));
      await expect(LmdbStore.open({ path }), `first ${keep} bytes`).rejects.toThrow(
        /cannot open the LMDB store at .*\(VOLDFS_LMDB_PATH\): .*data.mdb is truncated/,
      );
    }
    // The intact file still opens, and an empty data.mdb is a new store.
    const intact = await LmdbStore.open({ path: source });
    expect((await intact.get('k3'))?.value.length).toBe(20_000);
    await intact.close();
    const emptyDir = join(dir, 'empty-data-file');
    await mkdir(emptyDir);
    await writeFile(join(emptyDir, 'data.mdb'), '');
    const empty = await LmdbStore.open({ path: emptyDir });
    expect(await empty.get('k')).toBeUndefined();
    await empty.close();
  });

  it('keeps records and versions across close and reopen', async () => {
    const path = join(dir, 'reopen');
    const first = await LmdbStore.open({ path });
    const put = await first.put('k', Buffer.from('v1'), IF_ABSENT);
    await first.close();
    await expect(first.get('k')).rejects.toThrow(/LMDB store at .*reopen is closed/);
    const second = await LmdbStore.open({ path });
    const got = await second.get('k');
    expect(got?.value.toString()).toBe('v1');
    expect(put.ok && got?.version === put.version).toBe(true);
    expect((await second.put('k', Buffer.from('v2'), ifVersion(got?.version ?? ''))).ok).toBe(true);
    await second.close();
  });
});

describe('scanning an LMDB store', () => {
  it('lists thousands of keys across event turns while writes go on, and stops early on break', async () => {
    const store = await LmdbStore.open({ path: join(dir, 'scan') });
    const keys = Array.from({ length: 3000 }, (_v, i) => `s/${String(i).padStart(5, '0')}`);
    await Promise.all(keys.map((key) => store.put(key, Buffer.from(key))));
    await store.put('s0', Buffer.from('outside'));
    await store.put('r/1', Buffer.from('outside'));
    const listed: string[] = [];
    const writer = Promise.all(Array.from({ length: 200 }, (_v, i) => store.put(`t/${i}`, Buffer.from('x'))));
    for await (const key of store.scan('s/')) listed.push(key);
    await writer;
    expect(listed).toEqual(keys);
    const firstTen: string[] = [];
    for await (const key of store.scan('s/')) if (firstTen.push(key) === 10) break;
    expect(firstTen).toEqual(keys.slice(0, 10));
    await store.close();
  });
});

describe('sharing one LMDB directory', () => {
  it('two stores in one process: CAS increments from both all land', async () => {
    const path = join(dir, 'shared-in-process');
    const a = await LmdbStore.open({ path });
    const b = await LmdbStore.open({ path });
    await a.put('n', Buffer.from('0'));
    const work = (store: LmdbStore) =>
      Promise.all(Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 25; i++) await increment(store, 'n');
      }));
    await Promise.all([work(a), work(b)]);
    expect((await a.get('n'))?.value.toString()).toBe('200');
    // Closing one leaves the other usable.
    await a.close();
    expect((await b.get('n'))?.value.toString()).toBe('200');
    expect((await b.put('n', Buffer.from('x'))).ok).toBe(true);
    await b.close();
  });

  it('two processes: concurrent CAS increments all land', async () => {
    const path = join(dir, 'shared-processes');
    const store = await LmdbStore.open({ path });
    await store.put('n', Buffer.from('0'));
    const child = run(process.execPath, ['--import', 'tsx', WORKER, path, 'n', '300'], { timeout: 50_000 });
    const started = Date.now();
    while (!(await store.get('n:ready'))) {
      if (Date.now() - started > 30_000) throw new Error('the child process did not open the store within 30 s');
      await sleep(5);
    }
    let mine = 0;
    for (let i = 0; i < 300; i++) mine += await increment(store, 'n');
    const { stdout } = await child;
    const theirs = (JSON.parse(stdout) as { conflicts: number }).conflicts;
    expect((await store.get('n'))?.value.toString()).toBe('600');
    // Lost races prove the two processes really wrote at the same time.
    expect(mine + theirs).toBeGreaterThan(0);
    await store.close();
  }, 60_000);
});

describe('a full filesystem', () => {
  it('gives StoreFull naming VOLDFS_LMDB_PATH, and keeps what was written', async () => {
    const mountpoint = join(dir, 'tiny-fs');
    await mkdir(mountpoint);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountpoint]);
    try {
      const store = await LmdbStore.open({ path: join(mountpoint, 'lmdb') });
      try {
        await store.put('small', Buffer.from('kept'));
        const big = Buffer.alloc(1024 * 1024, 1);
        let error: unknown;
        for (let i = 0; i < 8 && !error; i++) {
          error = await store.put(`big-${i}`, big, IF_ABSENT).then(() => undefined, (err: unknown) => err);
        }
        expect(error).toBeInstanceOf(StoreFull);
        expect(String(error)).toMatch(/LMDB store at .*tiny-fs\/lmdb \(VOLDFS_LMDB_PATH\) is out of space/);
        expect((await store.get('small'))?.value.toString()).toBe('kept');
      } finally {
        await store.close();
      }
    } finally {
      // After a commit failed on a full disk lmdb-js cannot close its environment (close() is
      // bounded and gives up), so its files stay open: detach the tmpfs lazily.
      await run('umount', ['-l', mountpoint]);
    }
  }, 30_000);
});
