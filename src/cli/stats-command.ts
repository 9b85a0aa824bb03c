import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { parseStateDir } from './config.js';
import { UsageError, stateFiles } from './mountpoint.js';

interface Sample {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}
interface Metric {
  readonly name: string;
  readonly values: Sample[];
}
interface Snapshot {
  readonly at: number;
  readonly metrics: Metric[];
}

/** One mount's figures over an interval: per second, with latency quantiles from the histograms. */
export interface StatsView {
  readonly seconds: number;
  readonly requests: Record<string, { perSecond: number; p50Ms?: number; p99Ms?: number; errors: number }>;
  readonly store: Record<string, { perSecond: number; p50Ms?: number; p99Ms?: number; failures: number }>;
  readonly readMBps: number;
  readonly writeMBps: number;
  readonly recordCacheHitRate?: number;
  readonly conflicts: number;
  readonly rssMB: number;
}

function fetchSnapshot(socketPath: string): Promise<Snapshot> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as Snapshot);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('the mount did not answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

const metric = (s: Snapshot, name: string) => s.metrics.find((m) => m.name === name)?.values ?? [];
const total = (s: Snapshot, name: string) => metric(s, name).reduce((sum, v) => sum + v.value, 0);

/** Per label value of `label`: counts and cumulative buckets of a histogram. */
function histogram(s: Snapshot, name: string, label: string): Map<string, { count: number; buckets: Map<number, number> }> {
  const out = new Map<string, { count: number; buckets: Map<number, number> }>();
  for (const v of metric(s, name)) {
    const key = String(v.labels[label]);
    const entry = out.get(key) ?? { count: 0, buckets: new Map<number, number>() };
    if (v.metricName === `${name}_count`) entry.count = v.value;
    else if (v.metricName === `${name}_bucket` && v.labels.le !== '+Inf') entry.buckets.set(Number(v.labels.le), v.value);
    out.set(key, entry);
  }
  return out;
}

/** The upper bound (ms) of the bucket holding quantile `q` of the observations between two snapshots. */
function quantileMs(before: Map<number, number> | undefined, after: Map<number, number>, count: number, q: number): number | undefined {
  if (count <= 0) return undefined;
  for (const [le, cumulative] of [...after.entries()].sort((a, b) => a[0] - b[0])) {
    if (cumulative - (before?.get(le) ?? 0) >= q * count) return le * 1000;
  }
  return undefined;
}

function rates(before: Snapshot, after: Snapshot, name: string, label: string, errorsName: string, seconds: number) {
  const was = histogram(before, name, label);
  const out: Record<string, { perSecond: number; p50Ms?: number; p99Ms?: number; errors: number }> = {};
  const errorsBefore = new Map(metric(before, errorsName).map((v) => [String(v.labels[label]), v.value]));
  const errorsAfter = new Map(metric(after, errorsName).map((v) => [String(v.labels[label]), v.value]));
  for (const [key, now] of histogram(after, name, label)) {
    const count = now.count - (was.get(key)?.count ?? 0);
    if (count <= 0) continue;
    out[key] = {
      perSecond: count / seconds,
      p50Ms: quantileMs(was.get(key)?.buckets, now.buckets, count, 0.5),
      p99Ms: quantileMs(was.get(key)?.buckets, now.buckets, count, 0.99),
      errors: (errorsAfter.get(key) ?? 0) - (errorsBefore.get(key) ?? 0),
    };
  }
  return out;
}

/** What happened between two snapshots of a mount's metrics. */
export function viewOf(before: Snapshot, after: Snapshot): StatsView {
  const seconds = Math.max(0.001, (after.at - before.at) / 1000);
  const delta = (name: string) => total(after, name) - total(before, name);
  const hits = delta('voldfs_record_cache_hits_total');
  const misses = delta('voldfs_record_cache_misses_total');
  const store = rates(before, after, 'voldfs_store_request_seconds', 'method', 'voldfs_store_failures_total', seconds);
  return {
    seconds,
    requests: rates(before, after, 'voldfs_fuse_request_seconds', 'op', 'voldfs_fuse_errors_total', seconds),
    store: Object.fromEntries(Object.entries(store).map(([k, v]) => [k, { perSecond: v.perSecond, p50Ms: v.p50Ms, p99Ms: v.p99Ms, failures: v.errors }])),
    readMBps: delta('voldfs_read_bytes_total') / 1e6 / seconds,
    writeMBps: delta('voldfs_written_bytes_total') / 1e6 / seconds,
    recordCacheHitRate: hits + misses > 0 ? hits / (hits + misses) : undefined,
    conflicts: delta('voldfs_conflicts_total'),
    rssMB: total(after, 'voldfs_process_resident_memory_bytes') / 1e6,
  };
}

const ms = (v: number | undefined) => (v === undefined ? '-' : v < 1 ? `${(v * 1000).toFixed(0)}µs` : `${v.toFixed(v < 10 ? 1 : 0)}ms`);

/** The view as a terminal table. */
export function renderView(dir: string, v: StatsView): string {
  const lines = [
    `voldfs stats ${dir}   (every ${v.seconds.toFixed(1)} s; Ctrl-C to quit)`,
    `read ${v.readMBps.toFixed(1)} MB/s   write ${v.writeMBps.toFixed(1)} MB/s   record cache hits ${
      v.recordCacheHitRate === undefined ? '-' : `${(v.recordCacheHitRate * 100).toFixed(0)}%`
    }   conflicts ${v.conflicts}   memory ${v.rssMB.toFixed(0)} MB`,
    '',
    'FUSE request       /s      p50      p99   errors',
  ];
  const row = (name: string, r: { perSecond: number; p50Ms?: number; p99Ms?: number }, bad: number) =>
    `${name.padEnd(14)} ${r.perSecond.toFixed(0).padStart(7)} ${ms(r.p50Ms).padStart(8)} ${ms(r.p99Ms).padStart(8)} ${String(bad).padStart(8)}`;
  for (const [op, r] of Object.entries(v.requests).sort((a, b) => b[1].perSecond - a[1].perSecond)) lines.push(row(op, r, r.errors));
  lines.push('', 'store request      /s      p50      p99 failures');
  for (const [method, r] of Object.entries(v.store).sort((a, b) => b[1].perSecond - a[1].perSecond)) lines.push(row(method, r, r.failures));
  return lines.join('\n');
}

/** `voldfs stats DIR [--once] [--json] [--interval S]`: a running mount's figures, refreshed. */
export function registerStatsCommand(program: Command): void {
  program
    .command('stats')
    .description('watch what a mount is doing: requests per second and latency by kind, MB/s, cache hits, store requests, errors')
    .argument('<dir>', 'the mount point')
    .option('--interval <seconds>', 'seconds between refreshes', '1')
    .option('--once', 'print one interval and exit')
    .option('--json', 'print each interval as a JSON line')
    .action(async (dir: string, opts: { interval: string; once?: boolean; json?: boolean }) => {
      const interval = Number(opts.interval);
      if (!(interval >= 0.1 && interval <= 3600)) throw new UsageError(`--interval ${opts.interval} must be seconds from 0.1 to 3600`);
      const socket = stateFiles(parseStateDir(process.env), dir).control;
      if (!existsSync(socket)) {
        throw new UsageError(`no voldfs mount at ${dir} serves statistics (no ${socket}): is it mounted, with this VOLDFS_STATE_DIR?`);
      }
      let before = await fetchSnapshot(socket);
      for (;;) {
        await sleep(interval * 1000);
        const after = await fetchSnapshot(socket);
        const view = viewOf(before, after);
        before = after;
        if (opts.json) process.stdout.write(`${JSON.stringify(view)}\n`);
        else process.stdout.write(`${process.stdout.isTTY && !opts.once ? '\x1b[2J\x1b[H' : ''}${renderView(dir, view)}\n`);
        if (opts.once) return;
      }
    });
}
