/**
 * The copy-remount-checksum proof (scripts/copy-remount-checksum) through every translator
 * stack, on LMDB and on a pool of six memcached servers: a small tree (a few hundred files, a
 * file of several MiB, sparse files, symlinks, hard links) is copied in with cp -a, the volume
 * is unmounted and mounted again, and every entry is compared (type, mode, owner, size, nlink,
 * ns mtime, SHA-256, symlink target, hard-link groups).
 *
 * Then the store itself is opened to check that the stack really was applied: the superblock
 * records it, erasure wrote k+m fragment records per striped block, and with crypt no record
 * holds a marker written into a file. Needs `npm run build` (the CLI runs from dist/).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRepoRoot } from '../helpers/mount.js';
import { startMemcachedServers, type MemcachedPool } from '../helpers/memcached-servers.js';
import { run, type RunResult } from '../helpers/run.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { buildSmallTree } from './translators/small-tree.js';
import { describeRecorded, openVolumeStore } from './translators/volume-store.js';

const PROOF_MS = 300_000;
const MARKER = 'TRANSLATOR-PROOF-CONTENT-MARKER-5d1f';
const STACKS = ['crypt', 'erasure:4+2', 'crypt,erasure:4+2'] as const;

let script = '';
let work = '';
let fixture = '';
let passFile = '';

function proof(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return run(script, args, { env, timeoutMs: PROOF_MS - 30_000 });
}

function expectIdentical(r: RunResult): void {
  const out = `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr.slice(-4000)}`;
  expect(r.code, out).toBe(0);
  expect(r.stdout, out).toMatch(/^RESULT identical$/m);
  expect(r.stdout).toMatch(/^differences {2}0$/m);
  // The tree really went through: hundreds of files, several MB.
  const files = Number(/^entries +\d+ \((\d+) files/m.exec(r.stdout)?.[1]);
  expect(files).toBeGreaterThanOrEqual(300);
  expect(r.stdout).toMatch(/^entries .* [1-9]\d* symlinks, .*; [2-9] hard-link groups\)$/m);
}

beforeAll(async () => {
  script = join(await findRepoRoot(), 'scripts', 'copy-remount-checksum');
  work = await makeTempDir('translators-proof');
  const source = join(work, 'source');
  await buildSmallTree(source, { contentMarker: MARKER });
  passFile = join(work, 'passphrase');
  await writeFile(passFile, 'proof passphrase, not a secret\n', { mode: 0o600 });
  // Build the fixture once, and prove it against a plain directory: the reference result.
  fixture = join(work, 'fixture');
  const r = await proof(['--source', source, '--no-extras', '--fixture', fixture, '--target-dir', join(work, 'plain')], process.env);
  expectIdentical(r);
}, PROOF_MS);

afterAll(async () => {
  if (work) await removeTempDir(work);
});

/** Runs the proof on the store `storeEnv` names with `stack`, then checks the store. */
async function proveStack(stack: (typeof STACKS)[number], storeEnv: Record<string, string>): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...storeEnv,
    VOLDFS_TRANSLATORS: stack,
    VOLDFS_PASSPHRASE_FILE: passFile,
    VOLDFS_STATE_DIR: join(work, 'state'),
    VOLDFS_LOG_LEVEL: 'warn',
  };
  const r = await proof(['--fixture', fixture], env);
  expectIdentical(r);

  // The volume is unmounted now: look at what the translators wrote.
  const store = await openVolumeStore({ ...env, VOLDFS_PASSPHRASE: 'proof passphrase, not a secret' });
  try {
    expect(describeRecorded(await store.superblock())).toBe(stack);
    const blockKeys = await store.blockKeys();
    // Chunks of at most 4 KiB are inline in their chunk maps (metadata): the fixture's bigger
    // files still make a few hundred block records.
    expect(blockKeys.length).toBeGreaterThan(100);
    if (stack.includes('erasure')) {
      // Striped blocks (>= 16 KiB) are six records <id>.0 .. <id>.5 (placement may add ~x).
      const fragments = new Map<string, Set<string>>();
      for (const key of blockKeys) {
        const m = /^(.*)\.(\d+)(~[0-9a-z]+)?$/.exec(key);
        if (!m) throw new Error(`block record ${key} is not an erasure fragment`);
        fragments.set(m[1], (fragments.get(m[1]) ?? new Set()).add(m[2]));
      }
      const sizes = [...fragments.values()].map((s) => s.size);
      expect(sizes.every((n) => n === 3 || n === 6), `fragments per block: ${[...new Set(sizes)].join(',')}`).toBe(true);
      expect(sizes.filter((n) => n === 6).length).toBeGreaterThan(10);
    }
    const dump = await store.dump(store.keys.prefix);
    const all = Buffer.concat([...dump.values()]);
    expect(all.includes(Buffer.from(MARKER)), 'marker found in the store').toBe(!stack.includes('crypt'));
  } finally {
    await store.close();
  }
}

describe('copy-remount-checksum through translators on LMDB', () => {
  for (const stack of STACKS) {
    it(
      `${stack}: the tree comes back identical after a remount`,
      async () => {
        const storeDir = await makeTempDir(`proof-lmdb-${stack.replace(/[^a-z0-9]/g, '')}`);
        try {
          await proveStack(stack, { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(storeDir, 'store.lmdb') });
        } finally {
          await removeTempDir(storeDir);
        }
      },
      PROOF_MS,
    );
  }
});

describe('copy-remount-checksum through translators on six memcached servers', () => {
  let pool: MemcachedPool | undefined;
  beforeAll(async () => {
    pool = await startMemcachedServers(6, { memoryMb: 256 });
  });
  afterAll(async () => {
    await pool?.stop();
  });

  for (const stack of STACKS) {
    it(
      `${stack}: the tree comes back identical after a remount`,
      async () => {
        if (!pool) throw new Error('memcached servers did not start');
        await proveStack(stack, {
          VOLDFS_DB: 'mc',
          VOLDFS_MC_SERVERS: pool.serversValue,
          // One volume per stack on the same servers.
          VOLDFS_VOLUME: `proof-${stack.replace(/[^a-z0-9]/g, '')}`,
        });
      },
      PROOF_MS,
    );
  }
});
