// Kept apart from kumofs-cluster.ts, which scripts (soak, stress) import outside vitest.
import { afterAll, beforeAll, describe } from 'vitest';
import { KUMOFS_MISSING, KumofsCluster, START_TIMEOUT_MS, warnIfKumofsMissing, type KumofsClusterOptions } from './kumofs-cluster.js';

/**
 * A describe block whose tests share one kumofs cluster, started before them and stopped after.
 * Where ../shared/kumofs is absent the block is skipped and `file` says so loudly on stderr.
 * @param body declares the tests; `cluster()` gives the running cluster inside a test
 */
export function describeOnKumofs(file: string, title: string, body: (cluster: () => KumofsCluster) => void, options: KumofsClusterOptions = {}): void {
  warnIfKumofsMissing(file);
  describe.skipIf(KUMOFS_MISSING !== undefined)(title, () => {
    let running: KumofsCluster | undefined;
    beforeAll(async () => {
      running = await KumofsCluster.start(options);
    }, START_TIMEOUT_MS);
    afterAll(async () => {
      await running?.stop();
    });
    body(() => {
      if (!running) throw new Error('the kumofs cluster did not start (see the beforeAll error)');
      return running;
    });
  });
}
