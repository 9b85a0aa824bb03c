// scripts/copy-remount-checksum through a real mount on the memcached-protocol stores that lack
// add, conditional delete, stats and metadump: a kumofs cluster of three servers (its text and
// its binary gateway port, VOLDFS_MC_SERVERS the only setting) and twemproxy in front of three
// memcached servers. fsck must find each volume clean. On kumofs, one of the three servers is
// then killed while a mount reads the tree, and every file must read back, there and from a
// fresh mount. The tree is small (60
// files of up to 300 KB plus the extras with a 4 MiB file and 300 files in one directory).
// kumofs comes from ../shared/kumofs; without it those cases do not run and say so.
// Needs `npm run build`.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KumofsCluster, KUMOFS_MISSING, warnIfKumofsMissing } from '../helpers/kumofs-cluster.js';
import { findRepoRoot } from '../helpers/mount.js';
import { patternBytes } from '../helpers/pattern.js';
import { run, type RunResult } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';
import { Twemproxy } from '../helpers/twemproxy.js';
import { runFsck } from './crash/fsck.js';

const SCRIPT_TIMEOUT_MS = 300_000;
const TEST_TIMEOUT_MS = 2 * SCRIPT_TIMEOUT_MS + 120_000;

async function makeSource(dir: string): Promise<void> {
  for (let d = 0; d < 4; d++) {
    const sub = join(dir, `dir-${d}`, 'nested');
    await mkdir(sub, { recursive: true });
    for (let f = 0; f < 15; f++) {
      const size = (f * 7919 + d * 104_729) % 300_000;
      await writeFile(join(sub, `file-${f}.bin`), patternBytes(size, d * 100 + f + 1));
      await writeFile(join(dir, `dir-${d}`, `note-${f}.txt`), `directory ${d}, note ${f}\n`.repeat(f + 1));
    }
  }
}

async function proof(env: Record<string, string>, source: string, extra: string[] = []): Promise<RunResult> {
  const script = join(await findRepoRoot(), 'scripts', 'copy-remount-checksum');
  const r = await run(script, ['--source', source, '--big-mib', '4', '--wide-files', '300', ...extra], {
    env: { ...process.env, ...env },
    timeoutMs: SCRIPT_TIMEOUT_MS,
  });
  console.log(`[proof ${env.VOLDFS_MC_SERVERS} ${extra.join(' ')}]\n${r.stdout}`);
  expect(r.timedOut, 'copy-remount-checksum timed out').toBe(false);
  expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-3000)}`).toBe(0);
  expect(r.stdout).toMatch(/^differences {2}0$/m);
  expect(r.stdout).toMatch(/^RESULT identical$/m);
  expect(r.stdout).toMatch(/^target +voldfs at .* \(store mc\)$/m);
  return r;
}

async function expectFsckClean(env: Record<string, string>): Promise<void> {
  const fsck = await runFsck(env);
  expect(fsck, 'this build has no voldfs fsck').toBeDefined();
  console.log(`[fsck ${env.VOLDFS_MC_SERVERS}]\n${fsck?.output}`);
  expect(fsck?.problems).toEqual([]);
}

let source = '';
let fixture = '';

beforeAll(async () => {
  source = join(await makeTempDir('mc-family-src'), 'src');
  await mkdir(source);
  await makeSource(source);
  // One fixture for every proof here, so a verify-only run compares against the same tree.
  fixture = await makeTempDir('mc-family-fixture');
});

warnIfKumofsMissing('memcached-family.test.ts');
describe.skipIf(KUMOFS_MISSING !== undefined)('kumofs cluster of three servers', () => {
  let cluster: KumofsCluster | undefined;
  beforeAll(async () => {
    cluster = await KumofsCluster.start({ servers: 3 });
  }, 20 * 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it(
    'text port: copies, remounts, no difference, fsck clean; binary port: the same',
    async () => {
      if (!cluster) throw new Error('kumofs did not start');
      for (const [volume, port] of [
        ['ktext', cluster.text],
        ['kbin', cluster.binary],
      ]) {
        const env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: port, VOLDFS_VOLUME: volume };
        await proof(env, source, ['--fixture', fixture, '--keep-fixture']);
        await expectFsckClean(env);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'with one of the three servers killed as a mount starts reading, every file reads back, there and through a fresh mount',
    async () => {
      if (!cluster) throw new Error('kumofs did not start');
      const env = { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: cluster.text, VOLDFS_VOLUME: 'ktext' };
      // Killed 1.5 s into a verify-only run (as its mount comes up and reads), then read again by a fresh mount.
      const during = proof(env, source, ['--fixture', fixture, '--verify-only', '--no-mkfs']);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await cluster.killServer(2);
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
      await expectFsckClean(env);
    },
    TEST_TIMEOUT_MS,
  );
});
