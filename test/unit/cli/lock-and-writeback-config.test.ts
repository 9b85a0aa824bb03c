import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/cli/config.js';

const env = { HOME: '/tmp' };

describe('VOLDFS_LOCK_LEASE_SECONDS', () => {
  it('defaults to 30 and takes 1 to 3600 seconds', () => {
    expect(parseConfig(env).lockLeaseSeconds).toBe(30);
    expect(parseConfig({ ...env, VOLDFS_LOCK_LEASE_SECONDS: '2.5' }).lockLeaseSeconds).toBe(2.5);
  });
  it.each(['0', '-1', '3601', 'soon'])('refuses %s, naming the variable and the range', (value) => {
    expect(() => parseConfig({ ...env, VOLDFS_LOCK_LEASE_SECONDS: value })).toThrow(/VOLDFS_LOCK_LEASE_SECONDS=.* must be a number of seconds from 1 to 3600/);
  });
});

describe('VOLDFS_WRITEBACK_CACHE', () => {
  it('is off unless 1', () => {
    expect(parseConfig(env).writebackCache).toBe(false);
    expect(parseConfig({ ...env, VOLDFS_WRITEBACK_CACHE: '0' }).writebackCache).toBe(false);
    expect(parseConfig({ ...env, VOLDFS_WRITEBACK_CACHE: '1' }).writebackCache).toBe(true);
  });
  it.each(['yes', 'true', '2'])('refuses %s with what to write instead', (value) => {
    expect(() => parseConfig({ ...env, VOLDFS_WRITEBACK_CACHE: value })).toThrow(/VOLDFS_WRITEBACK_CACHE=.* must be 1 \(on\) or 0 \(off\)/);
  });
});
