import { describe, expect, it } from 'vitest';
import { MountMetrics } from '../../../src/cli/metrics.js';
import { viewOf } from '../../../src/cli/stats-command.js';

async function snapshot(metrics: MountMetrics, at: number) {
  // As the control socket sends it: serialized, not live objects of the registry.
  return JSON.parse(JSON.stringify({ at, metrics: await metrics.registry.getMetricsAsJSON() })) as Parameters<typeof viewOf>[0];
}

describe('the stats view', () => {
  it('gives rates, latency quantiles and errors of the interval only, from the histograms', async () => {
    const metrics = new MountMetrics();
    for (let i = 0; i < 50; i++) metrics.request('getattr', 0.2, 0); // before the interval: not counted
    const before = await snapshot(metrics, 0);
    for (let i = 0; i < 98; i++) metrics.request('write', 0.0003, 0);
    metrics.request('write', 0.03, -5);
    metrics.request('write', 0.03, 0);
    metrics.store('commit', 0.002, false);
    metrics.store('commit', 0.002, true);
    metrics.bytes(0, 4_000_000);
    const view = viewOf(before, await snapshot(metrics, 2000));
    expect(view.seconds).toBe(2);
    expect(view.requests.getattr).toBeUndefined();
    expect(view.requests.write).toEqual({ perSecond: 50, p50Ms: 0.5, p99Ms: 50, errors: 1 });
    expect(view.store.commit).toEqual({ perSecond: 1, p50Ms: 2.5, p99Ms: 2.5, failures: 1 });
    expect(view.writeMBps).toBe(2);
    expect(view.readMBps).toBe(0);
  });
});
