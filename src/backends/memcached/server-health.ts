import type { Logger } from 'pino';
import { StoreTimeout, StoreUnavailable, isUnreachable } from '../errors.js';
import type { BinaryConnection } from './connection.js';
import { checkServerSettings, readServerSettings, type ServerSettings } from './server-settings.js';
import { settleWithin } from '../timeout.js';

/** First wait before probing a server found down, ms; doubles per failed probe. */
const FIRST_BACKOFF_MS = 100;
/** Longest wait between probes of a server that stays down, ms. */
const MAX_BACKOFF_MS = 5000;
/**
 * How long a request for a down server waits for a probe in flight, ms: long enough for a
 * server that just came back to answer, short enough that a hung one does not hang callers.
 */
const ADMIT_WAIT_MS = 250;

export interface ServerHealthOptions {
  readonly allowEviction: boolean;
  /** Smallest item size (-I) the pool was opened with: a server coming back with less is refused. */
  readonly itemSizeMax: () => number;
  readonly log: Logger;
}

/**
 * Whether one server of the pool is up, for a store that starts and runs with some servers
 * down. A request that fails to reach the server (connection refused or lost, no answer in
 * time) marks it down: later requests for its keys fail at once with StoreUnavailable instead
 * of each waiting for the timeout, while the server is probed in the background (`stats
 * settings`, with backoff) and taken back once it answers with usable settings. A request
 * arriving while it is down also starts a probe and waits for it briefly, so a server that is
 * back serves the very next request.
 */
export class ServerHealth {
  private down: StoreUnavailable | StoreTimeout | undefined;
  private probing: Promise<boolean> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private backoffMs = FIRST_BACKOFF_MS;
  private closed = false;

  constructor(
    private readonly connection: BinaryConnection,
    private readonly options: ServerHealthOptions,
  ) {}

  get isDown(): boolean {
    return this.down !== undefined;
  }

  /**
   * Resolves when the server may be sent a request.
   * @throws StoreUnavailable at once (or after a short wait for a probe) while it is down
   */
  async admit(): Promise<void> {
    const down = this.down;
    if (!down) return;
    const probe = this.probe();
    const up = await settleWithin(probe, ADMIT_WAIT_MS, () => false);
    if (up) return;
    const latest = this.down ?? down;
    throw new StoreUnavailable(`${latest.message} (server marked down, retried in the background)`, { cause: latest });
  }

  /** Records a failure to reach the server; other errors say nothing about it being down. */
  noteFailure(error: unknown): void {
    if (this.closed || this.down) return;
    if (!(error instanceof StoreUnavailable || error instanceof StoreTimeout)) return;
    this.markDown(error);
  }

  /** Marks the server down from the start (it could not be reached when the pool was opened). */
  markDown(error: StoreUnavailable | StoreTimeout): void {
    this.down = error;
    this.backoffMs = FIRST_BACKOFF_MS;
    this.options.log.warn({ server: this.connection.label, err: error.message }, 'memcached server down: its keys fail until it is back; retrying in the background');
    this.schedule();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.probe().then((up) => {
        if (!up && !this.closed) {
          this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
          this.schedule();
        }
      });
    }, this.backoffMs);
    this.timer.unref();
  }

  /** One probe at a time; resolves true once the server is back (never rejects). */
  private probe(): Promise<boolean> {
    this.probing ??= this.tryServer().finally(() => {
      this.probing = undefined;
    });
    return this.probing;
  }

  private async tryServer(): Promise<boolean> {
    if (!this.down || this.closed) return !this.down;
    let settings: ServerSettings;
    try {
      settings = await readServerSettings(this.connection);
      checkServerSettings(this.connection.label, settings, this.options.allowEviction);
    } catch (err) {
      // Unreachable again (the latest reason is what callers are told), or answering with
      // settings voldfs refuses: stays down.
      if (isUnreachable(err)) {
        this.down = err;
      } else {
        this.options.log.error({ server: this.connection.label, err: err instanceof Error ? err.message : String(err) }, 'memcached server answers but cannot be used');
      }
      return false;
    }
    if (settings.itemSizeMax < this.options.itemSizeMax()) {
      this.options.log.error(
        { server: this.connection.label, itemSizeMax: settings.itemSizeMax, needed: this.options.itemSizeMax() },
        'memcached server came back with a smaller item size (-I) than the pool: restart it with the same -I',
      );
      return false;
    }
    this.down = undefined;
    clearTimeout(this.timer);
    this.options.log.warn({ server: this.connection.label }, 'memcached server is back');
    return true;
  }
}
