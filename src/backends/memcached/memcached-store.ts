import { destination, pino, type Logger } from 'pino';
import { StoreError, StoreFull, StoreTimeout, StoreUnavailable, ValueTooLarge } from '../errors.js';
import {
  UNCONDITIONAL,
  type KvStore,
  type PutResult,
  type StoreCapabilities,
  type VersionedValue,
  type WriteCondition,
} from '../kv-store.js';
import pMap from 'p-map';
import { BinaryConnection } from './connection.js';
import { encodeKey } from './keys.js';
import { metadumpKeys } from './metadump.js';
import type { MemcachedOptions } from './options.js';
import { JumpHashPlacement } from './placement.js';
import { casOfVersion, Opcode, Status, statusText, STORE_EXTRAS, versionOfCas, type Response } from './protocol.js';
import { ServerHealth } from './server-health.js';
import { checkServerSettings, maxValueBytes, readServerSettings, type ServerSettings } from './server-settings.js';

/** Gets of one getMany in flight at once, over all servers. */
const GET_MANY_CONCURRENCY = 64;
/** ADD/REPLACE rounds of an unconditional put before giving up on a key that keeps flapping. */
const UNCONDITIONAL_PUT_ATTEMPTS = 8;

/**
 * A KvStore over a pool of memcached servers (binary protocol). Keys are spread over the
 * servers by jump consistent hashing; each server is a failure domain. Versions are CAS
 * uniques: `ifVersion` is a REPLACE carrying the CAS, `ifAbsent` an ADD, a conditional delete
 * a DELETE carrying the CAS. No multi-key commit: src/cas adds crash atomicity on top.
 *
 * A server restarted empty simply misses keys; a server started with -M answers writes with
 * StoreFull when its memory is exhausted instead of evicting records. A server that cannot be
 * reached (at start or later) is marked down: requests for its keys fail at once with
 * StoreUnavailable while it is retried in the background (server-health.ts), so the other
 * servers' keys stay usable (erasure fragments, metadata copies).
 */
export class MemcachedStore implements KvStore {
  readonly name = 'mc';
  readonly capabilities: StoreCapabilities;
  private readonly placement: JumpHashPlacement;
  private readonly health: readonly ServerHealth[];
  private closed = false;

  private constructor(
    private readonly connections: readonly BinaryConnection[],
    private readonly options: MemcachedOptions,
    maxValue: number,
    itemSizeMax: number,
    log: Logger,
  ) {
    this.placement = new JumpHashPlacement(connections.length);
    this.health = connections.map(
      (connection) => new ServerHealth(connection, { allowEviction: options.allowEviction, itemSizeMax: () => itemSizeMax, log }),
    );
    this.capabilities = Object.freeze({
      maxValueBytes: maxValue,
      atomicCommit: false,
      maxCommitOps: 0,
      placement: this.placement,
    });
  }

  /**
   * Connects to every server and reads its settings (item size, eviction, CAS). Servers that
   * cannot be reached are marked down and retried in the background (logged as warnings).
   * @param log where down and returning servers are told; default warnings on stderr
   * @throws StoreUnavailable when no server can be reached within the timeout, or one runs
   *   with settings a filesystem cannot use (CAS disabled, eviction without
   *   VOLDFS_MC_ALLOW_EVICTION)
   */
  static async connect(options: MemcachedOptions, log?: Logger): Promise<MemcachedStore> {
    const connections = options.servers.map((server) => new BinaryConnection(server, options.timeoutMs));
    try {
      const results = await Promise.allSettled(connections.map((connection) => readServerSettings(connection)));
      const reached: ServerSettings[] = [];
      const unreachable: { index: number; error: StoreUnavailable | StoreTimeout }[] = [];
      for (const [index, result] of results.entries()) {
        if (result.status === 'fulfilled') {
          checkServerSettings(connections[index].label, result.value, options.allowEviction);
          reached.push(result.value);
        } else if (result.reason instanceof StoreUnavailable || result.reason instanceof StoreTimeout) {
          unreachable.push({ index, error: result.reason });
        } else {
          throw result.reason;
        }
      }
      if (reached.length === 0) throw unreachable[0].error;
      const itemSizeMax = Math.min(...reached.map((s) => s.itemSizeMax));
      const store = new MemcachedStore(
        connections,
        options,
        maxValueBytes(reached),
        itemSizeMax,
        log ?? pino({ name: 'memcached', level: 'warn' }, destination({ fd: 2, sync: true })),
      );
      for (const { index, error } of unreachable) store.health[index].markDown(error);
      return store;
    } catch (error) {
      for (const connection of connections) connection.close();
      throw error;
    }
  }

  /** The server `key` lives on, as `host:port`; for tests and diagnostics. */
  serverOf(key: string): string {
    return this.connections[this.placement.domainOf(key)].label;
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    const response = await this.send(key, { opcode: Opcode.get });
    switch (response.status) {
      case Status.ok:
        return { value: response.value, version: versionOfCas(response.cas) };
      case Status.keyNotFound:
        return undefined;
      default:
        throw this.failure('get', key, response);
    }
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    // Requests to a server share its connection and are pipelined; the bound keeps a huge
    // key list from queueing megabytes of requests at once.
    return pMap(keys, (key) => this.get(key), { concurrency: GET_MANY_CONCURRENCY });
  }

  /**
   * ifAbsent is an ADD, ifVersion a REPLACE carrying the CAS unique, and an unconditional put
   * an ADD, then a REPLACE if the key exists. Never a SET: when memcached cannot allocate the
   * new item (full under -M), a failed SET unlinks the record it was meant to replace, so an
   * inode update on a full server would delete the inode. A failed ADD or REPLACE leaves the
   * stored record alone.
   */
  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    const limit = this.capabilities.maxValueBytes;
    if (value.length > limit) throw new ValueTooLarge(key, value.length, limit);
    switch (condition.kind) {
      case 'ifAbsent':
        return this.store('put', key, { opcode: Opcode.add, extras: STORE_EXTRAS, value });
      case 'ifVersion': {
        const cas = casOfVersion(condition.version);
        // Not a version this backend hands out, so it cannot be the current one.
        if (cas === undefined) return { ok: false };
        return this.store('put', key, { opcode: Opcode.replace, extras: STORE_EXTRAS, value, cas });
      }
      case 'none':
        for (let attempt = 0; attempt < UNCONDITIONAL_PUT_ATTEMPTS; attempt++) {
          const opcode = attempt % 2 === 0 ? Opcode.add : Opcode.replace;
          const result = await this.store('put', key, { opcode, extras: STORE_EXTRAS, value });
          if (result.ok) return result;
          // ADD found the key, or REPLACE found it deleted meanwhile: try the other one.
        }
        throw new StoreError(
          `unconditional put of ${key} kept racing with other clients creating and deleting it ` +
            `(${UNCONDITIONAL_PUT_ATTEMPTS} attempts); retry the operation`,
        );
    }
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    let cas = 0n;
    if (condition.kind === 'ifAbsent') {
      throw new RangeError(`delete of ${key} with condition ifAbsent makes no sense; use none or ifVersion`);
    } else if (condition.kind === 'ifVersion') {
      const expected = casOfVersion(condition.version);
      if (expected === undefined) return false;
      cas = expected;
    }
    const response = await this.send(key, { opcode: Opcode.delete, cas });
    switch (response.status) {
      case Status.ok:
        return true;
      case Status.keyNotFound:
      case Status.keyExists:
        return false;
      default:
        throw this.failure('delete', key, response);
    }
  }

  /**
   * Keys starting with `prefix`, server after server, from `lru_crawler metadump all`.
   * Best-effort, not a snapshot: keys written or deleted during the listing may be missed or
   * still listed. Order is unspecified.
   * @throws StoreUnavailable / StoreTimeout when a server cannot be listed, so that fsck never
   *   mistakes a server that is down for an empty one
   */
  async *scan(prefix: string): AsyncIterable<string> {
    this.checkOpen();
    for (const [i, connection] of this.connections.entries()) {
      await this.health[i].admit();
      yield* metadumpKeys(connection.address, prefix, this.options.timeoutMs);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const health of this.health) health.close();
    for (const connection of this.connections) connection.close();
  }

  /** Sends a store command; a failed condition (exists / not found) is a conflict. */
  private async store(
    operation: string,
    key: string,
    request: { opcode: number; extras: Buffer; value: Buffer; cas?: bigint },
  ): Promise<PutResult> {
    const response = await this.send(key, request);
    switch (response.status) {
      case Status.ok:
        return { ok: true, version: versionOfCas(response.cas) };
      case Status.keyExists:
      case Status.keyNotFound:
      case Status.itemNotStored:
        return { ok: false };
      case Status.valueTooLarge:
        throw new ValueTooLarge(key, request.value.length, this.capabilities.maxValueBytes);
      default:
        throw this.failure(operation, key, response);
    }
  }

  private async send(
    key: string,
    request: { opcode: number; extras?: Buffer; value?: Buffer; cas?: bigint },
  ): Promise<Response> {
    this.checkOpen();
    const encoded = encodeKey(key);
    const server = this.placement.domainOf(key);
    await this.health[server].admit();
    try {
      return await this.connections[server].request({ ...request, key: encoded });
    } catch (err) {
      this.health[server].noteFailure(err);
      throw err;
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreUnavailable('memcached store was closed; open a new one');
  }

  /** The error for an unexpected response status; out of memory becomes StoreFull. */
  private failure(operation: string, key: string, response: Response): StoreError {
    const server = this.serverOf(key);
    if (response.status === Status.outOfMemory) {
      return new StoreFull(
        `memcached at ${server} is out of memory and refuses new records (it runs with -M, so nothing ` +
          `stored was evicted): free space by deleting files. A running memcached cannot grow and a ` +
          `restart empties it, so give new pools enough memory (-m, VOLDFS_MC_MEMORY_MB)`,
      );
    }
    if (response.status === Status.busy || response.status === Status.temporaryFailure) {
      return new StoreUnavailable(`memcached at ${server} is temporarily unable to ${operation} ${key} (${statusText(response.status)})`);
    }
    return new StoreError(
      `memcached at ${server} answered ${operation} of ${key} with "${statusText(response.status)}"` +
        (response.value.length > 0 && response.value.length < 200 ? `: ${response.value.toString('latin1')}` : ''),
    );
  }
}
