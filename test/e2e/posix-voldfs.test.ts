// The POSIX check table against a real voldfs mount (`npm run build` first). Store: the
// VOLDFS_* variables if VOLDFS_DB is set, else a fresh LMDB store. One describe per check:
// `npx vitest run test/e2e/posix-voldfs.test.ts -t 'rename'` runs a subset.
import { describe, it } from 'vitest';
import { useVoldfsMount } from '../helpers/mount-hooks.js';
import { DEFAULT_CHECK_TIMEOUT_MS, POSIX_CHECKS, prepareCheckDir } from './posix-checks.js';

const mount = useVoldfsMount();

for (const check of POSIX_CHECKS) {
  describe(check.name, () => {
    it('passes on voldfs', async () => {
      await check.run(await prepareCheckDir(mount.get().dir, check));
    }, check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS);
  });
}
