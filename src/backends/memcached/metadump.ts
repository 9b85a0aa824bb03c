import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError, StoreTimeout, StoreUnavailable } from '../errors.js';
import { formatAddress, type ServerAddress } from './server-address.js';

/** How often a server whose crawler is busy (another metadump running) is asked again. */
const BUSY_RETRIES = 20;
const BUSY_DELAY_MS = 250;

/**
 * Every key starting with `prefix` on one server, listed by the text protocol command
 * `lru_crawler metadump hash`, which walks the hash table: `metadump all` walks the LRUs, and
 * memcached moves items that were just read between them, so it missed most recently read keys
 * for seconds afterwards. Servers that do not know `hash` get `all`. Best-effort still: a key
 * written or deleted during the walk may be missed or listed though gone. fsck and garbage
 * collection re-check each key they act on.
 *
 * @param timeoutMs longest silence from the server (connecting included) before giving up
 * @throws StoreUnavailable when the server cannot be reached; StoreTimeout when it stops
 *   answering; StoreError when it does not support metadump
 */
export async function* metadumpKeys(address: ServerAddress, prefix: string, timeoutMs: number): AsyncGenerator<string> {
  const label = formatAddress(address);
  let walk = 'hash';
  for (let attempt = 0; ; attempt++) {
    const socket = openTextConnection(address, label, timeoutMs);
    let busy = false;
    let first = true;
    try {
      socket.write(`lru_crawler metadump ${walk}\r\n`);
      for await (const line of readLines(socket, label)) {
        const opening = first;
        first = false;
        if (line === 'END') return;
        if (line.startsWith('key=')) {
          const key = decodeURIComponent(line.slice(4, spaceOrEnd(line)));
          if (key.startsWith(prefix)) yield key;
        } else if (line.startsWith('BUSY')) {
          busy = true;
          break;
        } else if (opening && walk === 'hash' && /^(CLIENT_ERROR|ERROR|BADCLASS)/.test(line)) {
          // An older server: no hash walk. Ask again for the LRU walk.
          walk = 'all';
          busy = true;
          break;
        } else {
          throw new StoreError(
            `memcached at ${label} cannot list its keys (${line.slice(0, 80)}); fsck and scan need ` +
              `memcached 1.6 or later with the LRU crawler enabled (the default)`,
          );
        }
      }
    } finally {
      socket.destroy();
    }
    if (!busy) throw new StoreUnavailable(`memcached at ${label} closed the connection during a key listing`);
    if (attempt >= BUSY_RETRIES) {
      throw new StoreTimeout(`memcached at ${label} kept its LRU crawler busy; try the key listing again later`);
    }
    await sleep(BUSY_DELAY_MS);
  }
}

function spaceOrEnd(line: string): number {
  const space = line.indexOf(' ');
  return space < 0 ? line.length : space;
}

function openTextConnection(address: ServerAddress, label: string, timeoutMs: number): Socket {
  const socket = connect({ host: address.host, port: address.port });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
  });
  socket.setTimeout(timeoutMs, () => {
    socket.destroy(
      connected
        ? new StoreTimeout(`memcached at ${label} stopped answering a key listing for ${timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS)`)
        : new StoreUnavailable(`cannot connect to memcached at ${label} within ${timeoutMs} ms (VOLDFS_MC_TIMEOUT_MS)`),
    );
  });
  return socket;
}

/** Lines of a text-protocol reply, without their line ends. Socket errors become store errors. */
async function* readLines(socket: Socket, label: string): AsyncGenerator<string> {
  let rest = '';
  try {
    for await (const chunk of socket) {
      const text = rest + (chunk as Buffer).toString('latin1');
      // metadump ends its key lines with a bare LF, and only END with CRLF.
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      yield* lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new StoreUnavailable(`cannot list keys on memcached at ${label}: ${code}`, {
      cause: error,
    });
  }
}
