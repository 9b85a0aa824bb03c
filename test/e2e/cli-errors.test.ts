// Bad input at the command line gets a clear message naming what is wrong, and loses nothing:
// a wrong VOLDFS_DB, an unwritable VOLDFS_LMDB_PATH, a bad VOLDFS_HEARTBEAT_SECONDS, mount points
// that cannot be used, a store that cannot be reached (mount, status, dump) or holds no volume,
// a record that fails to decode, mkfs over an existing volume. Needs `npm run build`.
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { open as openLmdb } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreeBase } from '../helpers/free-ports.js';
import { defaultVoldfsCommand, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { isFuseMounted } from '../helpers/mountinfo.js';
import { run } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

let cli: string[] = [];
let work = '';

function voldfs(args: string[], env: Record<string, string>) {
  return run(cli[0], [...cli.slice(1), ...args], { env: { ...process.env, ...env }, timeoutMs: 60_000 });
}

beforeAll(async () => {
  cli = [...(await defaultVoldfsCommand())];
  work = await makeTempDir('cli-errors');
});

describe('configuration errors', () => {
  it('names VOLDFS_DB and the accepted stores for an unknown one', async () => {
    const r = await voldfs(['mkfs'], { VOLDFS_DB: 'mongo' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/VOLDFS_DB=mongo is not a known store; use one of: .*lmdb.*mc.*redis.*http/);
  });

  it('names VOLDFS_LMDB_PATH when the store cannot be created there', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'not a directory');
    const r = await voldfs(['mkfs'], { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(file, 'store') });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/VOLDFS_LMDB_PATH/);
    expect(await readFile(file, 'utf8')).toBe('not a directory');
  });

  it('names the variable for a bad cache lifetime and a bad translator list', async () => {
    const r1 = await voldfs(['mkfs'], { VOLDFS_CACHE_SECONDS: 'soon' });
    expect(r1.stderr).toMatch(/VOLDFS_CACHE_SECONDS=soon must be a number of seconds/);
    const r2 = await voldfs(['mkfs'], { VOLDFS_TRANSLATORS: 'zip' });
    expect(r2.stderr).toMatch(/VOLDFS_TRANSLATORS=zip: "zip" is not a translator/);
  });
});

describe('a bad VOLDFS_HEARTBEAT_SECONDS', () => {
  it('stops status and a mount with a message naming it and the accepted range', async () => {
    const env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'heartbeat-store'), VOLDFS_STATE_DIR: join(work, 'state') };
    for (const value of ['often', '0', '0.05', '7200', '-3']) {
      const status = await voldfs(['status'], { ...env, VOLDFS_HEARTBEAT_SECONDS: value });
      expect(status.code, status.stderr).toBe(2);
      expect(status.stderr).toContain(`voldfs: VOLDFS_HEARTBEAT_SECONDS=${value} must be a number of seconds from 0.1 to 3600`);
    }
    const dir = join(work, 'heartbeat-mount');
    await mkdir(dir);
    const mount = await voldfs(['mount', dir], { ...env, VOLDFS_HEARTBEAT_SECONDS: 'often' });
    expect(mount.code).toBe(2);
    expect(mount.stderr).toMatch(/VOLDFS_HEARTBEAT_SECONDS=often must be a number of seconds from 0\.1 to 3600/);
    const option = await voldfs(['mount', '-o', 'heartbeat_seconds=0', dir], env);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/VOLDFS_HEARTBEAT_SECONDS=0 must be a number of seconds from 0\.1 to 3600/);
    expect(await isFuseMounted(dir)).toBe(false);
  });
});

describe('mount points', () => {
  const env = () => ({ VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'mp-store'), VOLDFS_STATE_DIR: join(work, 'state') });

  it('refuses a missing, a non-empty and a non-directory mount point, saying what to do', async () => {
    const missing = await voldfs(['mount', join(work, 'nowhere')], env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does not exist: create it with mkdir -p/);

    const full = join(work, 'full');
    await mkdir(full);
    await writeFile(join(full, 'keep-me'), 'data');
    const nonEmpty = await voldfs(['mount', full], env());
    expect(nonEmpty.stderr).toMatch(/is not empty/);
    expect(await readFile(join(full, 'keep-me'), 'utf8')).toBe('data');

    const notDir = await voldfs(['mount', join(full, 'keep-me')], env());
    expect(notDir.stderr).toMatch(/is not a directory/);
  });

  it('refuses a mount point that is already mounted', async () => {
    const mounted = await mountVoldfs({ env: env() });
    try {
      const again = await voldfs(['mount', mounted.dir], env());
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/is in use by another mount: unmount it first/);
    } finally {
      await mounted.unmount();
    }
  });

  it('refuses to unmount what is not mounted', async () => {
    const dir = join(work, 'idle');
    await mkdir(dir);
    const r = await voldfs(['umount', dir], env());
    expect(r.stderr).toMatch(/is not mounted/);
  });
});

describe('a store that cannot be reached, or holds no volume', () => {
  // Ports nothing listens on (refused at once), and a server that accepts connections but
  // never answers (the open must give up after its time limit, not hang).
  let refused: number[] = [];
  const silent = createServer((socket) => sockets.add(socket));
  const sockets = new Set<Socket>();
  let silentPort = 0;
  beforeAll(async () => {
    const base = await findFreeBase([0, 1, 2]);
    refused = [base, base + 1, base + 2];
    await new Promise<void>((resolve) => silent.listen({ host: '127.0.0.1', port: 0 }, resolve));
    silentPort = (silent.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  /** `voldfs mount -f` on a fresh empty directory: must exit non-zero, unmounted, within `boundMs`. */
  async function mountFails(name: string, env: Record<string, string>, boundMs: number): Promise<string> {
    const dir = join(work, `unreachable-${name}`);
    await mkdir(dir);
    const started = Date.now();
    const r = await voldfs(['mount', '-f', dir], { ...env, VOLDFS_STATE_DIR: join(work, 'state') });
    const ms = Date.now() - started;
    expect(r.code, r.stderr).toBe(1);
    expect(ms, `${name}: the mount took ${ms} ms to fail`).toBeLessThan(boundMs);
    expect(await isFuseMounted(dir)).toBe(false);
    return r.stderr;
  }

  it('Redis: names the address, the reason and VOLDFS_REDIS_URL', async () => {
    const stderr = await mountFails('redis', { VOLDFS_DB: 'redis', VOLDFS_REDIS_URL: `redis://127.0.0.1:${refused[0]}` }, 15_000);
    expect(stderr).toMatch(new RegExp(`cannot open the Redis store: Redis redis://127\\.0\\.0\\.1:${refused[0]} is unavailable .*ECONNREFUSED.*correct VOLDFS_REDIS_URL`));
  });

  it('Redis Cluster: names the seed nodes and VOLDFS_REDIS_CLUSTER', async () => {
    const nodes = refused.map((p) => `127.0.0.1:${p}`).join(',');
    const stderr = await mountFails('redis-cluster', { VOLDFS_DB: 'redis', VOLDFS_REDIS_CLUSTER: nodes }, 15_000);
    expect(stderr).toContain(`cannot open the Redis store: Redis cluster ${nodes} is unavailable`);
    expect(stderr).toMatch(/None of startup nodes is available.*correct VOLDFS_REDIS_CLUSTER/);
  });

  it('etcd: names every member URL with its error, and VOLDFS_HTTP_URLS', async () => {
    const urls = refused.map((p) => `http://127.0.0.1:${p}`);
    const stderr = await mountFails('etcd', { VOLDFS_DB: 'http', VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: urls.join(',') }, 20_000);
    expect(stderr).toMatch(/cannot open the etcd store: no etcd endpoint could serve the connection check/);
    for (const url of urls) expect(stderr).toContain(`${url}: connect ECONNREFUSED`);
    expect(stderr).toMatch(/correct VOLDFS_HTTP_URLS/);
  });

  it('memcached: every server of the pool down names a server, the reason and VOLDFS_MC_SERVERS', async () => {
    const servers = refused.map((p) => `127.0.0.1:${p}`).join(',');
    const stderr = await mountFails('memcached', { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: servers }, 15_000);
    expect(stderr).toMatch(/voldfs: cannot connect to memcached at 127\.0\.0\.1:\d+: ECONNREFUSED.*VOLDFS_MC_SERVERS/);
  });

  it('status and dump name the setting, exit 1 and write no dump file', async () => {
    const stores: [string, Record<string, string>, RegExp][] = [
      ['redis', { VOLDFS_DB: 'redis', VOLDFS_REDIS_URL: `redis://127.0.0.1:${refused[0]}` }, /cannot open the Redis store: .*ECONNREFUSED.*correct VOLDFS_REDIS_URL/],
      ['memcached', { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: refused.map((p) => `127.0.0.1:${p}`).join(',') }, /cannot connect to memcached at 127\.0\.0\.1:\d+: ECONNREFUSED.*VOLDFS_MC_SERVERS/],
      ['etcd', { VOLDFS_DB: 'http', VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: `http://127.0.0.1:${refused[1]}` }, /cannot open the etcd store: .*ECONNREFUSED.*correct VOLDFS_HTTP_URLS/],
    ];
    for (const [name, env, message] of stores) {
      const status = await voldfs(['status'], env);
      expect(status.code, `${name}: ${status.stderr}`).toBe(1);
      expect(status.stderr).toMatch(message);
      expect(status.stdout).toBe('');
      const file = join(work, `unreachable-${name}.dump`);
      const dump = await voldfs(['dump', file], env);
      expect(dump.code, `${name}: ${dump.stderr}`).toBe(1);
      expect(dump.stderr).toMatch(message);
      await expect(stat(file), `${name}: dump left ${file}`).rejects.toThrow(/ENOENT/);
      const piped = await voldfs(['dump', '-'], env);
      expect(piped.code).toBe(1);
      expect(piped.stdout).toBe('');
    }
  }, 120_000);

  it('status and dump of a store that holds no volume say so and format nothing', async () => {
    const path = join(work, 'empty-store');
    const env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: path, VOLDFS_VOLUME: 'absent' };
    for (const args of [['status'], ['dump', join(work, 'absent.dump')]]) {
      const r = await voldfs(args, env);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/no volume under "absent:": run voldfs mkfs, or check VOLDFS_DB, its servers or path, and VOLDFS_VOLUME/);
    }
    await expect(stat(join(work, 'absent.dump'))).rejects.toThrow(/ENOENT/);
    const db = openLmdb<Buffer, string>({ path, encoding: 'binary' });
    expect([...db.getKeys()]).toEqual([]);
    await db.close();
  });

  it('a server that accepts but never answers fails the mount after the time limit, saying so', async () => {
    const redis = await mountFails('silent-redis', { VOLDFS_DB: 'redis', VOLDFS_REDIS_URL: `redis://127.0.0.1:${silentPort}`, VOLDFS_REDIS_TIMEOUT_MS: '1000' }, 15_000);
    expect(redis).toMatch(/cannot open the Redis store: .* is unavailable .*no answer within \d+ ms.*VOLDFS_REDIS_URL/);
    const etcd = await mountFails('silent-etcd', { VOLDFS_DB: 'http', VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: `http://127.0.0.1:${silentPort}`, VOLDFS_HTTP_TIMEOUT_MS: '1000' }, 15_000);
    expect(etcd).toMatch(/did not answer the connection check within 1000 ms.*VOLDFS_HTTP_TIMEOUT_MS/);
  }, 60_000);
});

describe('mkfs over an existing volume', () => {
  it('refuses without --force and keeps the files', async () => {
    const env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'mkfs-store'), VOLDFS_STATE_DIR: join(work, 'state') };
    const m = await mountVoldfs({ env });
    await writeFile(join(m.dir, 'precious'), 'still here');
    await m.unmount();
    const r = await voldfs(['mkfs'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/a volume already exists .*use --force to replace it/);
    await m.remount();
    try {
      expect(await readFile(join(m.dir, 'precious'), 'utf8')).toBe('still here');
    } finally {
      await m.unmount();
    }
  });
});

describe('a record that fails to decode', () => {
  let mount: VoldfsMount | undefined;
  const storePath = () => join(work, 'corrupt-store');

  beforeAll(async () => {
    const env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: storePath(), VOLDFS_STATE_DIR: join(work, 'state') };
    mount = await mountVoldfs({ env });
    await writeFile(join(mount.dir, 'broken'), 'x');
    await writeFile(join(mount.dir, 'fine'), 'y');
    const ino = (await stat(join(mount.dir, 'broken'))).ino;
    await mount.unmount();
    // Overwrite the inode record with bytes of an unknown format version, as a damaged or
    // foreign record would be; the version stays an LMDB version so only decoding fails.
    const db = openLmdb<Buffer, string>({ path: storePath(), useVersions: true, encoding: 'binary' });
    const key = `voldfs:i:${ino}`;
    const entry = db.getEntry(key);
    expect(entry).toBeDefined();
    await db.put(key, Buffer.from([0x7f, 1, 2, 3]), entry!.version! + 1);
    await db.close();
    await mount.remount();
  });
  afterAll(async () => {
    await mount?.unmount();
  });

  it('reads as EIO with a log line naming the record, and the rest of the volume still works', async () => {
    const dir = mount?.dir ?? '';
    await expect(stat(join(dir, 'broken'))).rejects.toMatchObject({ code: 'EIO' });
    expect(await readFile(join(dir, 'fine'), 'utf8')).toBe('y');
    const log = await readFile(mount?.logFile ?? '', 'utf8');
    expect(log).toMatch(/record voldfs:i:\d+ has format version 127/);
  });
});

afterAll(async () => {
  await chmod(work, 0o755).catch(() => undefined);
});
