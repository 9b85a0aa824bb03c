// VOLDFS_WRITEBACK_CACHE=1: the mount asks the kernel for its write-back cache, and the POSIX
// check table and the fsx property test (fewer runs) still pass on it. Store: VOLDFS_* if
// VOLDFS_DB is set, else LMDB. `npm run build` first.
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { useVoldfsMount } from '../helpers/mount-hooks.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { opArb } from './fsx/ops.js';
import { runSequence } from './fsx/runner.js';
import { DEFAULT_CHECK_TIMEOUT_MS, POSIX_CHECKS, prepareCheckDir } from './posix-checks.js';

const FSX_RUNS = Number(process.env.VOLDFS_FSX_RUNS ?? 20);
const FSX_OPS = Number(process.env.VOLDFS_FSX_OPS ?? 40);
const FUSE_CAP_WRITEBACK_CACHE = 1 << 16;

const mount = useVoldfsMount({ env: { VOLDFS_WRITEBACK_CACHE: '1', VOLDFS_LOG_LEVEL: 'debug' } });

describe('with the kernel write-back cache', () => {
  it('the kernel granted it (the daemon logs the negotiated capabilities)', async () => {
    const log = await readFile(mount.get().logFile, 'utf8');
    const line = log.split('\n').find((l) => l.includes('"msg":"FUSE connection"'));
    expect(line, 'no "FUSE connection" line in the daemon log').toBeDefined();
    const conn = (JSON.parse(line!) as { conn: { want: number } }).conn;
    expect(conn.want & FUSE_CAP_WRITEBACK_CACHE).toBe(FUSE_CAP_WRITEBACK_CACHE);
  });

  for (const check of POSIX_CHECKS) {
    it(`POSIX check: ${check.name}`, async () => {
      await check.run(await prepareCheckDir(mount.get().dir, check));
    }, check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS);
  }

  it(`fsx: agrees with a local directory over ${FSX_RUNS} runs of up to ${FSX_OPS} operations`, async () => {
    const refRoot = await makeTempDir('fsx-ref-wb');
    let run = 0;
    const property = fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: FSX_OPS, size: 'max' }), async (ops) => {
      await runSequence(ops, { root: refRoot }, { root: mount.get().dir }, `wb-run-${run++}`);
    });
    const details = await fc.check(property, { numRuns: FSX_RUNS });
    if (details.failed) throw new Error(`${fc.defaultReportMessage(details) ?? 'property failed'}\n${String(details.errorInstance)}`);
    expect(details.numRuns).toBe(FSX_RUNS);
  }, 600_000);
});
