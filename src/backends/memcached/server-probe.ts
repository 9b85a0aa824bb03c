import { connect } from 'node:net';
import { StoreUnavailable } from '../errors.js';
import { encodeRequest, Opcode } from './protocol.js';
import { formatAddress, type ServerAddress } from './server-address.js';

/**
 * What answers on a memcached port, learned at mount from probes every server survives:
 * - `memcached-binary`: a memcached that speaks the binary protocol and answers VERSION
 *   (memcached itself: add, stats settings, metadump, conditional delete);
 * - `kumofs-binary`: answers NOOP but closes the connection on VERSION (kumofs's binary gateway);
 * - `kumofs-text` / `memcached-text`: a port that closes on a binary request, answering the text
 *   `version` with `VERSION kumofs-...` or anything else (memcached, twemproxy).
 */
export type ServerKind = 'memcached-binary' | 'kumofs-binary' | 'kumofs-text' | 'memcached-text';

export interface ProbedServer {
  readonly kind: ServerKind;
  /** The version string, where the server told one. */
  readonly version?: string;
}

interface Exchange {
  readonly data: Buffer;
  /** The server closed the connection (after sending `data`). */
  readonly closed: boolean;
}

const HEADER_BYTES = 24;
const RESPONSE_MAGIC = 0x81;

/**
 * Probes `address`: a binary NOOP (kumofs closes on unknown commands, so only commands it
 * has are sent first), then a binary VERSION or a text `version`.
 * @throws StoreUnavailable when nothing answers within `timeoutMs`
 */
export async function probeServer(address: ServerAddress, timeoutMs: number): Promise<ProbedServer> {
  const label = formatAddress(address);
  const noop = await exchange(address, encodeRequest({ opcode: Opcode.noop, key: Buffer.alloc(0) }, 1), timeoutMs, binaryFrameDone);
  if (noop.data.length >= HEADER_BYTES && noop.data[0] === RESPONSE_MAGIC) {
    const version = await exchange(address, encodeRequest({ opcode: Opcode.version, key: Buffer.alloc(0) }, 2), timeoutMs, binaryFrameDone);
    if (version.data.length >= HEADER_BYTES && version.data[0] === RESPONSE_MAGIC) {
      return { kind: 'memcached-binary', version: version.data.subarray(HEADER_BYTES).toString('latin1') };
    }
    if (version.closed) return { kind: 'kumofs-binary' };
    throw new StoreUnavailable(`${label} answered a binary NOOP but not VERSION within ${timeoutMs} ms; it is not a memcached-protocol server voldfs knows`);
  }
  if (!noop.closed) {
    throw new StoreUnavailable(
      `${label} did not answer a memcached probe within ${timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS); check that VOLDFS_MC_SERVERS names a memcached, kumofs gateway or twemproxy port`,
    );
  }
  const text = await exchange(address, Buffer.from('version\r\n'), timeoutMs, (data) => data.includes('\r\n'));
  const line = text.data.toString('latin1').split('\r\n')[0];
  if (line.startsWith('VERSION kumofs')) return { kind: 'kumofs-text', version: line.slice('VERSION '.length) };
  if (line.startsWith('VERSION ')) return { kind: 'memcached-text', version: line.slice('VERSION '.length) };
  if (line === 'ERROR') return { kind: 'memcached-text' };
  throw new StoreUnavailable(
    `${label} answers neither the memcached binary nor the text protocol (version probe: ${JSON.stringify(line.slice(0, 80))}); ` +
      `check that VOLDFS_MC_SERVERS names a memcached, kumofs gateway or twemproxy port`,
  );
}

function binaryFrameDone(data: Buffer): boolean {
  return data.length >= HEADER_BYTES && data.length >= HEADER_BYTES + data.readUInt32BE(8);
}

/** Sends `request` on a fresh connection and collects the reply until `done`, close or timeout. */
function exchange(address: ServerAddress, request: Buffer | Buffer[], timeoutMs: number, done: (data: Buffer) => boolean): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) => {
    const socket = connect({ host: address.host, port: address.port });
    let data = Buffer.alloc(0);
    let connected = false;
    const finish = (closed: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => {
      if (connected) finish(false);
      else {
        socket.destroy();
        reject(new StoreUnavailable(`cannot connect to ${formatAddress(address)} within ${timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS); check that the server runs and that VOLDFS_MC_SERVERS lists it`));
      }
    }, timeoutMs);
    socket.on('connect', () => {
      connected = true;
      for (const part of Array.isArray(request) ? request : [request]) socket.write(part);
    });
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (done(data)) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (connected) {
        finish(true);
        return;
      }
      reject(
        new StoreUnavailable(
          `cannot connect to memcached at ${formatAddress(address)}: ${error.code ?? error.message}; check that the server runs and that VOLDFS_MC_SERVERS lists it`,
          { cause: error },
        ),
      );
    });
  });
}
