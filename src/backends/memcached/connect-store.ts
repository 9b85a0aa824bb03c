import type { Logger } from 'pino';
import { isUnreachable, StoreUnavailable } from '../errors.js';
import type { KvStore } from '../kv-store.js';
import { CasOnlyStore, KUMOFS_BINARY_DIALECT, KUMOFS_DIALECT, MEMCACHED_TEXT_DIALECT, type CasOnlyDialect } from './cas-only-store.js';
import { BinaryWire, TEXT_CONNECTIONS_PER_SERVER, TextWire, type CasWire } from './cas-wire.js';
import { BinaryConnection } from './connection.js';
import { MemcachedStore } from './memcached-store.js';
import type { MemcachedOptions } from './options.js';
import { formatAddress } from './server-address.js';
import { probeServer, type ServerKind } from './server-probe.js';
import { TextConnection } from './text-connection.js';

/**
 * Opens the store the servers can carry, learned by probing them (server-probe.ts):
 * memcached on the binary protocol gets MemcachedStore (add, conditional delete, metadump);
 * kumofs on either port, memcached on the text protocol (VOLDFS_MC_PROTOCOL=text) and
 * twemproxy get CasOnlyStore, which needs only get/gets, set and cas.
 * @throws StoreUnavailable when no server answers, when they differ in kind, or when
 *   VOLDFS_MC_PROTOCOL asks for a protocol they do not speak (the message says what to set)
 */
export async function connectMemcached(options: MemcachedOptions, log?: Logger): Promise<KvStore> {
  const results = await Promise.allSettled(options.servers.map((server) => probeServer(server, options.timeoutMs)));
  const kinds = new Map<ServerKind, string[]>();
  const unreachable: unknown[] = [];
  for (const [index, result] of results.entries()) {
    if (result.status === 'rejected') {
      if (!isUnreachable(result.reason)) throw result.reason;
      unreachable.push(result.reason);
      continue;
    }
    const labels = kinds.get(result.value.kind) ?? [];
    labels.push(formatAddress(options.servers[index]));
    kinds.set(result.value.kind, labels);
  }
  if (kinds.size === 0) throw unreachable[0];
  if (kinds.size > 1) {
    const described = [...kinds].map(([kind, labels]) => `${labels.join(', ')}: ${describeKind(kind)}`).join('; ');
    throw new StoreUnavailable(`VOLDFS_MC_SERVERS mixes kinds of servers (${described}); list servers of one kind only`);
  }
  const kind = [...kinds.keys()][0];
  if (kind === 'memcached-binary' && options.protocol !== 'text') return MemcachedStore.connect(options, log);
  // A CAS-only pool must see every server: placement depends on all of them.
  if (unreachable.length > 0) throw unreachable[0];
  const text = kind !== 'kumofs-binary' && (options.protocol === 'text' || kind !== 'memcached-binary');
  if (options.protocol === 'binary' && text) {
    throw new StoreUnavailable(
      `${options.servers.map(formatAddress).join(', ')} speak only the memcached text protocol (${describeKind(kind)}), ` +
        `but VOLDFS_MC_PROTOCOL=binary: set VOLDFS_MC_PROTOCOL=text or leave it unset`,
    );
  }
  if (options.protocol === 'text' && !text) {
    throw new StoreUnavailable(
      `${options.servers.map(formatAddress).join(', ')} speak only the memcached binary protocol (${describeKind(kind)}), ` +
        `but VOLDFS_MC_PROTOCOL=text: set VOLDFS_MC_PROTOCOL=binary or leave it unset, or list the kumofs gateway's text port`,
    );
  }
  const dialect: CasOnlyDialect = kind === 'kumofs-binary' ? KUMOFS_BINARY_DIALECT : kind === 'kumofs-text' ? KUMOFS_DIALECT : MEMCACHED_TEXT_DIALECT;
  const wires: CasWire[] = options.servers.map((server) =>
    text
      ? new TextWire(Array.from({ length: TEXT_CONNECTIONS_PER_SERVER }, () => new TextConnection(server, options.timeoutMs)))
      : new BinaryWire(new BinaryConnection(server, options.timeoutMs)),
  );
  const store = new CasOnlyStore(wires, dialect, options.itemSizeBytes);
  try {
    await checkGets(wires);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** Every server must answer `gets` (get with CAS); a proxy or server without it cannot carry voldfs. */
async function checkGets(wires: readonly CasWire[]): Promise<void> {
  const probeKey = Buffer.from('voldfs:probe:gets');
  await Promise.all(
    wires.map(async (wire) => {
      try {
        await wire.gets(probeKey);
      } catch (error) {
        throw new StoreUnavailable(
          `${wire.label} does not answer "gets" (a get returning the CAS unique), which voldfs needs for safe concurrent ` +
            `updates: use memcached 1.6, a kumofs gateway, or a proxy that passes gets and cas on (twemproxy does)`,
          { cause: error },
        );
      }
    }),
  );
}

function describeKind(kind: ServerKind): string {
  switch (kind) {
    case 'memcached-binary':
      return 'memcached';
    case 'kumofs-binary':
      return "kumofs gateway's binary port";
    case 'kumofs-text':
      return "kumofs gateway's text port";
    case 'memcached-text':
      return 'memcached text protocol only (such as twemproxy)';
  }
}
