// What a running mount tells about itself: `voldfs stats DIR` over the control socket in the
// state directory, and VOLDFS_METRICS serving the same counters in the Prometheus text format.
// Needs `npm run build`.
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreeBase } from '../helpers/free-ports.js';
import { defaultStoreEnv, findRepoRoot, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { run } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

describe('voldfs stats and VOLDFS_METRICS', () => {
  let mount: VoldfsMount;
  let port: number;
  let env: Record<string, string>;
  let cli: string;

  beforeAll(async () => {
    cli = join(await findRepoRoot(), 'bin', 'voldfs.js');
    port = await findFreeBase([0]);
    env = { ...defaultStoreEnv(await makeTempDir('stats-store')), VOLDFS_METRICS: `127.0.0.1:${port}`, VOLDFS_STATE_DIR: await makeTempDir('stats-state') };
    mount = await mountVoldfs({ env, daemon: true });
  }, 120_000);
  afterAll(async () => {
    await mount?.unmount();
  });

  /** Keeps the mount busy with small files until `until` resolves. */
  async function busy<T>(until: Promise<T>): Promise<T> {
    let done = false;
    const work = (async () => {
      await mkdir(join(mount.dir, 'busy'), { recursive: true });
      for (let i = 0; !done; i++) {
        await writeFile(join(mount.dir, 'busy', `f${i}`), `file ${i}\n`.repeat(100));
        await readFile(join(mount.dir, 'busy', `f${i}`));
      }
    })();
    try {
      return await until;
    } finally {
      done = true;
      await work;
    }
  }

  it('stats shows requests per second and latency by kind, bytes, and store requests', async () => {
    const r = await busy(run('node', [cli, 'stats', mount.dir, '--once', '--json', '--interval', '1'], { env: { ...process.env, ...env } }));
    expect(r.code, r.stderr).toBe(0);
    const view = JSON.parse(r.stdout) as {
      requests: Record<string, { perSecond: number; p50Ms?: number; p99Ms?: number }>;
      store: Record<string, { perSecond: number }>;
      writeMBps: number;
      readMBps: number;
      rssMB: number;
    };
    for (const op of ['create', 'write', 'flush']) {
      expect(view.requests[op]?.perSecond, op).toBeGreaterThan(0);
      expect(view.requests[op]?.p50Ms, op).toBeGreaterThan(0);
      expect(view.requests[op]!.p99Ms!).toBeGreaterThanOrEqual(view.requests[op]!.p50Ms!);
    }
    expect(view.writeMBps).toBeGreaterThan(0);
    expect(view.readMBps).toBeGreaterThan(0);
    expect(Object.values(view.store).reduce((s, m) => s + m.perSecond, 0)).toBeGreaterThan(0);
    expect(view.rssMB).toBeGreaterThan(10);

    const table = await busy(run('node', [cli, 'stats', mount.dir, '--once'], { env: { ...process.env, ...env } }));
    expect(table.stdout).toMatch(/^FUSE request +\/s +p50 +p99 +errors$/m);
    expect(table.stdout).toMatch(/^write +\d+ /m);
  }, 60_000);

  it('serves the counters in the Prometheus text format', async () => {
    await writeFile(join(mount.dir, 'counted'), 'x');
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^# TYPE voldfs_fuse_request_seconds histogram$/m);
    const creates = Number(/^voldfs_fuse_request_seconds_count\{op="create"\} (\d+)$/m.exec(text)?.[1]);
    expect(creates).toBeGreaterThan(0);
    expect(text).toMatch(/^voldfs_store_request_seconds_count\{method="\w+"\} \d+$/m);
    expect(text).toMatch(/^voldfs_process_resident_memory_bytes \d+/m);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
  });

  it('counts the requests the kernel sends per small-file create, also those answered without reaching a handler', async () => {
    const metric = async (): Promise<(name: string, op: string) => number> => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return (name, op) => Number(new RegExp(`^${name}\\{op="${op}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    const dir = join(mount.dir, 'per-file');
    await mkdir(dir);
    const before = await metric();
    const files = 20;
    for (let i = 0; i < files; i++) await writeFile(join(dir, `f${i}`), Buffer.alloc(4096, i));
    // release is sent after close returns
    let after = await metric();
    for (let i = 0; i < 100 && after('voldfs_fuse_requests_received_total', 'release') - before('voldfs_fuse_requests_received_total', 'release') < files; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await metric();
    }
    const received = (op: string) => after('voldfs_fuse_requests_received_total', op) - before('voldfs_fuse_requests_received_total', op);
    const handled = (op: string) => after('voldfs_fuse_request_seconds_count', op) - before('voldfs_fuse_request_seconds_count', op);
    const ops = ['lookup', 'create', 'getxattr', 'write', 'flush', 'release'];
    expect(Object.fromEntries(ops.map((op) => [op, received(op)]))).toEqual(Object.fromEntries(ops.map((op) => [op, files])));
    // The kernel also asks for the directory's attributes after each create changed them.
    expect(received('getattr')).toBeLessThanOrEqual(files);
    // getxattr("security.capability") before each write is answered in the binding.
    expect(handled('getxattr')).toBe(0);
    expect(handled('create')).toBe(files);
  });

  it('says what is wrong with a bad address or a directory that is not a mount', async () => {
    const bad = await run('node', [cli, 'mount', '-f', await makeTempDir('stats-bad')], { env: { ...process.env, ...env, VOLDFS_METRICS: 'localhost' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/VOLDFS_METRICS=localhost is not HOST:PORT/);
    const none = await run('node', [cli, 'stats', await makeTempDir('not-a-mount'), '--once'], { env: { ...process.env, ...env } });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no voldfs mount at .* serves statistics/);
  });
});
