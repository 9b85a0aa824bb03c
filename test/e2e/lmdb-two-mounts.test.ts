// Two mounts of one LMDB directory (`npm run build` first). Alone, a mount answers an operation
// once its commit is handed to LMDB's write thread; with another process attached it must wait
// for the commit to apply, so that a file closed on one mount opens whole on the other at once.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { runFsck } from './crash/fsck.js';

describe('two mounts of one LMDB directory', () => {
  let work: string;
  let env: Record<string, string>;
  let a: VoldfsMount | undefined;
  let b: VoldfsMount | undefined;

  beforeAll(async () => {
    work = await makeTempDir('lmdb-two');
    env = { VOLDFS_DB: 'lmdb', VOLDFS_LMDB_PATH: join(work, 'store.lmdb'), VOLDFS_STATE_DIR: join(work, 'state'), VOLDFS_LOG_LEVEL: 'info' };
  });
  afterAll(async () => {
    await a?.unmount();
    await b?.unmount();
    await removeTempDir(work);
  });

  it('a file closed on one opens whole on the other at once, both ways, and fsck is clean', async () => {
    a = await mountVoldfs({ env });
    // Alone: operations answered once handed over.
    for (let i = 0; i < 20; i++) await writeFile(join(a.dir, `alone-${i}`), `alone ${i}\n`);
    b = await mountVoldfs({ env, mkfs: false });
    for (let i = 0; i < 20; i++) expect(await readFile(join(b.dir, `alone-${i}`), 'utf8')).toBe(`alone ${i}\n`);
    const mounts = [a, b];
    for (let i = 0; i < 300; i++) {
      const [writer, reader] = i % 2 === 0 ? mounts : [b, a];
      const name = `f${i}`;
      const body = `${i} `.repeat(1 + (i % 700));
      await writeFile(join(writer.dir, name), body);
      expect(await readFile(join(reader.dir, name), 'utf8')).toBe(body);
      // Rewritten in place: the other mount's open must see the new bytes, not its cached ones.
      await writeFile(join(writer.dir, name), body.toUpperCase() + '!');
      expect(await readFile(join(reader.dir, name), 'utf8')).toBe(body.toUpperCase() + '!');
    }
    const logA = await readFile(a.logFile, 'utf8');
    expect(logA).toMatch(/no other process has the store open/);
    expect(logA).toMatch(/another process has the store open: operations wait for their commits to apply/);
    await a.unmount();
    await b.unmount();
    a = b = undefined;
    const fsck = await runFsck(env);
    expect(fsck, 'voldfs fsck ran').toBeDefined();
    expect(fsck!.problems).toEqual([]);
  }, 300_000);
});
