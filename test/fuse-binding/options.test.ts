// Mount options: each maps to one libfuse -o option, 0 is a value (not "unset"), bad values and
// unknown options fail the mount with a clear error and leave nothing mounted.
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fuse from 'fuse-native';
import type { MemoryFs } from './memory-fs.js';
import { type Mounted, isMounted, mountMemoryFs, run } from './mounted.js';

/** The option list handed to libfuse after -o (an internal of the binding). */
function optionList(opts: Fuse.Options): string {
  const fuse = new Fuse('/nonexistent', {}, opts) as unknown as { _fuseOptions(): string };
  return fuse._fuseOptions();
}

describe('option list', () => {
  it('is empty without options', () => {
    expect(optionList({})).toBe('');
  });

  it('maps every option, keeping 0 values and escaping commas in names', () => {
    expect(
      optionList({
        allowOther: true,
        bigWrites: true,
        maxWrite: 131072,
        maxRead: 65536,
        useIno: true,
        hardRemove: true,
        userId: 0,
        fsname: 'vold,fs',
        umask: 0o022,
        uid: 0,
        gid: 0,
        entryTimeout: 0,
        attrTimeout: 0.5,
        negativeTimeout: 0,
        extraOptions: ['noatime', 'remember=2'],
      }),
    ).toBe(
      'allow_other,max_read=65536,max_write=131072,big_writes,use_ino,hard_remove,user_id=0,fsname=vold\\,fs,' +
        'umask=22,uid=0,gid=0,entry_timeout=0,attr_timeout=0.5,negative_timeout=0,noatime,remember=2',
    );
  });

  it('leaves out false and undefined', () => {
    expect(optionList({ bigWrites: false, attrTimeout: undefined, maxWrite: undefined })).toBe('');
  });
});

describe('mounting with options', () => {
  let parent: string;
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), 'fuse-binding-opts-'));
  });
  afterAll(async () => {
    for (const name of ['bad', 'unknown']) {
      if (await isMounted(join(parent, name))) await run('fusermount', ['-uz', join(parent, name)]);
    }
    await rm(parent, { recursive: true, force: true });
  });

  it('rejects a bad value with a message naming the option', async () => {
    const dir = join(parent, 'bad');
    await mkdir(dir);
    await expect(new Fuse(dir, {}, { maxWrite: -1 }).mount()).rejects.toThrow(/option maxWrite must be a non-negative number, got -1/);
    await expect(new Fuse(dir, {}, { extraOptions: [''] }).mount()).rejects.toThrow(/extraOptions must be an array of non-empty strings/);
    expect(await isMounted(dir)).toBe(false);
  });

  it('fails on an option libfuse does not know, and leaves nothing mounted', async () => {
    const dir = join(parent, 'unknown');
    await mkdir(dir);
    await expect(new Fuse(dir, {}, { extraOptions: ['definitely_not_an_option'] }).mount()).rejects.toThrow(/fuse_new failed, most likely an unknown mount option/);
    expect(await isMounted(dir)).toBe(false);
  });
});

describe('kernel mount options', () => {
  let m: Mounted<MemoryFs>;
  beforeAll(async () => {
    m = await mountMemoryFs({ allowOther: true, maxRead: 65536, fsname: 'vold,fs', subtype: 'voldtest', bigWrites: true, attrTimeout: 0 });
  });
  afterAll(async () => {
    await m?.close();
  });

  it('reach the kernel as given', async () => {
    const line = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === m.dir);
    const [, after] = (line ?? '').split(' - ');
    const [fstype, source, superOptions] = (after ?? '').split(' ');
    expect(fstype).toBe('fuse.voldtest');
    expect(source).toBe('vold,fs');
    expect(superOptions?.split(',')).toEqual(expect.arrayContaining(['allow_other', 'max_read=65536']));
  });
});
