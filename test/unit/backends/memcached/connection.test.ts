/**
 * BinaryConnection against scripted fake servers: response framing however TCP splits or
 * merges frames, and requests that always settle (the cases memjs's Server leaves hanging).
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreTimeout, StoreUnavailable } from '../../../../src/backends/errors.js';
import { BinaryConnection } from '../../../../src/backends/memcached/connection.js';
import { Opcode } from '../../../../src/backends/memcached/protocol.js';

/** A response frame for the request with `opaque`, carrying `value` and CAS `cas`. */
function responseFrame(opaque: number, value: Buffer, cas: bigint): Buffer {
  const header = Buffer.alloc(24);
  header[0] = 0x81;
  header[1] = Opcode.get;
  header[4] = 4;
  header.writeUInt32BE(4 + value.length, 8);
  header.writeUInt32BE(opaque, 12);
  header.writeBigUInt64BE(cas, 16);
  return Buffer.concat([header, Buffer.alloc(4), value]);
}

/** Opaque fields of the complete request frames in `data`. */
function opaques(data: Buffer): number[] {
  const found: number[] = [];
  for (let at = 0; at + 24 <= data.length; at += 24 + data.readUInt32BE(at + 8)) found.push(data.readUInt32BE(at + 12));
  return found;
}

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of servers.splice(0)) {
    server.close();
    await once(server, 'close');
  }
});

async function fakeServer(onConnection: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    sockets.push(socket);
    onConnection(socket);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('BinaryConnection', () => {
  it('matches responses to requests when frames are split into bytes and merged together', async () => {
    const values = [Buffer.alloc(0), Buffer.from('small'), Buffer.alloc(300_000, 7), Buffer.from('last')];
    const port = await fakeServer((socket) => {
      let received = Buffer.alloc(0);
      socket.on('data', (data: Buffer) => {
        received = Buffer.concat([received, data]);
        const ids = opaques(received);
        if (ids.length < values.length) return;
        // Answer in reverse order, as one stream cut at awkward places.
        const stream = Buffer.concat(ids.map((id, i) => responseFrame(id, values[i], BigInt(i + 1))).reverse());
        const cuts = [1, 23, 24, 25, 40, 1000, 150_000, stream.length];
        let from = 0;
        for (const cut of cuts) {
          socket.write(stream.subarray(from, cut));
          from = cut;
        }
      });
    });
    const connection = new BinaryConnection({ host: '127.0.0.1', port }, 5000);
    try {
      const responses = await Promise.all(values.map(() => connection.request({ opcode: Opcode.get, key: Buffer.from('k') })));
      responses.forEach((response, i) => {
        expect(response.value.equals(values[i]), `value ${i}`).toBe(true);
        expect(response.cas).toBe(BigInt(i + 1));
      });
    } finally {
      connection.close();
    }
  });

  it('fails pending requests at once with StoreUnavailable when the server closes the connection', async () => {
    const port = await fakeServer((socket) => {
      socket.once('data', () => socket.end());
    });
    const connection = new BinaryConnection({ host: '127.0.0.1', port }, 10_000);
    const started = Date.now();
    const error = await connection.request({ opcode: Opcode.get, key: Buffer.from('k') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailable);
    expect((error as Error).message).toContain('closed the connection');
    expect(Date.now() - started).toBeLessThan(2000);
    connection.close();
  });

  it('fails a request the server never answers with StoreTimeout after the timeout', async () => {
    const port = await fakeServer(() => undefined);
    const connection = new BinaryConnection({ host: '127.0.0.1', port }, 300);
    const started = Date.now();
    const error = await connection.request({ opcode: Opcode.get, key: Buffer.from('k') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreTimeout);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(1500);
    connection.close();
  });

  it('refuses requests after close', async () => {
    const connection = new BinaryConnection({ host: '127.0.0.1', port: 1 }, 300);
    connection.close();
    await expect(connection.request({ opcode: Opcode.get, key: Buffer.from('k') })).rejects.toThrow(/closed/);
  });
});
