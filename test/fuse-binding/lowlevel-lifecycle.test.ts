// Lifetime of the low-level binding: lookup counts (forget), interrupts, unmounting while
// requests are in flight or from outside, and the addon loader's error message.
import { spawn } from 'node:child_process';
import { mkdir, readdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LowLevelSession, loadAddon, loadErrorMessage, mountArgs, type Request } from 'fuse-native/lowlevel';
import { isFuseMounted } from '../helpers/mountinfo.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { type LowLevelMount, mountMemoryLL, sh, waitFor } from './lowlevel-mount.js';

const SERVE = join(import.meta.dirname, 'lowlevel-serve.mjs');

describe('low-level binding: lookup counts and interrupts', () => {
  let m: LowLevelMount;
  beforeAll(async () => {
    m = await mountMemoryLL();
  });
  afterAll(async () => {
    await m?.close();
  });

  it('lookups minus forgets reach 0 for every file once the kernel drops its caches', async () => {
    const d = join(m.dir, 'counted');
    await mkdir(d);
    const names = Array.from({ length: 40 }, (_, i) => `f${i}`);
    for (const n of names) await writeFile(join(d, n), n);
    for (const n of names) await stat(join(d, n));
    await readdir(d, { withFileTypes: true });
    const root = m.fs.inodes.get(1)!;
    const dirIno = root.children!.get('counted')!;
    const inos = [...m.fs.inodes.get(dirIno)!.children!.values()];
    expect(inos.every((ino) => m.fs.lookups(ino) > 0)).toBe(true);
    await sh('sh', ['-c', 'sync; echo 2 > /proc/sys/vm/drop_caches']);
    await waitFor('forgets', () => [...inos, dirIno].every((ino) => m.fs.lookups(ino) === 0));
    expect(m.fs.session.requestCounts().forget).toBeGreaterThan(0);
    // An unlinked file is freed at its last forget, not before.
    await stat(join(d, 'f1'));
    const f1 = inos[1];
    expect(m.fs.lookups(f1)).toBe(1);
    await unlink(join(d, 'f1'));
    await waitFor('the unlinked file to be freed', () => !m.fs.inodes.has(f1));
    expect(m.fs.lookups(1)).toBe(1); // the root is never forgotten
  });

  it('tells JS when the process behind a held request is killed', async () => {
    let held: Request | undefined;
    let interrupted = false;
    const original = m.fs.ops.lookup;
    m.fs.ops.lookup = (req: Request, parent, name) => {
      if (name !== 'slow') return original(req, parent, name);
      held = req;
      req.onInterrupt(() => {
        interrupted = true;
        req.replyErr('EINTR');
      });
    };
    try {
      const child = spawn('stat', [join(m.dir, 'slow')], { stdio: 'ignore' });
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      await waitFor('the held lookup', () => held !== undefined);
      expect(held!.interrupted).toBe(false);
      expect(held!.context.pid).toBe(child.pid);
      child.kill('SIGKILL');
      await waitFor('the interrupt', () => interrupted);
      expect(held!.interrupted).toBe(true);
      expect(await exited).toBe('SIGKILL');
      expect(held!.pending).toBe(false);
      expect(m.fs.session.outstanding).toBe(0);
    } finally {
      m.fs.ops.lookup = original;
    }
  });
});

describe('low-level binding: notifications', () => {
  let m: LowLevelMount;
  beforeAll(async () => {
    m = await mountMemoryLL({ entryTimeout: 60, attrTimeout: 60 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('notifyInvalInode makes the kernel ask for attributes it had cached for 60 s', async () => {
    const f = join(m.dir, 'grows');
    await writeFile(f, 'abc');
    expect((await stat(f)).size).toBe(3);
    const node = m.fs.inodes.get(m.fs.inodes.get(1)!.children!.get('grows')!)!;
    node.size = 10; // changed behind the kernel's back, as another client of a store would
    expect((await stat(f)).size).toBe(3);
    await m.fs.session.notifyInvalInode(node.ino);
    expect((await stat(f)).size).toBe(10);
  });

  it('notifyInvalEntry and notifyDelete drop names the kernel had cached for 60 s', async () => {
    const root = m.fs.inodes.get(1)!;
    await writeFile(join(m.dir, 'old-name'), 'x');
    await writeFile(join(m.dir, 'doomed'), 'y');
    await stat(join(m.dir, 'old-name'));
    const ino = root.children!.get('old-name')!;
    root.children!.delete('old-name');
    root.children!.set('new-name', ino);
    expect((await stat(join(m.dir, 'old-name'))).ino).toBe(ino); // still cached
    await m.fs.session.notifyInvalEntry(1, 'old-name');
    await expect(stat(join(m.dir, 'old-name'))).rejects.toMatchObject({ code: 'ENOENT' });
    const doomed = root.children!.get('doomed')!;
    root.children!.delete('doomed');
    m.fs.inodes.get(doomed)!.nlink = 0;
    await m.fs.session.notifyDelete(1, doomed, 'doomed');
    await expect(stat(join(m.dir, 'doomed'))).rejects.toMatchObject({ code: 'ENOENT' });
    // A name the kernel never cached: nothing to drop, and no error.
    await m.fs.session.notifyInvalEntry(1, 'never-seen');
  });
});

/** Runs lowlevel-serve.mjs and collects its lines until it exits by itself. */
function serve(dir: string, mode: string, onLine: (line: string) => void): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  const child = spawn(process.execPath, [SERVE, dir, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let rest = '';
  child.stdout.on('data', (b: Buffer) => {
    rest += b.toString();
    const parts = rest.split('\n');
    rest = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      onLine(line);
    }
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, lines, stderr });
    }),
  );
}

describe('low-level binding: unmounting', () => {
  let parent: string;
  let dir: string;
  beforeAll(async () => {
    parent = await makeTempDir('lowlevel-life');
    dir = join(parent, 'mnt');
    await mkdir(dir);
  });
  afterAll(async () => {
    if (await isFuseMounted(dir)) await sh('umount', ['-l', dir]);
    await removeTempDir(parent);
  });

  it('unmount() while JS holds a request: the caller gets EIO, a late reply is ignored, the process exits by itself', async () => {
    const r = await serve(dir, 'inflight', () => {});
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines).toContain('held outstanding=1');
    expect(r.lines).toContain('unmount resolved outstanding=0');
    expect(r.lines).toContain('late reply sent=false');
    expect(r.lines).toContain('second late reply threw ERR_FUSE_ALREADY_REPLIED');
    expect(r.lines).toContain('unmounted external=false');
    expect(r.lines.find((l) => l.startsWith('stat exited'))).toBe('stat exited 1');
    expect(await isFuseMounted(dir)).toBe(false);
  });

  it('an unmount from outside ends the session and the process exits by itself', async () => {
    const r = await serve(dir, 'external', (line) => {
      if (line === 'mounted') void sh('umount', ['-l', dir]);
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines).toEqual(['mounted', 'unmounted external=true']);
    expect(await isFuseMounted(dir)).toBe(false);
  });
});

describe('low-level binding: loading and options', () => {
  it('keeps the request counts of a session after it is unmounted', async () => {
    const m = await mountMemoryLL();
    try {
      await writeFile(join(m.dir, 'one'), 'x');
    } finally {
      await m.close();
    }
    expect(m.fs.session.mounted).toBe(false);
    expect(m.fs.session.requestCounts()).toMatchObject({ create: 1, write: 1 });
  });

  it('fails mount() on an option libfuse3 rejects and leaves nothing mounted', async () => {
    const parent = await makeTempDir('lowlevel-badopt');
    const dir = join(parent, 'mnt');
    await mkdir(dir);
    try {
      const session = new LowLevelSession();
      await expect(session.mount(dir, {}, { extraOptions: ['no_such_option'] })).rejects.toThrow(/fuse_session_new failed/);
      expect(session.mounted).toBe(false);
      expect(await isFuseMounted(dir)).toBe(false);
    } finally {
      await removeTempDir(parent);
    }
  });

  it('fails to load a missing addon with a message saying how to build it', () => {
    expect(() => loadAddon('/nonexistent/fuse_lowlevel.node')).toThrow(
      /fuse-native\/lowlevel: cannot load the native addon \/nonexistent\/fuse_lowlevel.node .*scripts\/build-fuse-native .*apt-get install libfuse3-dev libfuse3-3/,
    );
  });

  it('names the package to install when libfuse3 itself is missing', () => {
    const msg = loadErrorMessage('x.node', 'libfuse3.so.3: cannot open shared object file: No such file or directory');
    expect(msg).toMatch(/libfuse3 is missing: apt-get install libfuse3-3/);
  });

  it('builds one -o list, escaping commas, with extra options passed through', () => {
    expect(mountArgs({ fsname: 'a,b', subtype: 'vold', allowOther: true, defaultPermissions: true, readOnly: true, extraOptions: ['noatime'] })).toEqual([
      '-o',
      'fsname=a\\,b,subtype=vold,allow_other,default_permissions,ro,noatime',
    ]);
  });
});
