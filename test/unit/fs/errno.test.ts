import { constants } from 'node:os';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { IntegrityError, StoreFull, StoreTimeout, StoreUnavailable, ValueTooLarge } from '../../../src/backends/errors.js';
import { ContentionError } from '../../../src/cas/retry.js';
import { toErrno } from '../../../src/fs/errno.js';
import { FsError } from '../../../src/inode/fs-error.js';
import { BlockMissing } from '../../../src/translators/block-store.js';

const { errno } = constants;

/** A logger that keeps its lines, parsed. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const LEVEL = { debug: 20, warn: 40, error: 50 } as const;

describe('toErrno', () => {
  const cases: [string, unknown, number, keyof typeof LEVEL][] = [
    ['an FsError by its code', new FsError('ENOTEMPTY'), errno.ENOTEMPTY, 'debug'],
    ['a full store', new StoreFull('memcached is out of memory'), errno.ENOSPC, 'warn'],
    ['a record past the item limit', new ValueTooLarge('k', 2e6, 1e6), errno.EFBIG, 'error'],
    ['a missing block', new BlockMissing('b1'), errno.EIO, 'error'],
    ['a record failing its checksum', new IntegrityError('chunk map c: bad checksum'), errno.EIO, 'error'],
    ['an unreachable store', new StoreUnavailable('connection refused'), errno.EIO, 'error'],
    ['a store that timed out', new StoreTimeout('no answer in 5000 ms'), errno.EIO, 'error'],
    ['contention past the retry budget', new ContentionError('gave up'), errno.EIO, 'error'],
    ['a bug', new TypeError('x is undefined'), errno.EIO, 'error'],
    ['a thrown non-Error', 'a string', errno.EIO, 'error'],
  ];

  it.each(cases)('maps %s to its errno, negative, with a log line at its level', (_name, err, code, level) => {
    const { log, lines } = capturingLogger();
    expect(toErrno(err, log, 'op', 7)).toBe(-code);
    expect(lines).toHaveLength(1);
    expect(lines[0].level).toBe(LEVEL[level]);
    expect(lines[0]).toMatchObject({ op: 'op', ino: 7 });
  });

  it('names voldfs fsck in the error line of damage, so an operator knows what to run', () => {
    for (const damage of [new IntegrityError('allocator record a is missing'), new BlockMissing('b')]) {
      const { log, lines } = capturingLogger();
      toErrno(damage, log, 'read', 3);
      expect(String(lines[0].fix)).toContain('voldfs fsck');
      expect(String(lines[0].msg)).toMatch(/damaged/);
    }
  });

  it('logs the stack of an unexpected error', () => {
    const { log, lines } = capturingLogger();
    toErrno(new TypeError('boom'), log, 'write', 1);
    const logged = lines[0].err as { stack?: string; message?: string };
    expect(logged.message).toBe('boom');
    expect(logged.stack).toContain('TypeError: boom');
  });
});
