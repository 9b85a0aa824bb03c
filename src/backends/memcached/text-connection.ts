import { connect, type Socket } from 'node:net';
import { StoreError, StoreTimeout, StoreUnavailable } from '../errors.js';
import { formatAddress, type ServerAddress } from './server-address.js';

/** One item of a `get`/`gets` reply; `cas` is 0n when the reply carried none (plain get). */
export interface TextItem {
  readonly key: string;
  readonly value: Buffer;
  readonly cas: bigint;
}

/** What a request expects back: one status line, or VALUE items up to END. */
export type TextReply = { readonly kind: 'line'; readonly line: string } | { readonly kind: 'items'; readonly items: TextItem[] };

interface Pending {
  readonly parts: readonly Buffer[];
  readonly items: boolean;
  readonly resolve: (reply: TextReply) => void;
  readonly reject: (error: StoreError) => void;
}

const CRLF = Buffer.from('\r\n');
/** A reply line longer than this is not memcached speaking. */
const MAX_LINE_BYTES = 2048;

/**
 * One text-protocol connection with one request in flight: kumofs's text gateway answers
 * pipelined requests in completion order, so replies cannot be matched to requests any other
 * way. Throughput comes from a pool of these (text-pool.ts). Requests wait in a FIFO.
 *
 * A connection that fails (refused, lost, no answer within the timeout, a reply it cannot
 * parse) rejects the request in flight and everything queued, and the next request
 * reconnects. A server that closes the connection without replying (how kumofs answers a
 * command it lacks) is reported as such, naming the command.
 */
export class TextConnection {
  readonly label: string;
  private socket: Socket | undefined;
  private connected = false;
  private closed = false;
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private items: TextItem[] = [];

  constructor(
    readonly address: ServerAddress,
    private readonly timeoutMs: number,
  ) {
    this.label = formatAddress(address);
  }

  /** Requests waiting or in flight. */
  get load(): number {
    return this.queue.length + (this.current ? 1 : 0);
  }

  /**
   * Sends a command (its line and, for storage commands, the data block) and resolves with
   * the reply: the first line, or for retrievals (`items`) every VALUE item up to END.
   */
  request(parts: readonly Buffer[], items: boolean): Promise<TextReply> {
    if (this.closed) return Promise.reject(new StoreUnavailable(`memcached store is closed (server ${this.label})`));
    return new Promise<TextReply>((resolve, reject) => {
      this.queue.push({ parts, items, resolve, reject });
      this.next();
    });
  }

  /** Drops the connection; queued requests fail with StoreUnavailable. Idempotent. */
  close(): void {
    this.closed = true;
    this.failAll(new StoreUnavailable(`memcached connection to ${this.label} was closed`));
  }

  private next(): void {
    if (this.current || this.queue.length === 0) return;
    const request = this.queue.shift() as Pending;
    this.current = request;
    this.items = [];
    const socket = this.socket ?? this.open();
    this.timer = setTimeout(() => this.onTimeout(socket), this.timeoutMs);
    socket.cork();
    for (const part of request.parts) socket.write(part);
    process.nextTick(() => socket.uncork());
  }

  private open(): Socket {
    const socket = connect({ host: this.address.host, port: this.address.port });
    this.socket = socket;
    this.connected = false;
    this.buffer = Buffer.alloc(0);
    socket.setNoDelay(true);
    socket.on('connect', () => {
      if (this.socket === socket) this.connected = true;
    });
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code ?? error.message;
      const message = this.connected
        ? `lost connection to ${this.label}: ${reason}`
        : `cannot connect to ${this.label}: ${reason}; check that the server runs and that VOLDFS_MC_SERVERS lists it`;
      this.fail(socket, new StoreUnavailable(message, { cause: error }));
    });
    socket.on('close', () => {
      const command = this.current ? firstWord(this.current.parts[0]) : undefined;
      this.fail(
        socket,
        new StoreUnavailable(
          command
            ? `${this.label} closed the connection without answering "${command}" (a server closes it this way on a command it lacks)`
            : `${this.label} closed the connection`,
        ),
      );
    });
    return socket;
  }

  private onTimeout(socket: Socket): void {
    this.fail(
      socket,
      this.connected
        ? new StoreTimeout(`${this.label} did not answer within ${this.timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS)`)
        : new StoreUnavailable(
            `cannot connect to ${this.label} within ${this.timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS); check that the server runs and that VOLDFS_MC_SERVERS lists it`,
          ),
    );
  }

  /** Rejects the request in flight and the queue, and forgets the socket. */
  private fail(socket: Socket, error: StoreError): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.connected = false;
    socket.destroy();
    this.failAll(error);
  }

  private failAll(error: StoreError): void {
    clearTimeout(this.timer);
    const pending = [...(this.current ? [this.current] : []), ...this.queue.splice(0)];
    this.current = undefined;
    if (this.socket) {
      this.socket.destroy();
      this.socket = undefined;
    }
    for (const request of pending) request.reject(error);
  }

  private onData(socket: Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    try {
      while (this.current && this.parseOne()) {
        // parseOne settled a request or consumed one item; keep going while bytes remain.
      }
    } catch (err) {
      this.fail(socket, err instanceof StoreError ? err : new StoreError(String(err)));
      return;
    }
    if (!this.current && this.buffer.length > 0) {
      this.fail(socket, new StoreError(`${this.label} sent ${this.buffer.length} bytes nobody asked for`));
    }
  }

  /** Consumes one line (and an item's data) if complete; false when more bytes are needed. */
  private parseOne(): boolean {
    const request = this.current as Pending;
    const end = this.buffer.indexOf(CRLF);
    if (end < 0) {
      if (this.buffer.length > MAX_LINE_BYTES && !request.items) throw new StoreError(`${this.label} sent a reply line without an end`);
      return false;
    }
    const line = this.buffer.toString('latin1', 0, end);
    if (request.items && line.startsWith('VALUE ')) {
      const [, key, , bytesText, casText] = line.split(' ');
      const bytes = Number(bytesText);
      if (!Number.isSafeInteger(bytes) || bytes < 0) throw new StoreError(`${this.label} sent a malformed VALUE line: ${line.slice(0, 100)}`);
      const start = end + 2;
      if (this.buffer.length < start + bytes + 2) return false;
      // A copy, so that a small value does not pin a large socket buffer.
      const value = Buffer.from(this.buffer.subarray(start, start + bytes));
      this.items.push({ key, value, cas: casText === undefined ? 0n : BigInt(casText) });
      this.buffer = this.buffer.subarray(start + bytes + 2);
      return true;
    }
    this.buffer = this.buffer.subarray(end + 2);
    clearTimeout(this.timer);
    this.current = undefined;
    if (request.items && line === 'END') request.resolve({ kind: 'items', items: this.items });
    else request.resolve({ kind: 'line', line });
    this.items = [];
    this.next();
    return true;
  }
}

function firstWord(part: Buffer | undefined): string {
  if (!part) return '';
  const text = part.toString('latin1', 0, Math.min(part.length, 64));
  return text.split(/[ \r\n]/)[0];
}
