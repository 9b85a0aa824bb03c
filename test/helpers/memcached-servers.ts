import { readFile } from 'node:fs/promises';
/**
 * Real memcached servers for tests: started on 127.0.0.1 on free ports, waited for until they
 * answer, stopped by PID. Each server's command line names a pid file under the test temp
 * root, so the vitest global teardown ends it even if a worker died before its afterAll.
 *
 * Typical use:
 *
 *   let pool: MemcachedPool;
 *   beforeAll(async () => { pool = await startMemcachedServers(3); });
 *   afterAll(async () => { await pool?.stop(); });
 *   ... { VOLDFS_MC_SERVERS: pool.serversValue } ...
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chown } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { makeTempDir, removeTempDir } from './temp-dir.js';

/** Options of {@link startMemcachedServers}; all have defaults. */
export interface MemcachedServerOptions {
  /** -m: memory for items, in MiB. Default 64. */
  readonly memoryMb?: number;
  /** -I: largest item, e.g. `1m`, `512k`. Default `1m`. */
  readonly itemSize?: string;
  /** Start without -M (evict when full). Default false: refuse writes when full. */
  readonly evict?: boolean;
  /** Milliseconds to wait for a server to answer after starting. Default 10,000. */
  readonly startTimeoutMs?: number;
}

const HOST = '127.0.0.1';
const NOBODY = 65534;
const PORT_ATTEMPTS = 5;

/** One memcached process; restartable on the same port (empty, as a real restart would be). */
export class MemcachedServer {
  private child: ChildProcess | undefined;
  private readonly onExit = (): void => {
    // Last resort when the test process ends without stop(): never leave a daemon behind.
    if (this.child?.pid !== undefined && this.child.exitCode === null) this.child.kill('SIGKILL');
  };

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly options: Required<MemcachedServerOptions>,
  ) {}

  /** Starts a server on a free port (or on `port`), and waits until it answers. */
  static async start(options: MemcachedServerOptions = {}, port?: number): Promise<MemcachedServer> {
    const full: Required<MemcachedServerOptions> = {
      memoryMb: options.memoryMb ?? 64,
      itemSize: options.itemSize ?? '1m',
      evict: options.evict ?? false,
      startTimeoutMs: options.startTimeoutMs ?? 10_000,
    };
    const dir = await makeTempDir('memcached');
    if (process.getuid?.() === 0) await chown(dir, NOBODY, NOBODY);
    let lastError: unknown;
    for (let attempt = 0; attempt < (port === undefined ? PORT_ATTEMPTS : 1); attempt++) {
      const server = new MemcachedServer(port ?? (await freePort()), dir, full);
      try {
        await server.launch();
        return server;
      } catch (error) {
        // Another process may have taken the free port between probing and binding: retry.
        lastError = error;
      }
    }
    await removeTempDir(dir);
    throw lastError;
  }

  /** `127.0.0.1:port`, as VOLDFS_MC_SERVERS lists it. */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** PID of the running process, or undefined when stopped. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Ends the process (SIGTERM, SIGKILL after 3 s, or `signal` at once) and waits for its exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) {
      process.off('exit', this.onExit);
      return;
    }
    const exited = once(child, 'exit');
    child.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
      process.off('exit', this.onExit);
    }
  }

  /** Stops the server if it runs and starts a fresh, empty one on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** SIGSTOP: the server keeps its connections but answers nothing, as a hung host would. */
  /**
   * Freezes the server (SIGSTOP) and waits until the kernel shows it stopped: a thread already
   * running on the other core could otherwise still answer a request sent right after.
   */
  async pause(): Promise<void> {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    this.child?.kill('SIGSTOP');
    for (let i = 0; i < 200; i++) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      if (/^State:\s+T/m.test(status)) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`memcached ${pid} did not stop after SIGSTOP`);
  }

  resume(): void {
    if (this.running) this.child?.kill('SIGCONT');
  }

  /** Stops the server for good and removes its directory. */
  async dispose(): Promise<void> {
    await this.stop();
    await removeTempDir(this.dir);
  }

  /** `stats` (or `stats <group>`) over the text protocol, as name -> value. */
  async stats(group = ''): Promise<Map<string, string>> {
    const reply = await textCommand(this.port, group ? `stats ${group}` : 'stats', 5000);
    const stats = new Map<string, string>();
    for (const line of reply) {
      const [tag, name, ...value] = line.split(' ');
      if (tag === 'STAT' && name !== undefined) stats.set(name, value.join(' '));
    }
    return stats;
  }

  /** Number of items the server holds (`curr_items`). */
  async itemCount(): Promise<number> {
    return Number((await this.stats()).get('curr_items'));
  }

  private args(): string[] {
    const args = ['-l', HOST, '-p', String(this.port), '-U', '0', '-m', String(this.options.memoryMb)];
    args.push('-I', this.options.itemSize, '-t', '2', '-P', join(this.dir, `memcached-${this.port}.pid`));
    if (!this.options.evict) args.push('-M');
    if (process.getuid?.() === 0) args.push('-u', 'nobody');
    return args;
  }

  private async launch(): Promise<void> {
    const child = spawn('memcached', this.args(), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    process.on('exit', this.onExit);
    let spawnError: Error | undefined;
    child.once('error', (error) => {
      spawnError = error;
    });
    const deadline = Date.now() + this.options.startTimeoutMs;
    try {
      for (;;) {
        if (spawnError) throw new Error(`cannot start memcached (is it installed?): ${spawnError.message}`);
        if (!this.running) throw new Error(`memcached on port ${this.port} exited at start: ${stderr.trim()}`);
        const answered = await textCommand(this.port, 'version', 1000).then(
          (lines) => lines.some((l) => l.startsWith('VERSION')),
          () => false,
        );
        if (answered) return;
        if (Date.now() > deadline) throw new Error(`memcached on port ${this.port} did not answer within ${this.options.startTimeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } catch (error) {
      await this.stop('SIGKILL');
      throw error;
    }
  }
}

/** Several servers, in VOLDFS_MC_SERVERS order. */
export class MemcachedPool {
  constructor(readonly servers: readonly MemcachedServer[]) {}

  /** The value for VOLDFS_MC_SERVERS. */
  get serversValue(): string {
    return this.servers.map((s) => s.address).join(',');
  }

  /** Stops every server by PID and removes their directories; safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.dispose()));
  }
}

/** Starts `count` servers on free ports; on failure, stops the ones already started. */
export async function startMemcachedServers(count: number, options: MemcachedServerOptions = {}): Promise<MemcachedPool> {
  const servers: MemcachedServer[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await MemcachedServer.start(options));
  } catch (error) {
    await Promise.all(servers.map((s) => s.dispose()));
    throw error;
  }
  return new MemcachedPool(servers);
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, HOST);
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  await once(probe, 'close');
  if (address === null || typeof address === 'string') throw new Error('cannot find a free port');
  return address.port;
}

/** Sends one text-protocol command and returns the reply's lines up to END/VERSION/ERROR. */
async function textCommand(port: number, command: string, timeoutMs: number): Promise<string[]> {
  const socket = connect({ host: HOST, port });
  socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`memcached on port ${port} did not answer ${command}`)));
  try {
    await once(socket, 'connect');
    socket.write(`${command}\r\n`);
    let text = '';
    for await (const chunk of socket) {
      text += (chunk as Buffer).toString('latin1');
      const lines = text.split('\r\n');
      const last = lines[lines.length - 2];
      if (last !== undefined && /^(END|VERSION|ERROR|CLIENT_ERROR|SERVER_ERROR)/.test(last)) return lines.slice(0, -1);
    }
    throw new Error(`memcached on port ${port} closed the connection during ${command}`);
  } finally {
    socket.destroy();
  }
}
