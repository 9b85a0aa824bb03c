/**
 * An in-memory stand-in for a Voldemort REST coordinator, for tests: Voldemort itself (Java,
 * a cluster of storage nodes behind a coordinator) cannot be installed here.
 *
 * It implements the subset voldfs uses, following Voldemort's own code
 * (voldemort.rest.RestRequestValidator and its Get/Put/Delete subclasses,
 * coordinator.CoordinatorWorkerThread, Get/Put/DeleteResponseSender, versioning.VectorClock,
 * store.memory.InMemoryStorageEngine, routing PerformSerialPutRequests):
 *
 * - `GET /{store}/{base64 key}`: 200 with a `multipart/binary` body written as javax.mail's
 *   MimeMultipart writes it (boundary only in the body), one part per stored version with
 *   X-VOLD-Vector-Clock and Content-Length headers; 404 when there is none.
 * - `POST /{store}/{base64 key}`: a put. With a non-empty X-VOLD-Vector-Clock the clock is
 *   used as sent; without one the coordinator's put(key, value) takes the current version
 *   (or a new clock). Either way the clock is incremented at the key's master node and
 *   stamped with the time; if it is BEFORE (or equal to) any stored version the answer is
 *   412 (ObsoleteVersionException), otherwise the versions it descends from are replaced and
 *   the answer is 201 with the new clock in X-VOLD-Vector-Clock.
 * - `DELETE /{store}/{base64 key}`: deletes the versions BEFORE or equal to the given clock
 *   (or to the current version without one): 204, or 404 if nothing was deleted.
 * - Every request needs X-VOLD-Request-Timeout-ms and X-VOLD-Request-Origin-Time-ms (400
 *   otherwise); a POST also needs Content-Type and Content-Length; an unknown store is 400
 *   "Non Existing store client"; a body above 1 MiB closes the connection without an answer,
 *   as the coordinator's HttpChunkAggregator(1048576) does.
 *
 * Not implemented: multi-key GET (`key1,key2`), the schemata store, routing and zone
 * headers, gzip answers, replication between nodes (there is one master node, id 0).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface ClockEntry {
  nodeId: number;
  version: number;
}

interface Clock {
  versions: ClockEntry[];
  timestamp: number;
}

interface Versioned {
  clock: Clock;
  value: Buffer;
}

type Occurred = 'BEFORE' | 'AFTER' | 'CONCURRENTLY';

/** voldemort.versioning.VectorClock.compare: equal clocks are BEFORE, on purpose. */
function compare(v1: Clock, v2: Clock): Occurred {
  let v1Bigger = false;
  let v2Bigger = false;
  const a = new Map(v1.versions.map((e) => [e.nodeId, e.version]));
  const b = new Map(v2.versions.map((e) => [e.nodeId, e.version]));
  for (const [node, version] of a) {
    const other = b.get(node);
    if (other === undefined || version > other) v1Bigger = true;
    else if (version < other) v2Bigger = true;
  }
  for (const node of b.keys()) if (!a.has(node)) v2Bigger = true;
  if (!v1Bigger && !v2Bigger) return 'BEFORE';
  if (v1Bigger && !v2Bigger) return 'AFTER';
  if (!v1Bigger && v2Bigger) return 'BEFORE';
  return 'CONCURRENTLY';
}

function incremented(clock: Clock, nodeId: number, time: number): Clock {
  const versions = clock.versions.map((e) => ({ ...e }));
  const entry = versions.find((e) => e.nodeId === nodeId);
  if (entry) entry.version++;
  else versions.push({ nodeId, version: 1 });
  versions.sort((x, y) => x.nodeId - y.nodeId);
  return { versions, timestamp: time };
}

/** Jackson's rendering of VectorClockWrapper. */
function serialize(clock: Clock): string {
  return JSON.stringify({ versions: clock.versions, timestamp: clock.timestamp });
}

/** RestRequestValidator.hasVectorClock: undefined when absent, Error when malformed. */
function parseClockHeader(text: string | undefined): Clock | undefined | Error {
  if (text === undefined) return undefined;
  try {
    const raw = JSON.parse(text) as { versions?: unknown; timestamp?: unknown };
    if (!Array.isArray(raw.versions)) return new Error('no versions');
    const versions = (raw.versions as { nodeId?: unknown; version?: unknown }[]).map((e) => {
      const nodeId = Number(e.nodeId);
      const version = Number(e.version);
      // ClockEntry: nodeId is a short >= 0, version a long >= 1.
      if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > 32767) throw new Error(`bad nodeId ${String(e.nodeId)}`);
      if (!Number.isSafeInteger(version) || version < 1) throw new Error(`bad version ${String(e.version)}`);
      return { nodeId, version };
    });
    versions.sort((x, y) => x.nodeId - y.nodeId);
    return { versions, timestamp: typeof raw.timestamp === 'number' ? raw.timestamp : 0 };
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

export interface VoldemortRestServerOptions {
  /** Store names served (default `['voldfs']`). */
  readonly stores?: readonly string[];
  /** Node id that increments clocks, the key's master (default 0). */
  readonly masterNodeId?: number;
  /** Serve the records of this server: a second coordinator of the same cluster. */
  readonly sameClusterAs?: VoldemortRestServer;
}

/** Counters a test can assert on. */
export interface RequestCounts {
  get: number;
  post: number;
  delete: number;
}

/** A running server on 127.0.0.1. */
export class VoldemortRestServer {
  readonly counts: RequestCounts = { get: 0, post: 0, delete: 0 };
  private readonly data: Map<string, Map<string, Versioned[]>>;
  private readonly masterNodeId: number;
  private paused = false;
  private readonly heldResponses = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    options: VoldemortRestServerOptions,
  ) {
    // Coordinators of one cluster share its storage nodes: here, one in-memory map.
    this.data = options.sameClusterAs?.data ?? new Map();
    for (const store of options.stores ?? ['voldfs']) if (!this.data.has(store)) this.data.set(store, new Map());
    this.masterNodeId = options.masterNodeId ?? 0;
  }

  /** Starts on a free port of 127.0.0.1 (or on `port`). */
  static async start(options: VoldemortRestServerOptions = {}, port = 0): Promise<VoldemortRestServer> {
    const server = createServer();
    const instance = new VoldemortRestServer(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => instance.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port }, () => resolve());
    });
    return instance;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Versions stored for `key` (a copy), for tests that look behind the protocol. */
  versionsOf(key: string, store = 'voldfs'): { clock: string; value: Buffer }[] {
    return (this.data.get(store)?.get(key) ?? []).map((v) => ({ clock: serialize(v.clock), value: Buffer.from(v.value) }));
  }

  /** Stores a version as another client (or a diverged replica) would, bypassing the checks. */
  inject(key: string, clock: string, value: Buffer, store = 'voldfs'): void {
    const parsed = parseClockHeader(clock);
    if (!parsed || parsed instanceof Error) throw new Error('inject needs a valid clock');
    const map = this.data.get(store);
    if (!map) throw new Error(`no store ${store}`);
    map.set(key, [...(map.get(key) ?? []), { clock: parsed, value: Buffer.from(value) }]);
  }

  /** While paused, requests get no answer (a hung coordinator). */
  pause(paused: boolean): void {
    this.paused = paused;
    if (!paused) for (const res of this.heldResponses) res.destroy();
    this.heldResponses.clear();
  }

  /** Stops listening and drops every connection. Idempotent. */
  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLong = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 1024 * 1024) {
        tooLong = true;
        req.socket.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLong) return;
      if (this.paused) {
        this.heldResponses.add(res);
        return;
      }
      try {
        this.route(req, Buffer.concat(chunks), res);
      } catch (err) {
        error(res, 500, `Internal error: ${(err as Error).message}`);
      }
    });
  }

  private route(req: IncomingMessage, body: Buffer, res: ServerResponse): void {
    const method = req.method ?? '';
    if (method !== 'GET' && method !== 'POST' && method !== 'DELETE') {
      return error(res, 400, `Illegal Http request received at ${Date.now()} ms`);
    }
    const parts = (req.url ?? '').split('?')[0].split('/');
    if (parts.length <= 2 || parts[2] === '') return error(res, 400, 'Error: No key specified !');
    const header = (name: string) => {
      const v = req.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    };
    for (const [name, what] of [
      ['X-VOLD-Request-Timeout-ms', 'timeout'],
      ['X-VOLD-Request-Origin-Time-ms', 'origin time'],
    ] as const) {
      const text = header(name);
      if (text === undefined) return error(res, 400, `Missing ${what} parameter.`);
      if (!/^-?[0-9]+$/.test(text)) return error(res, 400, `Incorrect ${what} parameter. Cannot parse this to long: ${text}`);
      if (Number(text) < 0) return error(res, 400, `${what === 'timeout' ? 'Time out' : 'Origin time'} cannot be negative `);
    }
    const storeName = parts[1];
    const store = this.data.get(storeName);
    if (!store) return error(res, 400, 'Non Existing store client. Critical error.');
    if (parts[2].includes(',')) return error(res, 400, 'multi-key GET is not implemented by this test server');
    const key = Buffer.from(parts[2], 'base64').toString('latin1');
    const clock = parseClockHeader(header('X-VOLD-Vector-Clock'));
    if (clock instanceof Error) return error(res, 400, 'Invalid Vector Clock');

    if (method === 'GET') {
      this.counts.get++;
      const versions = store.get(key) ?? [];
      if (versions.length === 0) return error(res, 404, 'Requested Key does not exist');
      return sendMultipart(res, `/${storeName}/${parts[2]}`, versions, this.counts.get);
    }
    if (method === 'POST') {
      this.counts.post++;
      if (header('Content-Length') === undefined) return error(res, 400, 'Missing Content-Length header');
      if (header('Content-Type') === undefined) return error(res, 400, 'Missing Content-Type header');
      let base: Clock;
      if (clock && clock.versions.length > 0) {
        base = clock;
      } else {
        // DefaultStoreClient.put(key, value): the current version, or a new clock.
        const current = resolve(store.get(key) ?? []);
        base = current ? current.clock : { versions: [], timestamp: 0 };
      }
      const written = incremented(base, this.masterNodeId, Date.now());
      const existing = store.get(key) ?? [];
      const kept: Versioned[] = [];
      for (const item of existing) {
        const occurred = compare(written, item.clock);
        if (occurred === 'BEFORE') {
          return error(res, 412, 'A put request resulted in an ObsoleteVersionException');
        }
        if (occurred !== 'AFTER') kept.push(item);
      }
      kept.push({ clock: written, value: Buffer.from(body) });
      store.set(key, kept);
      res.writeHead(201, { 'Content-Length': '0', 'X-VOLD-Vector-Clock': serialize(written) });
      res.end();
      return;
    }
    this.counts.delete++;
    const existing = store.get(key) ?? [];
    const limit = clock ?? resolve(existing)?.clock;
    if (!limit) return error(res, 404, 'Requested Key with the specified version does not exist');
    const kept = existing.filter((item) => compare(item.clock, limit) !== 'BEFORE');
    if (kept.length === existing.length) return error(res, 404, 'Requested Key with the specified version does not exist');
    if (kept.length === 0) store.delete(key);
    else store.set(key, kept);
    res.writeHead(204, { 'Content-Length': '0' });
    res.end();
  }
}

/** TimeBasedInconsistencyResolver: the version with the latest timestamp. */
function resolve(versions: readonly Versioned[]): Versioned | undefined {
  return versions.reduce<Versioned | undefined>((a, b) => (!a || b.clock.timestamp >= a.clock.timestamp ? b : a), undefined);
}

/** RestErrorHandler.writeErrorResponse. */
function error(res: ServerResponse, status: number, message: string): void {
  const body = `Failure: ${status}. ${message}`;
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=UTF-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** GetResponseSender: MimeMultipart.writeTo, with the boundary only in the body. */
function sendMultipart(res: ServerResponse, location: string, versions: readonly Versioned[], part: number): void {
  const boundary = `----=_Part_${part}_${Math.floor(Math.random() * 2 ** 31)}.${Date.now()}`;
  const pieces: Buffer[] = [];
  for (const v of versions) {
    pieces.push(
      Buffer.from(
        `--${boundary}\r\n` +
          'Content-Type: application/octet-stream\r\n' +
          'Content-Transfer-Encoding: binary\r\n' +
          `X-VOLD-Vector-Clock: ${serialize(v.clock)}\r\n` +
          `Content-Length: ${v.value.length}\r\n\r\n`,
        'latin1',
      ),
      v.value,
      Buffer.from('\r\n', 'latin1'),
    );
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  const body = Buffer.concat(pieces);
  res.writeHead(200, {
    'Content-Type': 'multipart/binary',
    'Content-Transfer-Encoding': 'binary',
    'Content-Location': location,
    'Content-Length': String(body.length),
  });
  res.end(body);
}
