import { StoreError, StoreTimeout, StoreUnavailable, ValueTooLarge, isUnreachable } from '../errors.js';
import {
  UNCONDITIONAL,
  type KvStore,
  SINGLE_DOMAIN,
  type PutResult,
  type StoreCapabilities,
  type VersionedValue,
  type WriteCondition,
} from '../kv-store.js';
import { HttpEndpoints, type HttpResponse } from './http-endpoints.js';
import pMap from 'p-map';
import { parseMultipart } from './multipart.js';
import type { HttpOptions } from './options.js';
import { CREATION_CLOCK, mergeClocks, parseClock, sameEntries, serializeClock, type VectorClock } from './vector-clock.js';


/** First byte of every stored value: a live record, or a deletion marker. */
const LIVE = 0x01;
const TOMBSTONE = 0x00;
const TOMBSTONE_BODY = Buffer.from([TOMBSTONE]);
/** Read-and-retry rounds of an unconditional write that keeps losing to concurrent writers. */
const MAX_ROUNDS = 16;

const CLOCK_HEADER = 'X-VOLD-Vector-Clock';

/** What a key holds, as far as voldfs is concerned. */
type KeyState =
  | { readonly kind: 'missing' }
  | { readonly kind: 'tombstone'; readonly clock: VectorClock }
  | { readonly kind: 'live'; readonly clock: VectorClock; readonly value: Buffer };

/**
 * A KvStore on Voldemort through its REST coordinator: `GET /{store}/{key}` answers every
 * concurrent version as a MIME multipart with one X-VOLD-Vector-Clock each, `POST` writes with
 * the clock it sends (the coordinator increments it at the key's master node and answers 412
 * Precondition Failed when the result does not descend from what is stored), keys are
 * URL-safe base64.
 *
 * Mapping the contract onto vector clocks:
 * - version = the clock (JSON); ifVersion = POST with that clock (412 = conflict), after a GET
 *   that checks the key holds that version (Voldemort accepts any clock on a missing key);
 * - every clock voldfs creates carries a fixed entry {nodeId 32767: 1}. ifAbsent = POST with
 *   just that entry: incremented it becomes {32767:1, master:1}, which every existing record
 *   already reaches, so the coordinator refuses (412); on an absent key it is accepted. (A POST
 *   without a clock is an unconditional overwrite in Voldemort, so it cannot express
 *   ifAbsent.)
 * - a delete writes a one-byte tombstone instead of removing the key: Voldemort restarts the
 *   clock of a re-created key at 1, so after a real delete an old version would match the new
 *   record again (ABA). Tombstones keep clocks growing; they cost a key and a few bytes each.
 * - concurrent versions (siblings, possible after node failures) are read as one record: the
 *   newest by timestamp, versioned by the merge of all clocks, so a CAS write supersedes all.
 *
 * There is no multi-key transaction (`commit` is absent) and no way to list keys (`scan` is
 * absent).
 */
export class VoldemortStore implements KvStore {
  readonly name = 'http';
  readonly capabilities: StoreCapabilities;

  private constructor(
    private readonly endpoints: HttpEndpoints,
    private readonly options: HttpOptions,
  ) {
    this.capabilities = Object.freeze({
      maxValueBytes: options.maxValueBytes,
      atomicCommit: false,
      maxCommitOps: 0,
      placement: SINGLE_DOMAIN,
    });
  }

  /**
   * Connects to the first coordinator that answers and checks that it serves the store.
   * @throws StoreUnavailable naming the endpoints or the missing store
   */
  static async connect(options: HttpOptions): Promise<VoldemortStore> {
    const endpoints = new HttpEndpoints({
      urls: options.urls,
      timeoutMs: options.timeoutMs,
      concurrency: options.concurrency,
      retryMs: options.retryMs,
      label: 'Voldemort coordinator',
      shouldFailover: (r) => r.status === 503,
    });
    const store = new VoldemortStore(endpoints, options);
    try {
      await store.read('voldfs-connection-check');
      return store;
    } catch (err) {
      endpoints.close();
      if (isUnreachable(err)) {
        throw new StoreUnavailable(`cannot open the Voldemort store: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    const state = await this.read(key);
    return state.kind === 'live' ? { value: state.value, version: serializeClock(state.clock) } : undefined;
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    return pMap(keys, (key) => this.get(key), { concurrency: this.options.concurrency });
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    if (value.length > this.options.maxValueBytes) throw new ValueTooLarge(key, value.length, this.options.maxValueBytes);
    const body = Buffer.concat([Buffer.of(LIVE), value]);
    switch (condition.kind) {
      case 'ifVersion': {
        const clock = await this.liveAt(key, condition.version);
        return clock ? result(await this.write(key, body, clock)) : { ok: false };
      }
      case 'ifAbsent': {
        for (let round = 0; round < MAX_ROUNDS; round++) {
          const created = await this.write(key, body, CREATION_CLOCK);
          if (created) return result(created);
          // Refused: the key exists, or is a tombstone that a write with its clock may replace.
          const state = await this.read(key);
          if (state.kind === 'live') return { ok: false };
          if (state.kind === 'tombstone') return result(await this.write(key, body, state.clock));
        }
        return { ok: false };
      }
      case 'none': {
        let clock = CREATION_CLOCK;
        for (let round = 0; round < MAX_ROUNDS; round++) {
          const written = await this.write(key, body, clock);
          if (written) return result(written);
          const state = await this.read(key);
          clock = state.kind === 'missing' ? CREATION_CLOCK : state.clock;
        }
        throw new StoreError(`put of key ${key} lost to concurrent writers ${MAX_ROUNDS} times in a row; try again`);
      }
    }
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    switch (condition.kind) {
      case 'ifVersion': {
        const clock = await this.liveAt(key, condition.version);
        return clock !== undefined && (await this.write(key, TOMBSTONE_BODY, clock)) !== undefined;
      }
      case 'ifAbsent':
        // An existing key fails the condition, a missing one has nothing to delete.
        return false;
      case 'none':
        for (let round = 0; round < MAX_ROUNDS; round++) {
          const state = await this.read(key);
          if (state.kind !== 'live') return false;
          if (await this.write(key, TOMBSTONE_BODY, state.clock)) return true;
        }
        throw new StoreError(`delete of key ${key} lost to concurrent writers ${MAX_ROUNDS} times in a row; try again`);
    }
  }

  async close(): Promise<void> {
    this.endpoints.close();
  }

  /**
   * The clock of `version` if the key is live at that version now, else undefined. Needed
   * before a CAS write because Voldemort accepts a write with any clock on a key that has no
   * version at all: without the check, ifVersion would create a missing key. Once a key exists
   * it never disappears (deletes leave tombstones), so the check cannot go stale in a way the
   * clock comparison of the write would miss.
   */
  private async liveAt(key: string, version: string): Promise<VectorClock | undefined> {
    const clock = parseClock(version);
    if (!clock) return undefined;
    const state = await this.read(key);
    return state.kind === 'live' && sameEntries(state.clock, clock) ? clock : undefined;
  }

  /** GET: what the key holds, siblings resolved. */
  private async read(key: string): Promise<KeyState> {
    const what = `get of key ${key}`;
    const response = await this.endpoints.request(
      { method: 'GET', path: this.pathOf(key), headers: { ...this.headers(), accept: 'multipart/binary' } },
      what,
    );
    if (response.status === 404) return { kind: 'missing' };
    if (response.status !== 200) throw this.refusal(response, what);
    let parts;
    try {
      parts = parseMultipart(response.body);
    } catch (err) {
      throw new StoreError(`Voldemort answered the ${what} with a malformed multipart body: ${(err as Error).message}`);
    }
    if (parts.length === 0) return { kind: 'missing' };
    const versions = parts.map((part) => {
      const clock = parseClock(part.headers.get('x-vold-vector-clock'));
      if (!clock) throw new StoreError(`Voldemort answered the ${what} with a version lacking a valid ${CLOCK_HEADER}`);
      if (part.body.length === 0 || (part.body[0] !== LIVE && part.body[0] !== TOMBSTONE)) {
        throw new StoreError(`key ${key} holds a value voldfs did not write (no record marker byte)`);
      }
      return { clock, body: part.body };
    });
    // Siblings: the newest wins, and the merged clock lets the next write replace them all.
    const newest = versions.reduce((a, b) => (b.clock.timestamp >= a.clock.timestamp ? b : a));
    const clock = versions.length === 1 ? newest.clock : mergeClocks(versions.map((v) => v.clock));
    return newest.body[0] === TOMBSTONE
      ? { kind: 'tombstone', clock }
      : { kind: 'live', clock, value: newest.body.subarray(1) };
  }

  /** POST with `clock`: the new clock, or undefined when Voldemort finds the clock obsolete (412). */
  private async write(key: string, body: Buffer, clock: VectorClock): Promise<VectorClock | undefined> {
    const what = `put of key ${key}`;
    const response = await this.endpoints.request(
      {
        method: 'POST',
        path: this.pathOf(key),
        headers: { ...this.headers(), 'content-type': 'binary', [CLOCK_HEADER]: serializeClock(clock) },
        body,
      },
      what,
    );
    if (response.status === 412) return undefined;
    if (response.status === 413) throw new ValueTooLarge(key, body.length - 1, this.options.maxValueBytes);
    if (response.status !== 201 && response.status !== 200) throw this.refusal(response, what);
    const written = parseClock(response.headers.get(CLOCK_HEADER));
    if (!written) throw new StoreError(`Voldemort accepted the ${what} but answered no valid ${CLOCK_HEADER}`);
    return written;
  }

  private pathOf(key: string): string {
    return `/${this.options.store}/${Buffer.from(key, 'utf8').toString('base64url')}`;
  }

  /** Headers every coordinator request must carry (it answers 400 without them). */
  private headers(): Record<string, string> {
    return {
      'X-VOLD-Request-Timeout-ms': String(this.options.timeoutMs),
      'X-VOLD-Request-Origin-Time-ms': String(Date.now()),
    };
  }

  private refusal(response: HttpResponse, what: string): StoreError {
    const text = response.body.toString('utf8', 0, 300).trim();
    const where = `Voldemort coordinator at ${response.endpoint}`;
    if (response.status === 400 && /Non Existing store/i.test(text)) {
      return new StoreUnavailable(
        `${where} has no store named ${this.options.store}: create it in the cluster's stores.xml or set VOLDFS_HTTP_STORE`,
      );
    }
    if (response.status === 408) return new StoreTimeout(`${where} timed out on the ${what}: ${text}`);
    if (response.status === 500 || response.status === 503 || response.status === 416) {
      return new StoreUnavailable(`${where} could not serve the ${what} (HTTP ${response.status}: ${text}); check its storage nodes`);
    }
    return new StoreError(`${where} refused the ${what}: HTTP ${response.status} ${text}`);
  }
}

function result(clock: VectorClock | undefined): PutResult {
  return clock ? { ok: true, version: serializeClock(clock) } : { ok: false };
}
