import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/cli/config.js';
import { runFsck } from '../../src/cli/fsck-command.js';
import { openStore } from '../../src/cli/open-store.js';
import { FileSystem } from '../../src/inode/filesystem.js';
import { S_IFREG } from '../../src/inode/records.js';
import { Volume } from '../../src/inode/volume.js';
import { patternBytes } from '../helpers/pattern.js';
import { run } from '../helpers/run.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { silent } from '../unit/fsck/fsck-fixture.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Collects what the command writes. */
function fakeIo(env: NodeJS.ProcessEnv, step = 0) {
  let t = 0;
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s), isTTY: false },
      env,
      now: () => (t += step),
    },
  };
}

describe('voldfs fsck (command)', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let config: Config;

  beforeEach(async () => {
    dir = await makeTempDir('fsck-cli');
    env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: dir, VOLDFS_VOLUME: 'vol', HOME: dir, PATH: process.env.PATH };
    config = parseConfig(env);
    const store = await openStore(config, undefined);
    try {
      const fs = new FileSystem(await Volume.open({ store: store.meta, dataStore: store.data, log: silent, prefix: 'vol:' }));
      for (let i = 0; i < 5; i++) {
        const ino = await fs.namespace.create(1, `f${i}`, S_IFREG | 0o644, { uid: 0, gid: 0 });
        const fh = await fs.files.open(ino, 2);
        // Past the inline threshold, so that each file has a block to lose.
        await fs.files.write(fh, 0, patternBytes(5000 + 1000 * i, i));
        await fs.files.release(fh);
      }
      await fs.close();
    } finally {
      await store.close();
    }
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  /** Deletes the block of /f2's first chunk, straight from the store. */
  async function loseBlock(): Promise<void> {
    const store = await openStore(config, undefined);
    try {
      const keys: string[] = [];
      for await (const key of store.data.scan?.('vol:b:') ?? []) keys.push(key);
      expect(keys).toHaveLength(5);
      expect(await store.data.delete(keys[0])).toBe(true);
    } finally {
      await store.close();
    }
  }

  it('prints a clean report, as text or JSON, and plain progress lines off a terminal', async () => {
    const text = fakeIo(env, 6000);
    expect(await runFsck({}, config, text.io)).toBe(0);
    expect(text.out.stdout).toContain('voldfs fsck of volume vol (check only, online)');
    expect(text.out.stdout).toContain('1 directories, 5 files (34.2 KiB)');
    expect(text.out.stdout).toMatch(/result: clean\n$/);
    expect(text.out.stderr).toMatch(/^voldfs fsck: (intents|scan|walk): /m);

    const json = fakeIo(env);
    expect(await runFsck({ json: true, repair: true }, config, json.io)).toBe(0);
    const report = JSON.parse(json.out.stdout) as { summary: { files: number; repairAsked: boolean }; exitCode: number };
    expect(report).toMatchObject({ summary: { files: 5, repairAsked: true }, exitCode: 0 });
    expect(json.out.stderr).toBe(''); // the clock never moved: no progress line
  });

  it('reports damage left and counts it', async () => {
    await loseBlock();
    const { io, out } = fakeIo(env);
    expect(await runFsck({ repair: true, offline: true }, config, io)).toBe(1);
    expect(out.stdout).toMatch(/\[damage\] block-lost \("\/f\d", inode \d+\): block \S+ of chunk 0 is missing or corrupt beyond repair/);
    expect(out.stdout).toContain('-> NOT REPAIRABLE');
    expect(out.stdout).toContain('result: DAMAGE LEFT (1 problems): exit code 1');
  });

  it('exits 0 clean, 1 with damage left, 2 on usage and configuration errors', async () => {
    const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
      run(process.execPath, ['--import', 'tsx', MAIN, 'fsck', ...args], { env: { ...env, ...extra }, timeoutMs: 30_000 });
    const clean = await cli([]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain('result: clean');

    const usage = await cli(['--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("voldfs: unknown option '--bogus'; see voldfs fsck --help");
    const noVolume = await cli([], { VOLDFS_VOLUME: 'other' });
    expect(noVolume.code).toBe(2);
    expect(noVolume.stderr).toContain('no volume under "other:": nothing to check');

    await loseBlock();
    const damaged = await cli(['--json']);
    expect(damaged.code).toBe(1);
    expect(JSON.parse(damaged.stdout)).toMatchObject({ exitCode: 1, summary: { damageLeft: 1 } });
    expect(damaged.stderr).toContain('voldfs: damage left: 1 problem not repaired (see the report)');
  });
});
