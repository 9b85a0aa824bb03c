// The workload scripts load the test helpers outside vitest: a helper that imports vitest would
// break them at start (it did once). Each must at least print its usage.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findRepoRoot } from '../helpers/mount.js';
import { run } from '../helpers/run.js';

describe('workload scripts start outside vitest', () => {
  for (const script of ['soak', 'stress']) {
    it(`scripts/${script} --help prints its usage`, async () => {
      const root = await findRepoRoot();
      const r = await run('bash', [join(root, 'scripts', script), '--help'], { timeoutMs: 60_000 });
      expect(r.stderr).not.toMatch(/Vitest failed/);
      expect(r.stdout + r.stderr).toMatch(new RegExp(`usage: scripts/${script}`));
      expect(r.code).toBe(0);
    }, 90_000);
  }
});
