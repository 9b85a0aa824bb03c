/**
 * twemproxy (Debian's nutcracker) in front of a pool of real memcached servers, for tests: it
 * speaks only the memcached text protocol and spreads keys over its servers itself. Started on
 * a free 127.0.0.1 port, stopped by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { portIsFree } from './free-ports.js';
import { startMemcachedServers, type MemcachedPool } from './memcached-servers.js';
import { makeTempDir, removeTempDir } from './temp-dir.js';

const HOST = '127.0.0.1';

export class Twemproxy {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly pool: MemcachedPool,
    readonly port: number,
  ) {}

  /** `127.0.0.1:port` of the proxy, for VOLDFS_MC_SERVERS. */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** Starts `servers` memcached servers (-M, `memoryMb` each, default 64) and nutcracker in front of them. */
  static async start(servers = 3, memoryMb = 64): Promise<Twemproxy> {
    const pool = await startMemcachedServers(servers, { memoryMb });
    const dir = await makeTempDir('twemproxy');
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const port = 20000 + Math.floor(Math.random() * 20000);
        if (!(await portIsFree(port)) || !(await portIsFree(port + 1))) continue;
        const config = join(dir, 'nutcracker.yml');
        await writeFile(
          config,
          [
            'voldfs:',
            `  listen: ${HOST}:${port}`,
            '  hash: fnv1a_64',
            '  distribution: ketama',
            '  auto_eject_hosts: false',
            '  timeout: 4000',
            '  servers:',
            ...pool.servers.map((s) => `   - ${s.address}:1`),
            '',
          ].join('\n'),
        );
        const child = spawn(
          'nutcracker',
          // Its stats port would otherwise listen on 0.0.0.0:22222.
          ['-c', config, '-o', join(dir, 'nutcracker.log'), '-s', String(port + 1), '-a', HOST, '-p', join(dir, 'nutcracker.pid')],
          { stdio: 'ignore' },
        );
        if (await answers(port)) return new Twemproxy(child, dir, pool, port);
        child.kill('SIGKILL');
      }
      throw new Error('nutcracker did not start (is the nutcracker package installed? scripts/setup installs it)');
    } catch (error) {
      await pool.stop();
      await removeTempDir(dir);
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit');
      this.child.kill('SIGTERM');
      await exited;
    }
    await this.pool.stop();
    await removeTempDir(this.dir);
  }
}

async function answers(port: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: HOST, port });
      socket.on('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
