import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/cli/config.js';
import { parseMountinfo } from '../../../src/cli/mountpoint.js';

describe('parseMountinfo', () => {
  it('gives the device, type and decoded directory of each mount; the last mount of a directory wins', () => {
    const text = [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '95 22 0:52 / /tmp/a\\040b rw,nosuid,nodev,relatime shared:50 - fuse.voldfs voldfs rw,user_id=0,group_id=0',
      '96 95 0:53 / /tmp/a\\040b rw,relatime shared:51 - fuse.voldfs voldfs rw,user_id=0,group_id=0',
      'garbage',
    ].join('\n');
    const mounts = parseMountinfo(text);
    expect([...mounts.keys()]).toEqual(['/', '/tmp/a b']);
    expect(mounts.get('/tmp/a b')).toEqual({ dir: '/tmp/a b', fstype: 'fuse.voldfs', device: '0:53' });
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
