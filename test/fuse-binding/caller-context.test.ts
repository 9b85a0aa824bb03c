// callerContext(): the uid/gid/pid of the process behind a request, read synchronously at the
// start of a handler, and refused anywhere else.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryFs } from './memory-fs.js';
import { type Mounted, mountMemoryFs, run } from './mounted.js';

const OTHER = 1000;

describe('callerContext', () => {
  let m: Mounted<MemoryFs>;
  beforeAll(async () => {
    m = await mountMemoryFs({ allowOther: true, attrTimeout: 0, entryTimeout: 0 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('gives the uid and gid of a process running as another user', async () => {
    const f = join(m.dir, 'made-by-other');
    await run('setpriv', [`--reuid=${OTHER}`, `--regid=${OTHER}`, '--clear-groups', 'touch', f]);
    await run('setpriv', [`--reuid=${OTHER}`, `--regid=${OTHER}`, '--clear-groups', 'mkdir', join(m.dir, 'dir-by-other')]);

    const create = m.fs.callers.find((c) => c.op === 'create' && c.path === '/made-by-other');
    expect(create?.caller).toMatchObject({ uid: OTHER, gid: OTHER });
    expect(create?.caller.pid).toBeGreaterThan(0);
    expect(create?.caller.pid).not.toBe(process.pid);
    expect((await stat(f)).uid).toBe(OTHER);
    expect((await stat(join(m.dir, 'dir-by-other'))).gid).toBe(OTHER);
  });

  it('gives root and this process for requests made here', async () => {
    await writeFile(join(m.dir, 'made-by-root'), '');
    const create = m.fs.callers.find((c) => c.path === '/made-by-root');
    expect(create?.caller).toEqual({ uid: 0, gid: 0, pid: expect.any(Number), umask: expect.any(Number) });
    const umask = /^Umask:\s+([0-7]+)$/m.exec(await readFile('/proc/self/status', 'utf8'))?.[1];
    expect(create?.caller.umask).toBe(parseInt(umask ?? 'x', 8));
  });

  it('refuses to answer outside a handler', () => {
    expect(() => m.fuse.callerContext()).toThrow(/only valid synchronously inside an operation handler/);
  });

  it('refuses to answer after the first await of a handler', async () => {
    const seen: string[] = [];
    const original = m.fs.ops.getattr;
    m.fs.ops.getattr = (path, cb) => {
      if (path === '/late') {
        seen.push(`sync uid ${m.fuse.callerContext().uid}`);
        void Promise.resolve().then(() => {
          try {
            m.fuse.callerContext();
            seen.push('late: answered');
          } catch (err) {
            seen.push(`late: ${(err as Error).message}`);
          }
          cb(-2);
        });
        return;
      }
      original?.(path, cb);
    };
    try {
      await expect(stat(join(m.dir, 'late'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      m.fs.ops.getattr = original;
    }
    expect(seen[0]).toBe('sync uid 0');
    expect(seen[1]).toMatch(/^late: .*before its first await/);
  });
});
