import { connect, type Socket } from 'node:net';
import { StoreTimeout, StoreUnavailable, type StoreError } from '../errors.js';
import { decodeResponse, encodeRequest, frameLength, type Request, type Response } from './protocol.js';
import { formatAddress, type ServerAddress } from './server-address.js';

interface Pending {
  readonly resolve: (responses: Response[]) => void;
  readonly reject: (error: StoreError) => void;
  readonly timer: NodeJS.Timeout;
  /** Multi-response requests (STAT) collect frames until an empty-key terminator or an error. */
  readonly multi: boolean;
  readonly responses: Response[];
}

const HEADER_BYTES = 24;
const OPAQUE_LIMIT = 0x1_0000_0000;

/**
 * One pipelined binary-protocol connection to one memcached server. Requests are matched to
 * responses by their opaque field, so any number can be in flight.
 *
 * It exists instead of memjs's `Server` because a filesystem needs two guarantees that class
 * does not give: every request settles within the timeout (memjs leaves requests pending
 * when the server closes the connection cleanly), and a conditional write is never sent
 * twice (memjs's `Client` retries failed requests, which turns one successful CAS write into
 * a reported conflict).
 *
 * Failures reject every pending request of the connection and drop the socket; the next
 * request reconnects. Errors are StoreUnavailable (cannot connect, connection lost) or
 * StoreTimeout (connected, but no answer within the timeout).
 */
export class BinaryConnection {
  readonly label: string;
  private socket: Socket | undefined;
  private connected = false;
  private closed = false;
  private nextOpaque = 1;
  private readonly pending = new Map<number, Pending>();
  private chunks: Buffer[] = [];
  private buffered = 0;

  /**
   * @param address the server
   * @param timeoutMs how long a request (including connecting) may take before it fails
   */
  constructor(
    readonly address: ServerAddress,
    private readonly timeoutMs: number,
  ) {
    this.label = formatAddress(address);
  }

  /** Sends one request and resolves with its response (any status). */
  async request(request: Request): Promise<Response> {
    const [response] = await this.send(request, false);
    return response;
  }

  /**
   * Sends a request answered by several frames (STAT) and resolves with all of them; the last
   * one has an empty key (the terminator) or a non-zero status.
   */
  async requestMulti(request: Request): Promise<Response[]> {
    return this.send(request, true);
  }

  /** Drops the connection; pending requests fail with StoreUnavailable. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.socket) this.fail(this.socket, new StoreUnavailable(`memcached connection to ${this.label} was closed`));
  }

  private send(request: Request, multi: boolean): Promise<Response[]> {
    if (this.closed) {
      return Promise.reject(new StoreUnavailable(`memcached store is closed (server ${this.label})`));
    }
    const socket = this.socket ?? this.open();
    const opaque = this.takeOpaque();
    return new Promise<Response[]>((resolve, reject) => {
      const timer = setTimeout(() => this.onTimeout(socket), this.timeoutMs);
      this.pending.set(opaque, { resolve, reject, timer, multi, responses: [] });
      // Corking sends header and value in one segment without copying a large value.
      socket.cork();
      for (const part of encodeRequest(request, opaque)) socket.write(part);
      process.nextTick(() => socket.uncork());
    });
  }

  private takeOpaque(): number {
    let opaque = this.nextOpaque;
    while (this.pending.has(opaque)) opaque = (opaque + 1) % OPAQUE_LIMIT;
    this.nextOpaque = (opaque + 1) % OPAQUE_LIMIT;
    return opaque;
  }

  private open(): Socket {
    const socket = connect({ host: this.address.host, port: this.address.port });
    this.socket = socket;
    this.connected = false;
    this.chunks = [];
    this.buffered = 0;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (this.socket === socket) this.connected = true;
    });
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code ?? error.message;
      const message = this.connected
        ? `lost connection to memcached at ${this.label}: ${reason}`
        : `cannot connect to memcached at ${this.label}: ${reason}; check that the server runs ` +
          `(scripts/memcached-start) and that VOLDFS_MC_SERVERS lists it`;
      this.fail(socket, new StoreUnavailable(message, { cause: error }));
    });
    socket.on('close', () => {
      this.fail(socket, new StoreUnavailable(`memcached at ${this.label} closed the connection`));
    });
    return socket;
  }

  private onTimeout(socket: Socket): void {
    const error = this.connected
      ? new StoreTimeout(`memcached at ${this.label} did not answer within ${this.timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS)`)
      : new StoreUnavailable(
          `cannot connect to memcached at ${this.label} within ${this.timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS); ` +
            `check that the server runs and that VOLDFS_MC_SERVERS lists it`,
        );
    // Responses arrive in order, so once the oldest is late the connection is not worth keeping.
    this.fail(socket, error);
  }

  /** Rejects everything pending on `socket` and forgets it; stale sockets are ignored. */
  private fail(socket: Socket, error: StoreError): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.connected = false;
    this.chunks = [];
    this.buffered = 0;
    socket.destroy();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) {
      clearTimeout(request.timer);
      request.reject(error);
    }
  }

  private onData(socket: Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.buffered < HEADER_BYTES) return;
      while (this.chunks[0].length < HEADER_BYTES) this.chunks.splice(0, 2, Buffer.concat(this.chunks.slice(0, 2)));
      const length = frameLength(this.chunks[0]) as number;
      if (this.buffered < length) return;
      this.dispatch(decodeResponse(this.takeFrame(length)));
    }
  }

  /**
   * Removes the first `length` buffered bytes. A frame inside one chunk is a view of it; a frame
   * spanning chunks is copied once, and the bytes after it stay where they are.
   */
  private takeFrame(length: number): Buffer {
    this.buffered -= length;
    const first = this.chunks[0];
    if (first.length >= length) {
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      return first.subarray(0, length);
    }
    const frame = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0];
      const n = Math.min(chunk.length, length - filled);
      chunk.copy(frame, filled, 0, n);
      filled += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    return frame;
  }

  private dispatch(response: Response): void {
    const request = this.pending.get(response.opaque);
    if (!request) return;
    request.responses.push(ownValue(response));
    if (request.multi && response.status === 0 && response.key.length > 0) return;
    this.pending.delete(response.opaque);
    clearTimeout(request.timer);
    request.resolve(request.responses);
  }
}

/** A small value must not pin the large socket buffer it was sliced from. */
function ownValue(response: Response): Response {
  const { value } = response;
  if (value.length * 2 >= value.buffer.byteLength) return response;
  return { ...response, value: Buffer.from(value), key: Buffer.from(response.key), extras: Buffer.from(response.extras) };
}
