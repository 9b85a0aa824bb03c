import { createRequire } from 'node:module';
import { ConfigError } from '../backends/errors.js';

/**
 * Loads a native addon that builds from source at install (node-gyp), for `user` (what needs
 * it, as the error names it).
 * @throws ConfigError when it cannot be loaded, saying how to build it
 */
export function requireNativeAddon<T>(name: string, user: string): T {
  try {
    return createRequire(import.meta.url)(name) as T;
  } catch (err) {
    throw new ConfigError(
      `${user} needs the native addon ${name}, which is not built ` +
        `(${(err as Error).message.split('\n')[0]}): run ` +
        `"(cd node_modules/${name} && npx node-gyp rebuild --nodedir=/usr)"`,
    );
  }
}
