import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/backends/errors.js';
import { lmdbBackend, parseLmdbOptions } from '../../../src/backends/lmdb/index.js';
import { decodeVersion, encodeVersion, newVersion } from '../../../src/backends/lmdb/versions.js';

describe('LMDB options', () => {
  it('takes VOLDFS_LMDB_PATH, resolving a relative one against the current directory', () => {
    expect(parseLmdbOptions({ VOLDFS_LMDB_PATH: '/srv/vol' }).path).toBe('/srv/vol');
    expect(parseLmdbOptions({ VOLDFS_LMDB_PATH: 'data/vol' }, '/home/u').path).toBe('/home/u/data/vol');
  });

  it('defaults to $XDG_DATA_HOME/voldfs/lmdb, then ~/.local/share/voldfs/lmdb', () => {
    expect(parseLmdbOptions({ XDG_DATA_HOME: '/x/data', HOME: '/home/u' }).path).toBe('/x/data/voldfs/lmdb');
    expect(parseLmdbOptions({ HOME: '/home/u' }).path).toBe('/home/u/.local/share/voldfs/lmdb');
    // The XDG spec says to ignore a relative XDG_DATA_HOME.
    expect(parseLmdbOptions({ XDG_DATA_HOME: 'rel', HOME: '/home/u' }).path).toBe(
      '/home/u/.local/share/voldfs/lmdb',
    );
  });

  it('refuses an empty VOLDFS_LMDB_PATH, naming the variable', () => {
    expect(() => parseLmdbOptions({ VOLDFS_LMDB_PATH: ' ' })).toThrow(ConfigError);
    expect(() => parseLmdbOptions({ VOLDFS_LMDB_PATH: '' })).toThrow(/VOLDFS_LMDB_PATH is set but empty/);
  });

  it('asks for VOLDFS_LMDB_PATH when there is no home directory to default to', () => {
    expect(() => parseLmdbOptions({})).toThrow(/set VOLDFS_LMDB_PATH/);
  });

  it('lists its variable for help texts', () => {
    expect(lmdbBackend.name).toBe('lmdb');
    expect(lmdbBackend.variables.map((v) => v.name)).toEqual(['VOLDFS_LMDB_PATH']);
  });
});

describe('LMDB versions', () => {
  it('are distinct 53-bit integers that survive encoding', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const v = newVersion();
      expect(Number.isSafeInteger(v) && v > 0).toBe(true);
      expect(decodeVersion(encodeVersion(v))).toBe(v);
      seen.add(v);
    }
    expect(seen.size).toBe(10_000);
    expect(decodeVersion(encodeVersion(2 ** 53 - 1))).toBe(2 ** 53 - 1);
  });

  it('reject tokens that are not theirs', () => {
    for (const token of ['', '0', '-1', 'A1', '1.5', 'zzzzzzzzzzzz', '7:3']) {
      expect(decodeVersion(token), token).toBeUndefined();
    }
  });
});
