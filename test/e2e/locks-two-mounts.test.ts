// File locks shared by two mounts of one volume: flock(1) and fcntl locks (POSIX and OFD)
// taken on one mount block or fail the same lock on the other; a blocked wait ends with EINTR
// when the waiter is signalled; the locks of a mount killed with SIGKILL go once its lease
// (VOLDFS_LOCK_LEASE_SECONDS, 3 here) expires, and fsck --repair drops what is left of them.
// On LMDB, one memcached server and one Redis server; `npm run build` first.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';
import { defaultVoldfsCommand, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { killGroup, run, sleep } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const LEASE_SECONDS = 3;
const FCNTL = join(import.meta.dirname, 'locks', 'fcntl-lock.py');

/** Starts a command that holds a lock until killed; resolves once it printed `ready`. */
async function holder(cmd: string, args: string[], ready: string): Promise<ChildProcess> {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} ${args.join(' ')} did not lock within 20 s: ${out}`)), 20_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before locking: ${out}`));
    });
  });
  child.removeAllListeners('exit');
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  killGroup(child.pid, 'SIGKILL');
  await exited;
}

/** flock(1) holding `file` until killed; "locked" is printed once it has the lock. */
const flockHolder = (file: string) => holder('flock', [file, 'sh', '-c', 'echo locked; exec sleep 300'], 'locked');
const fcntlLock = async (...args: string[]) => (await run('python3', [FCNTL, ...args], { timeoutMs: 30_000 })).stdout.trim();
const flock = (...args: string[]) => run('flock', args, { timeoutMs: 30_000 });

/**
 * Runs `attempt` until it returns `want` or 5 s pass: a killed holder's locks go with the
 * kernel's release of its files, which FUSE sends after the process has gone.
 */
async function eventually(attempt: () => Promise<string>, want: string): Promise<string> {
  const deadline = Date.now() + 5000;
  let got = await attempt();
  while (got !== want && Date.now() < deadline) {
    await sleep(50);
    got = await attempt();
  }
  return got;
}

const STORES = ['lmdb', 'memcached', 'redis'] as const;

describe.each(STORES)('file locks across two mounts on %s', (storeName) => {
  let pool: MemcachedPool | undefined;
  let redis: RedisServers | undefined;
  let env: Record<string, string>;
  let a: VoldfsMount;
  let b: VoldfsMount;

  beforeAll(async () => {
    const work = await makeTempDir('locks');
    const common = { VOLDFS_STATE_DIR: join(work, 'state'), VOLDFS_LOCK_LEASE_SECONDS: String(LEASE_SECONDS) };
    if (storeName === 'memcached') {
      pool = await startMemcachedServers(1);
      env = { ...common, VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: pool.serversValue };
    } else if (storeName === 'redis') {
      redis = await startRedis('single');
      env = { ...common, ...redis.env };
    } else {
      env = { ...common, VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'store.lmdb') };
    }
    a = await mountVoldfs({ env });
    b = await mountVoldfs({ env, mkfs: false });
    await writeFile(join(a.dir, 'f'), 'shared');
    await writeFile(join(a.dir, 'g'), 'shared');
  }, 120_000);
  afterAll(async () => {
    await b?.unmount();
    await a?.unmount().catch(() => undefined);
    await pool?.stop();
    await redis?.stop();
  });

  it('flock on one mount makes flock -n fail on the other, and a blocked flock -w ends at its timeout', async () => {
    const held = await flockHolder(join(a.dir, 'f'));
    try {
      expect((await flock('-n', join(b.dir, 'f'), 'true')).code).toBe(1);
      expect((await flock('-n', '-s', join(b.dir, 'f'), 'true')).code).toBe(1);
      const started = Date.now();
      // flock -w waits with an alarm: the signal interrupts the FUSE request, which answers EINTR.
      expect((await flock('-w', '1', join(b.dir, 'f'), 'true')).code).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await stop(held);
    }
    expect(await eventually(async () => String((await flock('-n', join(b.dir, 'f'), 'true')).code), '0')).toBe('0');
  }, 60_000);

  it('a waiting flock is granted as soon as the other mount releases', async () => {
    const held = await flockHolder(join(a.dir, 'f'));
    const waiting = flock('-w', '20', join(b.dir, 'f'), 'true');
    await sleep(500);
    await stop(held);
    const started = Date.now();
    expect((await waiting).code).toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
  }, 60_000);

  it('fcntl record locks: a conflicting range is refused and reported by F_GETLK, another range is free', async () => {
    const held = await holder('python3', [FCNTL, 'hold', join(a.dir, 'f'), '100', '50'], 'locked');
    try {
      expect(await fcntlLock('try', join(b.dir, 'f'), '120', '10')).toBe('refused EAGAIN');
      expect(await fcntlLock('getlk', join(b.dir, 'f'), '0', '0')).toBe(`write 100 50 ${held.pid}`);
      expect(await fcntlLock('try', join(b.dir, 'f'), '0', '100')).toBe('got');
      expect(await fcntlLock('getlk', join(b.dir, 'f'), '150', '10')).toBe('unlocked');
      expect(await fcntlLock('wait', join(b.dir, 'f'), '149', '1', '1')).toBe('refused EINTR');
    } finally {
      await stop(held);
    }
    expect(await fcntlLock('wait', join(b.dir, 'f'), '149', '1', '5')).toBe('got');
  }, 60_000);

  it('open file description (OFD) locks conflict across mounts too, and go with the last close', async () => {
    const held = await holder('python3', [FCNTL, 'hold', join(a.dir, 'f'), '0', '0', 'ofd'], 'locked');
    try {
      expect(await fcntlLock('try', join(b.dir, 'f'), '10', '1', 'ofd')).toBe('refused EAGAIN');
      expect(await fcntlLock('try', join(b.dir, 'f'), '10', '1')).toBe('refused EAGAIN');
    } finally {
      await stop(held);
    }
    expect(await eventually(() => fcntlLock('try', join(b.dir, 'f'), '10', '1', 'ofd'), 'got')).toBe('got');
  }, 60_000);

  it("releases a killed mount's locks after the lease, and fsck --repair drops the ones nobody touched", async () => {
    const heldF = await flockHolder(join(a.dir, 'f'));
    const heldG = await holder('python3', [FCNTL, 'hold', join(a.dir, 'g'), '0', '0'], 'locked');
    const daemonPid = Number((await readFile(a.logFile.replace(/\.log$/, '.pid'), 'utf8')).trim());
    expect(daemonPid).toBeGreaterThan(0);
    process.kill(daemonPid, 'SIGKILL');
    const killedAt = Date.now();
    expect((await flock('-n', join(b.dir, 'f'), 'true')).code).toBe(1);
    expect((await flock('-w', '20', join(b.dir, 'f'), 'true')).code).toBe(0);
    const waited = Date.now() - killedAt;
    expect(waited).toBeLessThan((LEASE_SECONDS + 3) * 1000);
    await stop(heldF).catch(() => undefined);
    await stop(heldG).catch(() => undefined);
    await a.unmount().catch(() => undefined);

    const cli = [...(await defaultVoldfsCommand()), 'fsck'];
    const fsckEnv = { ...process.env, ...env };
    const check = await run(cli[0], [...cli.slice(1), '--json'], { env: fsckEnv, timeoutMs: 60_000 });
    const kinds = (JSON.parse(check.stdout) as { problems: { kind: string; key?: string }[] }).problems.map((p) => p.kind);
    // The lock on g (nobody asked for it since) and the dead mount's lease.
    expect(kinds.filter((k) => k === 'stale-lock')).toHaveLength(2);
    const repair = await run(cli[0], [...cli.slice(1), '--repair'], { env: fsckEnv, timeoutMs: 60_000 });
    expect(repair.code, repair.stdout + repair.stderr).toBe(0);
    const again = await run(cli[0], [...cli.slice(1), '--json'], { env: fsckEnv, timeoutMs: 60_000 });
    expect((JSON.parse(again.stdout) as { problems: { kind: string }[] }).problems.filter((p) => p.kind === 'stale-lock')).toEqual([]);
    expect(await fcntlLock('try', join(b.dir, 'g'), '0', '0')).toBe('got');
  }, 120_000);
});
