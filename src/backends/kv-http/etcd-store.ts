import { StoreError, StoreUnavailable, ValueTooLarge } from '../errors.js';
import {
  UNCONDITIONAL,
  type CommitCheck,
  type CommitOp,
  type KvStore,
  SINGLE_DOMAIN,
  type PutResult,
  type StoreCapabilities,
  type VersionedValue,
  type WriteCondition,
} from '../kv-store.js';
import {
  absent,
  b64,
  gatewayError,
  isRevision,
  isTransient,
  modifiedAt,
  refusal,
  type EtcdCompare,
  type EtcdDeleteResponse,
  type EtcdKeyValue,
  type EtcdPutResponse,
  type EtcdRangeResponse,
  type EtcdRequestOp,
  type EtcdTxnResponse,
} from './etcd-gateway.js';
import { HttpEndpoints } from './http-endpoints.js';
import pMap from 'p-map';
import type { HttpOptions } from './options.js';


/** Gateway path prefixes: etcd 3.4+ serves /v3/, 3.3 only /v3beta/. */
const PREFIXES = ['/v3', '/v3beta'] as const;
/** Keys per page of a scan. */
const SCAN_PAGE = 1000;
/** Batches of getMany in flight at once. */
const GET_BATCHES_IN_FLIGHT = 4;
/** Bytes a txn request spends per op and compare besides keys and values (protobuf framing). */
const OP_OVERHEAD_BYTES = 32;

/**
 * A KvStore on etcd through its v3 JSON gateway (`POST /v3/kv/range|put|deleterange|txn` on
 * the client port), with failover between members.
 *
 * The version of a record is its mod_revision: revisions are global and only grow, so a key
 * deleted and created again never shows an earlier version. Conditional writes and `commit`
 * are transactions whose compares test mod_revision (or create_revision 0 for "absent"); etcd
 * applies a transaction atomically on every member, so `commit` is a real multi-key
 * transaction of up to --max-txn-ops ops and checks.
 */
export class EtcdStore implements KvStore {
  readonly name = 'http';
  readonly capabilities: StoreCapabilities;
  private readonly getBatch: number;

  private constructor(
    private readonly endpoints: HttpEndpoints,
    private readonly prefix: string,
    private readonly options: HttpOptions,
  ) {
    this.capabilities = Object.freeze({
      maxValueBytes: options.maxValueBytes,
      atomicCommit: true,
      maxCommitOps: options.maxTxnOps,
      placement: SINGLE_DOMAIN,
      scansByRange: true,
    });
    // 32 ranges of up to 1 MiB each make answers of up to ~45 MB of JSON (base64): enough
    // to amortise the round trip, small enough to parse without stalling other requests.
    this.getBatch = Math.min(32, options.maxTxnOps);
  }

  /**
   * Connects to the first member that answers and finds the gateway's path prefix.
   * @throws StoreUnavailable naming the endpoints when none answers, or when what answers is
   *   not an etcd v3 gateway
   */
  static async connect(options: HttpOptions): Promise<EtcdStore> {
    const endpoints = new HttpEndpoints({
      urls: options.urls,
      timeoutMs: options.timeoutMs,
      concurrency: options.concurrency,
      retryMs: options.retryMs,
      label: 'etcd',
      shouldFailover: isTransient,
    });
    try {
      for (const prefix of PREFIXES) {
        const response = await endpoints.request(
          {
            method: 'POST',
            path: `${prefix}/kv/range`,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ key: b64('\u0000voldfs-probe'), keys_only: true }),
          },
          'connection check',
        );
        if (response.status === 200) return new EtcdStore(endpoints, prefix, options);
        if (response.status !== 404) throw refusal(response, 'connection check');
      }
      throw new StoreUnavailable(
        `${options.urls.join(', ')} answers HTTP but serves no etcd v3 JSON gateway (/v3/ or /v3beta/); ` +
          'point VOLDFS_HTTP_URLS at the client URLs of etcd 3.3 or newer',
      );
    } catch (err) {
      endpoints.close();
      if (err instanceof StoreUnavailable) throw new StoreUnavailable(`cannot open the etcd store: ${err.message}`, { cause: err });
      throw err;
    }
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    const reply = await this.call<EtcdRangeResponse>('kv/range', { key: b64(key) }, `get of key ${key}`);
    return toVersioned(reply.kvs?.[0]);
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += this.getBatch) batches.push(keys.slice(i, i + this.getBatch));
    // One transaction of ranges per batch: one round trip, and a consistent view of the batch.
    const replies = await pMap(batches, (batch) =>
      this.call<EtcdTxnResponse>(
        'kv/txn',
        { success: batch.map((key): EtcdRequestOp => ({ request_range: { key: b64(key) } })) },
        `getMany of ${batch.length} keys`,
      ), { concurrency: GET_BATCHES_IN_FLIGHT });
    return replies.flatMap((reply, i) => {
      const responses = reply.responses ?? [];
      if (responses.length !== batches[i].length) {
        throw new StoreError(`etcd answered ${responses.length} ranges for ${batches[i].length} keys in getMany`);
      }
      return responses.map((r) => toVersioned(r.response_range?.kvs?.[0]));
    });
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    this.checkSize(key, value);
    const what = `put of key ${key}`;
    const request: EtcdRequestOp = { request_put: { key: b64(key), value: value.toString('base64') } };
    if (condition.kind === 'none') {
      const reply = await this.call<EtcdPutResponse>('kv/put', request.request_put, what, key, value.length);
      return { ok: true, version: revisionOf(reply.header?.revision, what) };
    }
    let compare: EtcdCompare;
    if (condition.kind === 'ifAbsent') compare = absent(key);
    else if (isRevision(condition.version)) compare = modifiedAt(key, condition.version);
    else return { ok: false };
    const { reply, retried } = await this.exchange<EtcdTxnResponse>('kv/txn', { compare: [compare], success: [request] }, what, key, value.length);
    if (reply.succeeded) return { ok: true, version: revisionOf(reply.header?.revision, what) };
    const landed = retried ? await this.appliedRevision([{ key, value, condition }]) : undefined;
    return landed ? { ok: true, version: landed } : { ok: false };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    const what = `delete of key ${key}`;
    switch (condition.kind) {
      case 'none': {
        const reply = await this.call<EtcdDeleteResponse>('kv/deleterange', { key: b64(key) }, what);
        return reply.deleted === '1';
      }
      case 'ifVersion': {
        if (!isRevision(condition.version)) return false;
        const reply = await this.call<EtcdTxnResponse>(
          'kv/txn',
          { compare: [modifiedAt(key, condition.version)], success: [{ request_delete_range: { key: b64(key) } }] },
          what,
        );
        return reply.succeeded === true && reply.responses?.[0]?.response_delete_range?.deleted === '1';
      }
      case 'ifAbsent':
        // An existing key fails the condition, a missing one has nothing to delete.
        return false;
    }
  }

  async commit(ops: readonly CommitOp[], checks: readonly CommitCheck[] = []): Promise<boolean> {
    const max = this.options.maxTxnOps;
    if (ops.length + checks.length > max) {
      throw new RangeError(`commit of ${ops.length + checks.length} ops and checks exceeds maxCommitOps ${max}`);
    }
    const seen = new Set<string>();
    let bytes = 0;
    for (const op of ops) {
      // etcd refuses a transaction that writes a key twice ("duplicate key given in txn request").
      if (seen.has(op.key)) throw new RangeError(`commit writes key ${op.key} twice`);
      seen.add(op.key);
      if (op.value) this.checkSize(op.key, op.value);
      bytes += op.key.length * 2 + (op.value?.length ?? 0) + OP_OVERHEAD_BYTES * 2;
    }
    for (const check of checks) bytes += check.key.length + OP_OVERHEAD_BYTES;
    if (bytes > this.options.maxRequestBytes) {
      throw new ValueTooLarge(ops[0]?.key ?? '(commit)', bytes, this.options.maxRequestBytes);
    }
    const compare: EtcdCompare[] = [];
    for (const op of ops) {
      if (op.condition.kind === 'ifAbsent') compare.push(absent(op.key));
      else if (op.condition.kind === 'ifVersion') {
        if (!isRevision(op.condition.version)) return false;
        compare.push(modifiedAt(op.key, op.condition.version));
      }
    }
    for (const check of checks) {
      if (check.version === null) compare.push(absent(check.key));
      else if (isRevision(check.version)) compare.push(modifiedAt(check.key, check.version));
      else return false;
    }
    const success = ops.map(
      (op): EtcdRequestOp =>
        op.value
          ? { request_put: { key: b64(op.key), value: op.value.toString('base64') } }
          : { request_delete_range: { key: b64(op.key) } },
    );
    if (success.length === 0 && compare.length === 0) return true;
    const { reply, retried } = await this.exchange<EtcdTxnResponse>('kv/txn', { compare, success }, `commit of ${ops.length} ops`, ops[0]?.key, bytes);
    if (reply.succeeded === true) return true;
    return retried && (await this.appliedRevision(ops)) !== undefined;
  }

  /**
   * After a write whose first attempt lost its connection and whose resend failed its compare:
   * the revision at which that first attempt applied `ops`, or undefined if it did not.
   * Applied means every written key holds our value at one and the same mod_revision (a
   * transaction's writes share its revision) and every deleted key is gone. Without this, a
   * create whose first attempt landed would be retried by the layers above, find its own name,
   * and answer EEXIST. Ops that only delete cannot be told apart from someone else's delete:
   * undefined, a conflict, as before.
   */
  private async appliedRevision(ops: readonly CommitOp[]): Promise<string | undefined> {
    if (!ops.some((op) => op.value !== null)) return undefined;
    const now = await this.getMany(ops.map((op) => op.key));
    let revision: string | undefined;
    for (const [i, op] of ops.entries()) {
      const found = now[i];
      if (op.value === null) {
        if (found) return undefined;
        continue;
      }
      if (!found || !found.value.equals(op.value)) return undefined;
      if (revision !== undefined && found.version !== revision) return undefined;
      revision = found.version;
    }
    return revision;
  }

  async *scan(prefix: string): AsyncIterable<string> {
    const end = prefixEnd(prefix).toString('base64');
    let from = prefix;
    for (;;) {
      const reply = await this.call<EtcdRangeResponse>(
        'kv/range',
        { key: b64(from), range_end: end, keys_only: true, limit: String(SCAN_PAGE) },
        `scan of prefix ${prefix}`,
      );
      const kvs = reply.kvs ?? [];
      for (const kv of kvs) yield Buffer.from(kv.key ?? '', 'base64').toString('utf8');
      if (!reply.more || kvs.length === 0) return;
      // The smallest key after the last one listed.
      from = `${Buffer.from(kvs[kvs.length - 1].key ?? '', 'base64').toString('utf8')}\u0000`;
    }
  }

  async close(): Promise<void> {
    this.endpoints.close();
  }

  /**
   * POSTs `body` to the gateway and parses the answer.
   * @param key and `size` describe the value sent, for ValueTooLarge when etcd finds the
   *   request too large
   */
  private async call<T>(path: string, body: unknown, what: string, key?: string, size?: number): Promise<T> {
    return (await this.exchange<T>(path, body, what, key, size)).reply;
  }

  /** {@link call}, also telling whether the request was resent after a lost connection. */
  private async exchange<T>(path: string, body: unknown, what: string, key?: string, size?: number): Promise<{ reply: T; retried: boolean }> {
    const response = await this.endpoints.request(
      {
        method: 'POST',
        path: `${this.prefix}/${path}`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      },
      what,
    );
    if (response.status !== 200) {
      if (/request is too large/.test(gatewayError(response).message)) {
        throw new ValueTooLarge(key ?? '(request)', size ?? 0, this.options.maxRequestBytes);
      }
      throw refusal(response, what);
    }
    return { reply: JSON.parse(response.body.toString('utf8')) as T, retried: response.retried };
  }

  private checkSize(key: string, value: Buffer): void {
    if (value.length > this.options.maxValueBytes) throw new ValueTooLarge(key, value.length, this.options.maxValueBytes);
  }
}

function toVersioned(kv: EtcdKeyValue | undefined): VersionedValue | undefined {
  if (!kv) return undefined;
  if (kv.mod_revision === undefined) throw new StoreError('etcd answered a record without mod_revision');
  return { value: Buffer.from(kv.value ?? '', 'base64'), version: kv.mod_revision };
}

function revisionOf(revision: string | undefined, what: string): string {
  if (revision === undefined || !isRevision(revision)) {
    throw new StoreError(`etcd answered the ${what} without a revision in its header`);
  }
  return revision;
}

/** The range end that selects every key starting with `prefix` (a zero byte: all keys). */
function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return Buffer.alloc(1);
}
