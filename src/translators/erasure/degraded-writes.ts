import type { Logger } from 'pino';

/** How often, at most, degraded writes are logged while a server stays down, ms. */
const REPORT_EVERY_MS = 30_000;

/**
 * Tells the log that blocks are being stored without some of their fragments: the first such
 * block at once, then at most one line per interval with the count since, so a copy of
 * thousands of blocks during an outage is a few lines, not thousands.
 */
export class DegradedWriteLog {
  private unreported = 0;
  private lastAt = -Infinity;

  constructor(
    private readonly log: Pick<Logger, 'warn'>,
    private readonly now: () => number = Date.now,
  ) {}

  record(id: string, missing: readonly number[], reason: Error): void {
    this.unreported++;
    const at = this.now();
    if (at - this.lastAt < REPORT_EVERY_MS) return;
    this.log.warn(
      { block: id, missingFragments: missing, blocks: this.unreported, err: reason.message },
      'blocks stored without the fragments whose servers cannot be reached: they read from the others; ' +
        'run voldfs fsck --repair once the servers are back to restore their redundancy',
    );
    this.unreported = 0;
    this.lastAt = at;
  }
}
