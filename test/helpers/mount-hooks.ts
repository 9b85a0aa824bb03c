/**
 * Vitest wiring for {@link mountVoldfs}: mount in beforeAll, always unmount in afterAll (vitest
 * runs afterAll after failed and timed-out tests too; a dead worker is covered by the global
 * teardown).
 */
import { afterAll, beforeAll } from 'vitest';
import { defaultStoreEnv, mountVoldfs, type MountVoldfsOptions, type VoldfsMount } from './mount.js';
import { makeTempDir } from './temp-dir.js';

/** Accessor for a mount that exists between the suite's beforeAll and afterAll. */
export interface MountRef {
  /** The live mount. @throws Error if called outside the suite's lifetime or if mounting failed. */
  get(): VoldfsMount;
}

/**
 * Mounts voldfs for the enclosing describe block (or file). Store: the caller's `VOLDFS_*`
 * variables if `VOLDFS_DB` is set, else a fresh LMDB store in a temp dir; `opts.env` wins over both.
 */
export function useVoldfsMount(opts: MountVoldfsOptions = {}): MountRef {
  let mount: VoldfsMount | undefined;
  let failure: unknown;
  beforeAll(async () => {
    try {
      const storeDir = await makeTempDir('store');
      mount = await mountVoldfs({ ...opts, env: { ...defaultStoreEnv(storeDir), ...opts.env } });
    } catch (err) {
      failure = err;
      throw err;
    }
  });
  afterAll(async () => {
    const m = mount;
    mount = undefined;
    if (m !== undefined) await m.unmount();
  });
  return {
    get(): VoldfsMount {
      if (mount !== undefined) return mount;
      if (failure !== undefined) throw new Error('voldfs is not mounted (mount failed in beforeAll)', { cause: failure });
      throw new Error('voldfs is not mounted: use the mount inside the tests of the suite that called useVoldfsMount');
    },
  };
}
