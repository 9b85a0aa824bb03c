// The POSIX check table against a plain local directory: proves the checks match Linux.
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../helpers/temp-dir.js';
import { DEFAULT_CHECK_TIMEOUT_MS, POSIX_CHECKS, prepareCheckDir } from './posix-checks.js';

let root = '';
beforeAll(async () => {
  root = await makeTempDir('posix-local');
});

it('check names are unique', () => {
  const names = POSIX_CHECKS.map((c) => c.name);
  expect(new Set(names).size).toBe(names.length);
});

for (const check of POSIX_CHECKS) {
  describe(check.name, () => {
    it('passes on a local directory', async () => {
      await check.run(await prepareCheckDir(root, check));
    }, check.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS);
  });
}
