/**
 * An in-memory stand-in for a kumofs gateway (kumofs 0.4.13), for machines without
 * ../shared/kumofs. It answers the memcached text and binary protocols as
 * ../shared/kumofs/PROTOCOL.md records a real gateway doing, byte for byte where voldfs
 * depends on it:
 *
 * - text: `version` (`VERSION kumofs-0.4.13`, answered at once), `get`/`gets` of one or more
 *   keys, `set`, `cas`, `delete` (always `DELETED`), `noreply`; flags or an expiry other than
 *   0 get `CLIENT_ERROR supported`; every other command closes the connection without a reply.
 *   Replies are written when ready, not in request order: a write is answered after a short
 *   delay (kumofs waits for replication) while reads are answered at once.
 * - binary: GET/GETK/GETQ/GETKQ, SET (answers CAS 0; flags or expiry close the connection),
 *   SET or REPLACE with a CAS, REPLACE without one closes, DELETE (ignores its CAS, extras
 *   close), NOOP, FLUSH (answers success, flushes nothing); everything else closes. Replies
 *   keep request order. A GET answers the value's length modulo 65536, as the real one does.
 * - `cas` on a key that never existed stores it; delete leaves a tombstone that fails every
 *   `cas` until collected (`tombstoneMs`); a plain set overwrites it. CAS values are clock
 *   times: Unix seconds << 32 | a counter, new on every write.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

interface Stored {
  value: Buffer;
  cas: bigint;
}

export interface KumofsStandInOptions {
  /** How long a delete's tombstone fails `cas`, ms. Default 60,000. */
  readonly tombstoneMs?: number;
  /** Delay before a write is answered, ms (replication). Default 2. */
  readonly writeDelayMs?: number;
}

const HEADER = 24;

export class KumofsStandIn {
  private readonly records = new Map<string, Stored>();
  private readonly tombstones = new Map<string, { cas: bigint; until: number }>();
  private counter = 0n;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly servers: Server[],
    readonly text: string,
    readonly binary: string,
    private readonly options: Required<KumofsStandInOptions>,
  ) {}

  static async start(options: KumofsStandInOptions = {}): Promise<KumofsStandIn> {
    const full = { tombstoneMs: options.tombstoneMs ?? 60_000, writeDelayMs: options.writeDelayMs ?? 2 };
    const ready: { standIn?: KumofsStandIn } = {};
    const textServer = createServer((socket) => ready.standIn?.serveText(socket));
    const binaryServer = createServer((socket) => ready.standIn?.serveBinary(socket));
    const listen = (server: Server): Promise<number> =>
      new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
    const [textPort, binaryPort] = [await listen(textServer), await listen(binaryServer)];
    ready.standIn = new KumofsStandIn([textServer, binaryServer], `127.0.0.1:${textPort}`, `127.0.0.1:${binaryPort}`, full);
    return ready.standIn;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }

  private nextCas(): bigint {
    this.counter++;
    return (BigInt(Math.floor(Date.now() / 1000)) << 32n) | this.counter;
  }

  private get(key: string): Stored | undefined {
    return this.records.get(key);
  }

  private set(key: string, value: Buffer): void {
    this.tombstones.delete(key);
    this.records.set(key, { value: Buffer.from(value), cas: this.nextCas() });
  }

  /** kumofs's compare-and-swap: a missing key is stored, a tombstone or another CAS fails. */
  private cas(key: string, value: Buffer, cas: bigint): boolean {
    const tombstone = this.tombstones.get(key);
    if (tombstone && tombstone.until <= Date.now()) this.tombstones.delete(key);
    else if (tombstone) return false;
    const current = this.records.get(key);
    if (current && current.cas !== cas) return false;
    this.set(key, value);
    return true;
  }

  private remove(key: string): void {
    if (!this.records.delete(key)) return;
    this.tombstones.set(key, { cas: this.nextCas(), until: Date.now() + this.options.tombstoneMs });
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private later(fn: () => void): void {
    setTimeout(fn, this.options.writeDelayMs);
  }

  private serveText(socket: Socket): void {
    this.track(socket);
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        // The gateway's parser fails at the first byte that cannot start a command (a binary request).
        if (buffer.length > 0 && (buffer[0] < 0x61 || buffer[0] > 0x7a)) {
          socket.destroy();
          return;
        }
        const end = buffer.indexOf('\r\n');
        if (end < 0) return;
        const words = buffer.toString('latin1', 0, end).split(' ');
        const [command] = words;
        if (['set', 'cas'].includes(command)) {
          const bytes = Number(words[4]);
          if (buffer.length < end + 2 + bytes + 2) return;
          const value = buffer.subarray(end + 2, end + 2 + bytes);
          buffer = buffer.subarray(end + 2 + bytes + 2);
          const noreply = words[command === 'cas' ? 6 : 5] === 'noreply';
          if (words[2] !== '0' || words[3] !== '0') {
            socket.write('CLIENT_ERROR supported\r\n');
            continue;
          }
          const reply = command === 'set' ? (this.set(words[1], value), 'STORED') : this.cas(words[1], value, BigInt(words[5])) ? 'STORED' : 'EXISTS';
          if (!noreply) this.later(() => socket.write(`${reply}\r\n`));
          continue;
        }
        buffer = buffer.subarray(end + 2);
        if (command === 'version') socket.write('VERSION kumofs-0.4.13\r\n');
        else if (command === 'get' || command === 'gets') {
          const parts: Buffer[] = [];
          for (const key of words.slice(1)) {
            const item = this.get(key);
            if (!item) continue;
            parts.push(Buffer.from(`VALUE ${key} 0 ${item.value.length}${command === 'gets' ? ` ${item.cas}` : ''}\r\n`), item.value, Buffer.from('\r\n'));
          }
          socket.write(Buffer.concat([...parts, Buffer.from('END\r\n')]));
        } else if (command === 'delete') {
          if (words[2] !== undefined && words[2] !== '0' && words[2] !== 'noreply') {
            socket.write('CLIENT_ERROR supported\r\n');
            continue;
          }
          this.remove(words[1]);
          if (!words.includes('noreply')) this.later(() => socket.write('DELETED\r\n'));
        } else {
          socket.destroy();
          return;
        }
      }
    });
  }

  private serveBinary(socket: Socket): void {
    this.track(socket);
    let buffer = Buffer.alloc(0);
    // Replies keep request order even when a write waits: each waits for the one before.
    let order: Promise<void> = Promise.resolve();
    const reply = (frame: Buffer | undefined, delayed: boolean): void => {
      const previous = order;
      order = (async () => {
        await previous;
        if (delayed) await new Promise((resolve) => setTimeout(resolve, this.options.writeDelayMs));
        if (frame) socket.write(frame);
      })();
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      while (buffer.length >= HEADER) {
        if (buffer[0] !== 0x80) {
          socket.destroy();
          return;
        }
        const total = HEADER + buffer.readUInt32BE(8);
        if (buffer.length < total) return;
        const frame = buffer.subarray(0, total);
        buffer = buffer.subarray(total);
        const opcode = frame[1];
        const keyLength = frame.readUInt16BE(2);
        const extrasLength = frame[4];
        const opaque = frame.readUInt32BE(12);
        const cas = frame.readBigUInt64BE(16);
        const extras = frame.subarray(HEADER, HEADER + extrasLength);
        const key = frame.toString('latin1', HEADER + extrasLength, HEADER + extrasLength + keyLength);
        const value = frame.subarray(HEADER + extrasLength + keyLength);
        const respond = (status: number, body: { extras?: Buffer; key?: string; value?: Buffer; cas?: bigint } = {}): Buffer => {
          const e = body.extras ?? Buffer.alloc(0);
          const k = Buffer.from(body.key ?? '', 'latin1');
          const v = body.value ?? Buffer.alloc(0);
          const header = Buffer.alloc(HEADER);
          header[0] = 0x81;
          header[1] = opcode;
          header.writeUInt16BE(k.length, 2);
          header[4] = e.length;
          header.writeUInt16BE(status, 6);
          // kumofs's GET answer carries the value length in 16 bits.
          header.writeUInt32BE(e.length + k.length + (v.length % 65536), 8);
          header.writeUInt32BE(opaque, 12);
          header.writeBigUInt64BE(body.cas ?? 0n, 16);
          return Buffer.concat([header, e, k, v.subarray(0, v.length % 65536)]);
        };
        switch (opcode) {
          case 0x00: // GET
          case 0x09: // GETQ
          case 0x0c: // GETK
          case 0x0d: {
            // GETKQ
            const item = this.get(key);
            const withKey = opcode === 0x0c || opcode === 0x0d;
            if (item) reply(respond(0, { extras: Buffer.alloc(4), key: withKey ? key : '', value: item.value, cas: item.cas }), false);
            else if (opcode === 0x00 || opcode === 0x0c) reply(respond(1, { key: withKey ? key : '' }), false);
            break;
          }
          case 0x01: // SET
          case 0x03: {
            // REPLACE
            if (extras.readUInt32BE(0) !== 0 || extras.readUInt32BE(4) !== 0 || (opcode === 0x03 && cas === 0n)) {
              socket.destroy();
              return;
            }
            if (cas === 0n) {
              this.set(key, value);
              reply(respond(0), true);
            } else reply(respond(this.cas(key, value, cas) ? 0 : 2), true);
            break;
          }
          case 0x04: // DELETE: the CAS is not read
            if (extrasLength > 0) {
              socket.destroy();
              return;
            }
            this.remove(key);
            reply(respond(0), true);
            break;
          case 0x08: // FLUSH: answered, nothing flushed
          case 0x0a: // NOOP
            reply(respond(0), false);
            break;
          default:
            socket.destroy();
            return;
        }
      }
    });
  }
}
