import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/backends/errors.js';
import { parseMountOptions, readConfigFile, resolveSettings } from '../../../src/cli/settings.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'voldfs-settings-'));

describe('mount options', () => {
  it('takes every VOLDFS_* setting by its short name, with list values kept whole', () => {
    const o = parseMountOptions(['db=mc,mc_servers=127.0.0.1:11211,127.0.0.1:11212,[::1]:11213,volume=v1', 'cache_seconds=5']);
    expect(o.settings).toEqual({
      VOLDFS_DB: 'mc',
      VOLDFS_MC_SERVERS: '127.0.0.1:11211,127.0.0.1:11212,[::1]:11213',
      VOLDFS_VOLUME: 'v1',
      VOLDFS_CACHE_SECONDS: '5',
    });
    expect(parseMountOptions(['db=http,http_urls=http://127.0.0.1:2379,http://127.0.0.1:2380']).settings.VOLDFS_HTTP_URLS).toBe(
      'http://127.0.0.1:2379,http://127.0.0.1:2380',
    );
  });

  it('tells ro, allow_other and kernel flags apart, and drops what only mount(8) and fstab use', () => {
    const o = parseMountOptions(['defaults,rw,ro,allow_other,nosuid,noatime,_netdev,nofail,noauto,x-systemd.automount,comment=x']);
    expect(o).toEqual({ settings: {}, readOnly: true, allowOther: true, kernel: ['nosuid', 'noatime'] });
  });

  it('refuses an option it does not know, naming it and what it takes', () => {
    expect(() => parseMountOptions(['db=mc,mc_server=a:1'])).toThrow(ConfigError);
    expect(() => parseMountOptions(['db=mc,mc_server=a:1'])).toThrow(/mount option mc_server=\.\.\. is not one voldfs knows; it takes .*mc_servers=/);
    expect(() => parseMountOptions(['writeback'])).toThrow(/mount option writeback is not one voldfs knows/);
    // A bare host:port is a list item only right after a list value.
    expect(() => parseMountOptions(['ro,127.0.0.1:11211'])).toThrow(/127\.0\.0\.1:11211 is not one voldfs knows/);
  });
});

describe('the config file', () => {
  it('reads key=value lines in either spelling, skipping comments and blank lines', () => {
    const file = join(scratch(), 'voldfs.conf');
    writeFileSync(file, '# the store\ndb = redis\n\nVOLDFS_REDIS_URL=redis://127.0.0.1:6379\n  volume=home  \n');
    expect(readConfigFile(file)).toEqual({ VOLDFS_DB: 'redis', VOLDFS_REDIS_URL: 'redis://127.0.0.1:6379', VOLDFS_VOLUME: 'home' });
  });

  it('names the file and line of a line that is not a setting, and a file it cannot read', () => {
    const file = join(scratch(), 'voldfs.conf');
    writeFileSync(file, 'db=lmdb\nlmdb-path /var/lib/voldfs\n');
    expect(() => readConfigFile(file)).toThrow(new RegExp(`${file}:2: "lmdb-path /var/lib/voldfs" is not a setting`));
    expect(() => readConfigFile(join(scratch(), 'missing.conf'))).toThrow(/VOLDFS_CONFIG=.*missing\.conf cannot be read: ENOENT/);
  });

  it('ranks mount options over the environment over the file', () => {
    const file = join(scratch(), 'voldfs.conf');
    writeFileSync(file, 'db=redis\nvolume=from-file\ncache_seconds=7\n');
    const env = { VOLDFS_CONFIG: file, VOLDFS_VOLUME: 'from-env', VOLDFS_DB: 'mc' };
    const settings = resolveSettings(env, parseMountOptions(['db=lmdb']));
    expect(settings.VOLDFS_DB).toBe('lmdb');
    expect(settings.VOLDFS_VOLUME).toBe('from-env');
    expect(settings.VOLDFS_CACHE_SECONDS).toBe('7');
    // A config= option names the file too.
    const viaOption = resolveSettings({}, parseMountOptions([`config=${file}`]));
    expect(viaOption.VOLDFS_DB).toBe('redis');
  });
});
