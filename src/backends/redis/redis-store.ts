import { randomBytes } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import { StoreTimeout, StoreUnavailable, ValueTooLarge } from '../errors.js';
import {
  UNCONDITIONAL,
  type CommitCheck,
  type CommitOp,
  type KvStore,
  type PutResult,
  type StoreCapabilities,
  type VersionedValue,
  type WriteCondition,
} from '../kv-store.js';
import { connectRedis, type RedisConnection } from './connect.js';
import type { RedisOptions } from './options.js';
import { classifyRedisError, toStoreError } from './redis-errors.js';
import { COMMIT, CONDITIONAL_DELETE, CONDITIONAL_PUT, type LuaScript } from './scripts.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { withTimeout } from '../timeout.js';

/** The commands the store sends; a single-server client and a cluster client both have them. */
interface Commands {
  hmgetBuffer(key: string, ...fields: string[]): Promise<(Buffer | null)[]>;
  hset(key: string, ...fieldValues: (string | Buffer)[]): Promise<number>;
  del(key: string): Promise<number>;
  evalsha(sha1: string, numkeys: number, ...args: (string | Buffer)[]): Promise<unknown>;
  eval(script: string, numkeys: number, ...args: (string | Buffer)[]): Promise<unknown>;
}

/** Largest ops + checks per commit; each is a Lua argument group, and values may be MiBs. */
export const REDIS_MAX_COMMIT_OPS = 128;
/** Keys fetched per batch by getMany (each batch is pipelined by ioredis). */
const GET_BATCH = 256;
/** Keys asked per SCAN call. */
const SCAN_COUNT = 1000;

/**
 * A KvStore on Redis: one server, or a Redis Cluster.
 *
 * Each record is a hash `{v: value, r: version}`. Versions are 96 random bits written with
 * the value, so they never repeat for a key, not even after a delete and a re-create, and no
 * counter has to outlive the record. Conditional puts and deletes are Lua scripts, atomic on
 * the server. On a single server `commit` is one Lua script over all its keys; in a cluster
 * the keys of one volume are spread over every master on purpose (no shared hash tag), so
 * there is no multi-key transaction and `commit` is absent (src/cas supplies intent records).
 *
 * Calls that fail because the store is unreachable, or because a cluster is failing over,
 * are retried for up to `retryMs`; scripts recognise their own earlier success, so a retried
 * conditional write does not report a false conflict.
 */
export class RedisStore implements KvStore {
  readonly name = 'redis';
  readonly capabilities: StoreCapabilities;
  readonly commit?: (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => Promise<boolean>;
  private readonly client: Redis | Cluster;
  private readonly commands: Commands;
  private closed = false;

  private constructor(
    private readonly connection: RedisConnection,
    private readonly options: RedisOptions,
  ) {
    this.client = connection.client;
    this.commands = connection.client;
    const single = options.mode === 'single';
    this.capabilities = Object.freeze({
      maxValueBytes: options.maxValueBytes,
      atomicCommit: single,
      maxCommitOps: single ? REDIS_MAX_COMMIT_OPS : 0,
      placement: connection.placement,
    });
    if (single) this.commit = (ops, checks) => this.commitAll(ops, checks ?? []);
  }

  /**
   * Connects and checks the server(s).
   * @throws StoreUnavailable with the reason when they cannot be reached or are unsuitable
   */
  static async connect(options: RedisOptions): Promise<RedisStore> {
    return new RedisStore(await connectRedis(options), options);
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    const [value, version] = await this.call(`get of key ${key}`, (c) => c.hmgetBuffer(key, 'v', 'r'));
    return toVersioned(value, version);
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    const results: (VersionedValue | undefined)[] = [];
    for (let start = 0; start < keys.length; start += GET_BATCH) {
      const batch = keys.slice(start, start + GET_BATCH);
      // Issued in one tick: one pipeline on a single server (auto-pipelining); in a cluster
      // each is routed to the master of its slot, all in flight at once.
      const replies = await this.call(`getMany of ${batch.length} keys`, (c) =>
        Promise.all(batch.map((key) => c.hmgetBuffer(key, 'v', 'r'))),
      );
      for (const [value, version] of replies) results.push(toVersioned(value, version));
    }
    return results;
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    this.checkSize(key, value);
    const version = newVersion();
    const what = `put of key ${key}`;
    if (condition.kind === 'none') {
      await this.call(what, (c) => c.hset(key, 'v', value, 'r', version));
      return { ok: true, version };
    }
    const args =
      condition.kind === 'ifAbsent' ? ['a', '', version, value] : ['v', condition.version, version, value];
    const written = await this.call(what, (c) => runScript(c, CONDITIONAL_PUT, [key], args));
    return written === 1 ? { ok: true, version } : { ok: false };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    const what = `delete of key ${key}`;
    switch (condition.kind) {
      case 'none':
        return (await this.call(what, (c) => c.del(key))) > 0;
      case 'ifVersion':
        return (await this.call(what, (c) => runScript(c, CONDITIONAL_DELETE, [key], [condition.version]))) === 1;
      case 'ifAbsent':
        // An existing key fails the condition, a missing one has nothing to delete.
        return false;
    }
  }

  async *scan(prefix: string): AsyncIterable<string> {
    const nodes: Redis[] = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    const seen = new Set<string>();
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await this.call(`scan of prefix ${prefix}`, () =>
          node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', SCAN_COUNT),
        );
        cursor = next;
        for (const key of keys) {
          // SCAN may return a key twice (while the server rehashes); list it once.
          if (seen.has(key)) continue;
          seen.add(key);
          yield key;
        }
      } while (cursor !== '0');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await withTimeout(this.client.quit(), this.options.timeoutMs, () => new StoreTimeout('QUIT got no answer'));
    } catch {
      // A server that is gone cannot say goodbye; drop the sockets regardless.
    } finally {
      this.client.disconnect();
    }
  }

  private async commitAll(ops: readonly CommitOp[], checks: readonly CommitCheck[]): Promise<boolean> {
    if (ops.length + checks.length > REDIS_MAX_COMMIT_OPS) {
      throw new RangeError(
        `commit of ${ops.length + checks.length} ops and checks exceeds maxCommitOps ${REDIS_MAX_COMMIT_OPS}`,
      );
    }
    const seen = new Set<string>();
    for (const op of ops) {
      if (seen.has(op.key)) throw new RangeError(`commit writes key ${op.key} twice`);
      seen.add(op.key);
      if (op.value) this.checkSize(op.key, op.value);
    }
    if (ops.length === 0 && checks.length === 0) return true;
    const keys = [...ops.map((op) => op.key), ...checks.map((check) => check.key)];
    const args: (string | Buffer)[] = [String(ops.length)];
    for (const op of ops) {
      const cond = op.condition;
      args.push(
        cond.kind === 'none' ? 'n' : cond.kind === 'ifAbsent' ? 'a' : 'v',
        cond.kind === 'ifVersion' ? cond.version : '',
        op.value ? newVersion() : '',
        op.value ?? '',
      );
    }
    for (const check of checks) args.push(check.version ?? '');
    const applied = await this.call(`commit of ${ops.length} ops`, (c) => runScript(c, COMMIT, keys, args));
    return applied === 1;
  }

  /**
   * Runs one call with the per-attempt time limit, retrying while the store is unreachable or
   * failing over, for up to `retryMs` in all.
   */
  private async call<T>(what: string, fn: (commands: Commands) => Promise<T>): Promise<T> {
    const started = Date.now();
    // ioredis's own commandTimeout normally fires first; this bound also covers commands that
    // wait in a queue while the cluster client has no connection at all.
    const attemptLimit = this.options.timeoutMs + 1000;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new StoreUnavailable(`the Redis store was closed before the ${what}; open a new one`);
      try {
        return await withTimeout(fn(this.commands), attemptLimit, () =>
          this.client.status === 'ready'
            ? new StoreTimeout('Command timed out')
            : new StoreUnavailable(`no connection to the servers (client ${this.client.status})`),
        );
      } catch (err) {
        const kind = classifyRedisError(err);
        const delay = Math.min(100 * 2 ** attempt, 1000);
        const retry = (kind === 'unavailable' || kind === 'timeout') && Date.now() - started + delay < this.options.retryMs;
        if (!retry || this.closed) {
          const connectionError = kind === 'unavailable' ? this.connection.lastError() : undefined;
          throw toStoreError(err, what, this.connection.context, connectionError);
        }
        await sleep(delay);
      }
    }
  }

  private checkSize(key: string, value: Buffer): void {
    if (value.length > this.options.maxValueBytes) throw new ValueTooLarge(key, value.length, this.options.maxValueBytes);
  }
}

/** Runs a script by its SHA1, loading it on a server that does not know it yet. */
async function runScript(c: Commands, script: LuaScript, keys: readonly string[], args: readonly (string | Buffer)[]) {
  try {
    return await c.evalsha(script.sha1, keys.length, ...keys, ...args);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return c.eval(script.source, keys.length, ...keys, ...args);
  }
}

function newVersion(): string {
  return randomBytes(12).toString('base64url');
}

function toVersioned(value: Buffer | null, version: Buffer | null): VersionedValue | undefined {
  if (value === null || version === null) return undefined;
  // Small replies may be views into a large socket buffer; copy them so that holding one
  // record does not pin the whole buffer.
  const own = value.byteLength * 2 < value.buffer.byteLength ? Buffer.from(value) : value;
  return { value: own, version: version.toString('latin1') };
}

/** Escapes the glob characters of SCAN MATCH. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
