import { describe, expect, it } from 'vitest';
import { StoreUnavailable } from '../../../src/backends/errors.js';
import { DegradedWriteLog } from '../../../src/translators/erasure/degraded-writes.js';

describe('degraded write log', () => {
  it('logs the first degraded block at once, then at most one line per 30 s with the count since', () => {
    const lines: Array<Record<string, unknown>> = [];
    let now = 1_000;
    const log = new DegradedWriteLog({ warn: (fields: Record<string, unknown>) => void lines.push(fields) } as never, () => now);
    const down = new StoreUnavailable('cannot connect to memcached at 127.0.0.1:1');
    log.record('a', [1], down);
    expect(lines).toEqual([expect.objectContaining({ block: 'a', missingFragments: [1], blocks: 1, err: down.message })]);
    now += 10_000;
    log.record('b', [1, 2], down);
    now += 19_999;
    log.record('c', [2], down);
    expect(lines).toHaveLength(1);
    now += 1;
    log.record('d', [2], down);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ block: 'd', blocks: 3 });
  });
});
