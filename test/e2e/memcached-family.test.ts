// scripts/copy-remount-checksum through a real mount on the memcached-protocol stores that lack
// add, conditional delete, stats and metadump: a kumofs cluster of three servers (its text and
// its binary gateway port, VOLDFS_MC_SERVERS the only setting) and twemproxy in front of three
// memcached servers. fsck must find each volume clean. On kumofs, one of the three servers is
// then killed while a mount reads the tree, and every file must read back, there and from a
// fresh mount. The tree is small (60
// files of up to 300 KB plus the extras with a 4 MiB file and 300 files in one directory).
// kumofs comes from ../shared/kumofs; without it those cases do not run and say so.
// Needs `npm run build`.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeOnKumofs } from '../helpers/describe-on-kumofs.js';
import type { RunResult } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { Twemproxy } from '../helpers/twemproxy.js';
import { expectFsckClean, makeProofSource, runProof } from './proof-run.js';

const SCRIPT_TIMEOUT_MS = 300_000;
const TEST_TIMEOUT_MS = 2 * SCRIPT_TIMEOUT_MS + 120_000;

function proof(env: Record<string, string>, source: string, args: string[] = []): Promise<RunResult> {
  return runProof({ env, source, args, store: 'mc', timeoutMs: SCRIPT_TIMEOUT_MS, label: env.VOLDFS_MC_SERVERS });
}

let source = '';
let fixture = '';

beforeAll(async () => {
  source = join(await makeTempDir('mc-family-src'), 'src');
  await mkdir(source);
  await makeProofSource(source);
  // One fixture for every proof here, so a verify-only run compares against the same tree.
  fixture = await makeTempDir('mc-family-fixture');
});

describeOnKumofs('memcached-family.test.ts', 'kumofs cluster of three servers', (cluster) => {
  it(
    'text port: copies, remounts, no difference, fsck clean; binary port: the same',
    async () => {
      for (const [volume, port] of [
        ['ktext', cluster().text],
        ['kbin', cluster().binary],
      ]) {
        const env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: port, VOLDFS_VOLUME: volume };
        await proof(env, source, ['--fixture', fixture, '--keep-fixture']);
        await expectFsckClean(env, env.VOLDFS_MC_SERVERS);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'with one of the three servers killed as a mount starts reading, every file reads back, there and through a fresh mount',
    async () => {
      const env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: cluster().text, VOLDFS_VOLUME: 'ktext' };
      // Killed 1.5 s into a verify-only run (as its mount comes up and reads), then read again by a fresh mount.
      const during = proof(env, source, ['--fixture', fixture, '--verify-only', '--no-mkfs']);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await cluster().killServer(2);
      for (const r of [await during, await proof(env, source, ['--fixture', fixture, '--verify-only', '--no-mkfs'])]) {
        expect(r.stdout).toMatch(/^entries +[1-9]/m);
      }
    },
    TEST_TIMEOUT_MS,
  );
});

describe('twemproxy in front of three memcached servers', () => {
  let proxy: Twemproxy | undefined;
  beforeAll(async () => {
    proxy = await Twemproxy.start(3);
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  it(
    'copies, remounts, finds no difference, fsck clean',
    async () => {
      if (!proxy) throw new Error('twemproxy did not start');
      const env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: proxy.address, VOLDFS_VOLUME: 'twem' };
      await proof(env, source);
      await expectFsckClean(env, env.VOLDFS_MC_SERVERS);
    },
    TEST_TIMEOUT_MS,
  );
});
