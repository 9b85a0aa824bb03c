/**
 * scripts/memcached-start and scripts/memcached-stop, as a user runs them: servers with -M
 * on 127.0.0.1, a usable VOLDFS_MC_SERVERS value, and a stop that ends exactly those pids.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memcachedBackend } from '../../src/backends/memcached/index.js';
import { processExists, run } from '../helpers/run.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const root = join(import.meta.dirname, '../..');

describe('scripts/memcached-start and memcached-stop', () => {
  let stateDir = '';
  let env: NodeJS.ProcessEnv = {};

  beforeAll(async () => {
    stateDir = await makeTempDir('mc-scripts');
    env = { ...process.env, VOLDFS_MC_STATE_DIR: stateDir, VOLDFS_MC_MEMORY_MB: '16' };
  });
  afterAll(async () => {
    // Stops by the recorded pids even when an assertion failed half-way.
    await run(join(root, 'scripts/memcached-stop'), [], { env, timeoutMs: 20_000 });
    await removeTempDir(stateDir);
  });

  it('starts N servers with -M, prints VOLDFS_MC_SERVERS, and stops them by pid', async () => {
    const started = await run(join(root, 'scripts/memcached-start'), ['2'], { env, timeoutMs: 30_000 });
    expect(started.code, started.stderr).toBe(0);
    const servers = started.stdout.trim();
    expect(servers).toMatch(/^127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);

    const recorded = (await readFile(join(stateDir, 'servers'), 'utf8')).trim().split('\n');
    const pids = recorded.map((line) => Number(line.split(' ')[0]));
    expect(pids).toHaveLength(2);
    for (const pid of pids) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      expect(argv[0]).toBe('memcached');
      expect(argv).toContain('-M');
      expect(argv).toContain('127.0.0.1');
    }

    const store = await memcachedBackend.create(memcachedBackend.parseOptions({ VOLDFS_MC_SERVERS: servers }));
    expect(store.capabilities.placement.domains).toBe(2);
    expect((await store.put('script:k', Buffer.from('v'))).ok).toBe(true);
    await store.close();

    const again = await run(join(root, 'scripts/memcached-start'), ['1'], { env, timeoutMs: 30_000 });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('still running');

    const stopped = await run(join(root, 'scripts/memcached-stop'), [], { env, timeoutMs: 20_000 });
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toContain('stopped 2 memcached server(s)');
    for (const pid of pids) {
      const argv = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      // Gone, or a zombie waiting for its reaper (empty command line).
      expect(processExists(pid) ? argv : '').toBe('');
    }
  });

  it('refuses bad arguments with a usage message', async () => {
    const none = await run(join(root, 'scripts/memcached-start'), [], { env });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('usage');
    const badMemory = await run(join(root, 'scripts/memcached-start'), ['1'], {
      env: { ...env, VOLDFS_MC_MEMORY_MB: 'lots' },
    });
    expect(badMemory.code).toBe(1);
    expect(badMemory.stderr).toContain('VOLDFS_MC_MEMORY_MB must be a whole number of MiB');
  });
});
