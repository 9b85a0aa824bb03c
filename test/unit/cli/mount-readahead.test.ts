import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/cli/config.js';
import { readaheadFile, setMountReadahead } from '../../../src/cli/mount-readahead.js';
import { mountEntries, mountedDirs, parseMountinfo } from '../../../src/cli/mountpoint.js';

/** A logger whose lines land in `lines`, parsed. */
function capture(): { log: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('parseMountinfo', () => {
  it('gives the device, type, source and decoded directory of each mount; the last mount of a directory wins', () => {
    const text = [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '95 22 0:52 / /tmp/a\\040b rw,nosuid,nodev,relatime shared:50 - fuse.voldfs voldfs rw,user_id=0,group_id=0',
      '96 95 0:53 / /tmp/a\\040b rw,relatime shared:51 - fuse.voldfs my\\040vol rw,user_id=0,group_id=0',
      'garbage',
    ].join('\n');
    const mounts = parseMountinfo(text);
    expect([...mounts.keys()]).toEqual(['/', '/tmp/a b']);
    expect(mounts.get('/tmp/a b')).toEqual({ dir: '/tmp/a b', fstype: 'fuse.voldfs', device: '0:53', source: 'my vol' });
    expect(mountEntries(text).map((m) => m.device)).toEqual(['254:0', '0:52', '0:53']);
  });
});

describe('VOLDFS_READAHEAD_KB', () => {
  const env = { VOLDFS_LMDB_PATH: '/nonexistent/store' };
  it('defaults to 1024 and takes 0 to leave the kernel default', () => {
    expect(parseConfig(env).readaheadKib).toBe(1024);
    expect(parseConfig({ ...env, VOLDFS_READAHEAD_KB: '0' }).readaheadKib).toBe(0);
  });

  it.each(['-1', '1.5', 'lots', '65537'])('refuses %s, naming the variable and the range', (value) => {
    expect(() => parseConfig({ ...env, VOLDFS_READAHEAD_KB: value })).toThrow(/VOLDFS_READAHEAD_KB=.* must be a whole number of KiB from 0 to 65536/);
  });
});

describe('setMountReadahead', () => {
  // '/' is always mounted; a scratch directory stands in for /sys.
  it('writes the window into the mount\'s bdi entry', async () => {
    const sysfs = await mkdtemp(join(tmpdir(), 'sysfs-'));
    try {
      const device = (await mountedDirs()).get('/')?.device ?? '';
      await mkdir(join(sysfs, 'class', 'bdi', device), { recursive: true });
      const { log } = capture();
      await setMountReadahead('/', 768, log, sysfs);
      expect(await readFile(readaheadFile(device, sysfs), 'utf8')).toBe('768\n');
    } finally {
      await rm(sysfs, { recursive: true, force: true });
    }
  });

  it('keeps the kernel\'s window when the entry cannot be written, saying why and how to skip it', async () => {
    const sysfs = await mkdtemp(join(tmpdir(), 'sysfs-'));
    try {
      const { log, lines } = capture();
      await setMountReadahead('/', 1024, log, sysfs);
      expect(lines).toHaveLength(1);
      expect(lines[0].msg).toMatch(/kernel readahead left at its default: cannot write .*read_ahead_kb.*VOLDFS_READAHEAD_KB=0/);
    } finally {
      await rm(sysfs, { recursive: true, force: true });
    }
  });

  it('warns when the directory is not a mount, and does nothing with 0', async () => {
    const { log, lines } = capture();
    await setMountReadahead('/no/such/mount', 1024, log);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([[40, 'readahead not set: the mount is missing from /proc/self/mountinfo']]);
    await setMountReadahead('/no/such/mount', 0, log);
    expect(lines).toHaveLength(1);
  });
});
