import { setTimeout as sleep } from 'node:timers/promises';
import pLimit, { type LimitFunction } from 'p-limit';
import { StoreError, StoreTimeout, StoreUnavailable } from '../errors.js';

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Path and query after the base URL, starting with `/`. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  /** The base URL that answered. */
  readonly endpoint: string;
  /**
   * Whether the request was sent elsewhere first and lost there: a write it carried may already
   * have been applied once (its connection broke after the server got it).
   */
  readonly retried: boolean;
}

export interface HttpEndpointsOptions {
  /** Base URLs, tried in order starting from the one that answered last. */
  readonly urls: readonly string[];
  /** Time limit of one request, body included, in milliseconds. */
  readonly timeoutMs: number;
  /** Most requests in flight at once. */
  readonly concurrency: number;
  /**
   * How long a request keeps going round the endpoints while none can serve it (all refuse
   * connections, or all are between leaders), in milliseconds; 0 makes one round only.
   */
  readonly retryMs: number;
  /** Names the servers in messages, e.g. `etcd`. */
  readonly label: string;
  /**
   * Whether an answer means "this endpoint cannot serve now, another may" (an etcd member
   * without a leader). Such an answer moves on to the next endpoint, unless it is the last.
   */
  readonly shouldFailover?: (response: HttpResponse) => boolean;
}

/**
 * HTTP requests to a set of equivalent endpoints (etcd members, Voldemort coordinators) with
 * Node's fetch: keep-alive connections, at most `concurrency` requests in flight, a time limit
 * per request. A request that cannot connect to one endpoint is sent to the next; the endpoint
 * that answered is tried first next time. When no endpoint can serve, rounds over all of them
 * repeat with growing pauses for up to `retryMs` (an etcd leader election takes about a second).
 *
 * Moving on after a connection error is safe for requests that never reached the server.
 * A request that reached it and lost its connection before the answer may run twice: the
 * answer says so (`retried`), and callers whose writes are conditional check whether their
 * first attempt applied before reporting a conflict.
 * A timeout is not retried elsewhere (the time limit would multiply), but the next request
 * starts at the next endpoint.
 */
export class HttpEndpoints {
  private current = 0;
  private closed = false;
  private readonly limit: LimitFunction;

  constructor(private readonly options: HttpEndpointsOptions) {
    if (options.urls.length === 0) throw new RangeError('at least one endpoint URL is needed');
    this.limit = pLimit(options.concurrency);
  }

  /**
   * Sends `request` and resolves with any HTTP answer (status codes are the caller's).
   * @param what names the operation for messages, e.g. `get of key a:b`
   * @throws StoreUnavailable when no endpoint can be reached; StoreTimeout when the endpoint
   *   asked did not answer in time
   */
  request(request: HttpRequest, what: string): Promise<HttpResponse> {
    if (this.closed) {
      return Promise.reject(new StoreUnavailable(`the ${this.options.label} store was closed before the ${what}`));
    }
    return this.limit(() => this.send(request, what));
  }

  /** Refuses further requests. Idempotent. */
  close(): void {
    this.closed = true;
  }

  private async send(request: HttpRequest, what: string): Promise<HttpResponse> {
    const { label, retryMs } = this.options;
    const started = Date.now();
    for (let round = 0; ; round++) {
      const delay = Math.min(100 * 2 ** round, 1000);
      const lastRound = this.closed || Date.now() - started + delay >= retryMs;
      const outcome = await this.tryEach(request, what, lastRound, round > 0);
      if (!Array.isArray(outcome)) return outcome;
      if (lastRound) {
        throw new StoreUnavailable(
          `no ${label} endpoint could serve the ${what} (${outcome.join('; ')}); start the server(s) or correct ` +
            'VOLDFS_HTTP_URLS',
        );
      }
      await sleep(delay);
    }
  }

  /**
   * One round over every endpoint: the first usable answer, or the reasons each endpoint
   * failed. In the last round an answer asking for failover is returned as it is.
   */
  private async tryEach(request: HttpRequest, what: string, lastRound: boolean, sentBefore: boolean): Promise<HttpResponse | string[]> {
    const { urls, timeoutMs, label } = this.options;
    const failures: string[] = [];
    const start = this.current;
    for (let i = 0; i < urls.length; i++) {
      const index = (start + i) % urls.length;
      const base = urls[index];
      let response: HttpResponse;
      try {
        const answer = await fetch(base + request.path, {
          method: request.method,
          headers: request.headers,
          body: request.body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        response = {
          status: answer.status,
          headers: answer.headers,
          body: Buffer.from(await answer.arrayBuffer()),
          endpoint: base,
          retried: sentBefore || failures.length > 0,
        };
      } catch (err) {
        this.current = (index + 1) % urls.length;
        if (isTimeout(err)) {
          throw new StoreTimeout(
            `${label} at ${base} did not answer the ${what} within ${timeoutMs} ms; check that it is running ` +
              'and not overloaded, or raise VOLDFS_HTTP_TIMEOUT_MS',
            { cause: err },
          );
        }
        if (!isConnectionError(err)) {
          throw new StoreError(`${label} request to ${base} for the ${what} failed: ${describe(err)}`, { cause: err });
        }
        failures.push(`${base}: ${describe(err)}`);
        continue;
      }
      if (this.options.shouldFailover?.(response) && !(lastRound && i === urls.length - 1)) {
        failures.push(`${base}: HTTP ${response.status} ${response.body.toString('utf8', 0, 200)}`);
        this.current = (index + 1) % urls.length;
        continue;
      }
      this.current = index;
      return response;
    }
    return failures;
  }
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

/** fetch reports every network-level failure (refused, reset, closed) as `TypeError: fetch failed`. */
function isConnectionError(err: unknown): boolean {
  return err instanceof TypeError && err.message === 'fetch failed';
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return err.message;
}
