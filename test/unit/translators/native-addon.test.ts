import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/backends/errors.js';
import { requireNativeAddon } from '../../../src/translators/native-addon.js';

describe('native addons', () => {
  it('loads one that is built', () => {
    const addon = requireNativeAddon<{ cipher: unknown }>('@ronomon/crypto-async', 'crypt');
    expect(typeof addon.cipher).toBe('function');
  });

  it('names what needs a missing one, and the command that builds it', () => {
    const load = () => requireNativeAddon('@voldfs-test/not-installed', 'crypt');
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      /^crypt needs the native addon @voldfs-test\/not-installed, which is not built \(Cannot find module .*\): run "\(cd node_modules\/@voldfs-test\/not-installed && npx node-gyp rebuild --nodedir=\/usr\)"$/,
    );
  });
});
