import { createServer, type Server } from 'node:http';
import { rm } from 'node:fs/promises';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { conflictCount } from '../cas/retry.js';
import type { RecordCache } from '../cas/record-cache.js';

/** Latency buckets, seconds: 50 µs to 10 s. */
const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/**
 * What one mount counts, in a prom-client registry: FUSE requests by kind (count, errors,
 * latency), store requests by method (count, failures, latency), record cache hits, retried
 * conflicts, and the process's own (memory, CPU). Served to `voldfs stats` on the control
 * socket and, with VOLDFS_METRICS, in the Prometheus text format.
 */
export class MountMetrics {
  readonly registry = new Registry();
  private readonly requests: Histogram<'op'>;
  private readonly errors: Counter<'op'>;
  private readonly storeRequests: Histogram<'method'>;
  private readonly storeFailures: Counter<'method'>;
  private records: RecordCache | undefined;
  private received: (() => Partial<Record<string, number>>) | undefined;
  private readonly bytesRead: Counter;
  private readonly bytesWritten: Counter;

  constructor() {
    const records = () => this.records;
    const registers = [this.registry];
    this.requests = new Histogram({ name: 'voldfs_fuse_request_seconds', help: 'FUSE requests answered, by kind, and how long each took', labelNames: ['op'], buckets: BUCKETS, registers });
    this.errors = new Counter({ name: 'voldfs_fuse_errors_total', help: 'FUSE requests answered with an error, by kind', labelNames: ['op'], registers });
    this.storeRequests = new Histogram({ name: 'voldfs_store_request_seconds', help: 'Store requests, by method, and how long each took', labelNames: ['method'], buckets: BUCKETS, registers });
    this.storeFailures = new Counter({ name: 'voldfs_store_failures_total', help: 'Store requests that failed (unreachable, refused), by method', labelNames: ['method'], registers });
    this.bytesRead = new Counter({ name: 'voldfs_read_bytes_total', help: 'Bytes answered to read requests', registers });
    this.bytesWritten = new Counter({ name: 'voldfs_written_bytes_total', help: 'Bytes taken by write requests', registers });
    new Counter({
      name: 'voldfs_record_cache_hits_total',
      help: 'Metadata records served from the record cache',
      registers,
      collect() {
        this.reset();
        this.inc(records()?.hits ?? 0);
      },
    });
    new Counter({
      name: 'voldfs_record_cache_misses_total',
      help: 'Metadata records read from the store',
      registers,
      collect() {
        this.reset();
        this.inc(records()?.misses ?? 0);
      },
    });
    const received = () => this.received?.() ?? {};
    new Counter({
      name: 'voldfs_fuse_requests_received_total',
      help: 'FUSE requests the kernel sent, by kind, also those answered without reaching the handlers (forget, security.capability)',
      labelNames: ['op'],
      registers,
      collect() {
        this.reset();
        for (const [op, n] of Object.entries(received())) if (n) this.inc({ op }, n);
      },
    });
    new Counter({
      name: 'voldfs_conflicts_total',
      help: 'Commits that met another client change and were retried',
      registers,
      collect() {
        this.reset();
        this.inc(conflictCount());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'voldfs_' });
  }

  /** Reports the hits and misses of the volume's record cache from now on. */
  countRecords(cache: RecordCache): void {
    this.records = cache;
  }

  /** Reports the FUSE session's counts of requests received from now on. */
  countReceived(counts: () => Partial<Record<string, number>>): void {
    this.received = counts;
  }

  request(op: string, seconds: number, errno: number): void {
    this.requests.observe({ op }, seconds);
    if (errno !== 0) this.errors.inc({ op });
  }

  bytes(read: number, written: number): void {
    if (read > 0) this.bytesRead.inc(read);
    if (written > 0) this.bytesWritten.inc(written);
  }

  store(method: string, seconds: number, failed: boolean): void {
    this.storeRequests.observe({ method }, seconds);
    if (failed) this.storeFailures.inc({ method });
  }
}

/** Serves `metrics` on a unix socket: GET / gives them as JSON, for `voldfs stats`. */
export async function serveControl(metrics: MountMetrics, socketPath: string): Promise<Server> {
  await rm(socketPath, { force: true });
  const server = createServer((req, res) => {
    metrics.registry.getMetricsAsJSON().then(
      (json) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ at: Date.now(), metrics: json }));
      },
      (err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      },
    );
  });
  await listen(server, socketPath);
  return server;
}

/**
 * Serves `metrics` in the Prometheus text format on `address` (`host:port`), for VOLDFS_METRICS.
 * @throws Error naming the address when it cannot listen there
 */
export async function serveMetrics(metrics: MountMetrics, address: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.statusCode = 404;
      res.end('voldfs serves its metrics at /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => {
        res.setHeader('content-type', metrics.registry.contentType);
        res.end(text);
      },
      (err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      },
    );
  });
  try {
    await listen(server, address.port, address.host);
  } catch (err) {
    throw new Error(`VOLDFS_METRICS=${address.host}:${address.port}: cannot listen there (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return server;
}

function listen(server: Server, ...where: [string] | [number, string]): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(...(where as [number, string]), () => {
      server.off('error', reject);
      resolve();
    });
  });
}
