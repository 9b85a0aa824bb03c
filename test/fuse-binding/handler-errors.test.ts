// A handler's mistakes must not hang the kernel request: a synchronous throw answers EIO, a
// second callback is ignored, and a non-numeric error is mapped (null = success, Error = EIO).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fuse from 'fuse-native';
import { type Mounted, isMounted, mountOps, run, waitFor } from './mounted.js';

describe('callback mistakes', () => {
  let m: Mounted<null>;
  beforeAll(async () => {
    const ops: Fuse.Operations = {
      getattr(path, cb) {
        const answer = cb as (err: unknown, stat?: Fuse.Stat) => void;
        if (path === '/') return cb(0, { mode: 0o40755, nlink: 2 });
        if (path === '/null') return answer(null, { mode: 0o100644, size: 7 });
        if (path === '/error') return answer(new Error('store down'));
        if (path === '/twice') {
          cb(0, { mode: 0o100644, size: 1 });
          return cb(Fuse.ENOENT);
        }
        cb(Fuse.ENOENT);
      },
    };
    m = await mountOps(null, ops, { attrTimeout: 0, entryTimeout: 0 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('takes null as success', async () => {
    expect((await stat(join(m.dir, 'null'))).size).toBe(7);
  });

  it('answers EIO for an Error object', async () => {
    await expect(stat(join(m.dir, 'error'))).rejects.toMatchObject({ code: 'EIO' });
  });

  it('ignores a second callback', async () => {
    for (let i = 0; i < 20; i++) expect((await stat(join(m.dir, 'twice'))).size).toBe(1);
    await expect(stat(join(m.dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('a handler that throws', () => {
  let parent: string;
  let dir: string;
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), 'fuse-binding-throw-'));
    dir = join(parent, 'mnt');
    await mkdir(dir);
  });
  afterAll(async () => {
    if (await isMounted(dir)) await run('fusermount', ['-uz', dir]);
    await rm(parent, { recursive: true, force: true });
  });

  it('answers EIO and still reports the exception', async () => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'throwing-fs.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    try {
      await waitFor('the fixture to mount', () => out.includes('mounted'), 10_000);
      await expect(stat(join(dir, 'throw'))).rejects.toMatchObject({ code: 'EIO' });
      await waitFor('the rethrown exception', () => out.includes('uncaught: handler bug'));
      await expect(stat(join(dir, 'other'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
    expect(child.exitCode).toBe(0);
    expect(await isMounted(dir)).toBe(false);
  });
});
