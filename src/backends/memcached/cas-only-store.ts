import { randomBytes } from 'node:crypto';
import { StoreError, ValueTooLarge } from '../errors.js';
import { UNCONDITIONAL, type KvStore, type PutResult, type StoreCapabilities, type VersionedValue, type WriteCondition } from '../kv-store.js';
import pMap from 'p-map';
import type { CasItem, CasWire, StoreOutcome } from './cas-wire.js';
import { KEY_LOG_PREFIX, KeyLog } from './key-log.js';
import { encodeKey } from './keys.js';
import { JumpHashPlacement } from './placement.js';
import { casOfVersion, versionOfCas } from './protocol.js';

/**
 * What a CAS-only server offers beyond get/gets, set and cas:
 * - `add`: memcached's create-if-absent (twemproxy passes it on; kumofs has none);
 * - `casCreatesMissing`: kumofs stores a `cas` on a key that does not exist instead of
 *   answering NOT_FOUND, and leaves a tombstone on delete that fails every later `cas` for
 *   up to an hour.
 */
export interface CasOnlyDialect {
  readonly name: string;
  readonly hasAdd: boolean;
  readonly casCreatesMissing: boolean;
  /** Largest value (frame byte included) the server returns whole, where below its item size. */
  readonly maxReadableBytes?: number;
}

export const KUMOFS_DIALECT: CasOnlyDialect = Object.freeze({ name: 'kumofs', hasAdd: false, casCreatesMissing: true });
/**
 * kumofs's binary gateway stores longer values but answers GET with the value's length modulo
 * 65536 (a 70,000-byte record comes back as its first 4,464 bytes); the text port has no such limit.
 */
export const KUMOFS_BINARY_DIALECT: CasOnlyDialect = Object.freeze({ ...KUMOFS_DIALECT, name: 'kumofs binary', maxReadableBytes: 65535 });
export const MEMCACHED_TEXT_DIALECT: CasOnlyDialect = Object.freeze({ name: 'memcached text protocol', hasAdd: true, casCreatesMissing: false });

/** First byte of every stored value: a live record, or the marker a delete leaves. */
const LIVE = Buffer.from([1]);
const DELETED = Buffer.from([0]);
/** Bytes the framing adds to a value. */
export const FRAME_BYTES = 1;
const GET_MANY_CONCURRENCY = 64;
/** Rounds of an unconditional put or delete racing other writers before giving up. */
const RACE_ATTEMPTS = 8;
/** The CAS kumofs compares a missing key against: any value creates it, any live record differs. */
const CAS_OF_ABSENT = 1n;

/**
 * A KvStore over memcached-protocol servers that offer get/gets, set and cas but not the rest
 * of what MemcachedStore uses: kumofs (either gateway port), and memcached behind twemproxy
 * (text protocol only). Keys are spread over the servers by jump consistent hashing.
 *
 * Nothing here depends on an atomic create-if-absent or a conditional delete the server
 * lacks. Every value is framed by one byte: a delete writes a one-byte "deleted" marker by
 * CAS instead of removing the key, so
 * - a conditional delete is a cas of the marker against the version;
 * - create-if-absent is `add` where the server has it, or a cas against the marker's CAS
 *   (kumofs: against CAS 1 on a key that never existed, which kumofs creates atomically and
 *   which fails once anyone else created it);
 * - no key voldfs deletes is ever left as a kumofs tombstone, so reusing it never trips on one.
 * Markers stay (a few dozen bytes per deleted key): the price of both guarantees.
 *
 * These servers cannot list their keys, so every key created (put without ifVersion) is first
 * logged in this client's key log (key-log.ts): `scan` lists the logged keys that exist.
 */
export class CasOnlyStore implements KvStore {
  readonly name = 'mc';
  readonly capabilities: StoreCapabilities;
  private readonly placement: JumpHashPlacement;
  private readonly keyLog: KeyLog;
  private closed = false;

  constructor(
    private readonly wires: readonly CasWire[],
    readonly dialect: CasOnlyDialect,
    itemSizeMax: number,
  ) {
    this.placement = new JumpHashPlacement(wires.length);
    this.keyLog = new KeyLog(this);
    this.capabilities = Object.freeze({
      maxValueBytes: Math.min(itemSizeMax - 250 - 59, dialect.maxReadableBytes ?? Infinity) - FRAME_BYTES,
      atomicCommit: false,
      maxCommitOps: 0,
      placement: this.placement,
    });
  }

  /** The server `key` lives on, as `host:port`. */
  serverOf(key: string): string {
    return this.wires[this.placement.domainOf(key)].label;
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    const item = await this.read(key);
    return item && isLive(item, key) ? { value: item.value.subarray(FRAME_BYTES), version: versionOfCas(item.cas) } : undefined;
  }

  getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    return pMap(keys, (key) => this.get(key), { concurrency: GET_MANY_CONCURRENCY });
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    const limit = this.capabilities.maxValueBytes;
    if (value.length > limit) throw new ValueTooLarge(key, value.length, limit);
    const framed = [LIVE, value];
    if (condition.kind !== 'ifVersion' && !key.startsWith(KEY_LOG_PREFIX)) await this.keyLog.record(key);
    let stored: boolean;
    switch (condition.kind) {
      case 'none':
        stored = await this.putAnyway(key, framed);
        break;
      case 'ifAbsent':
        stored = await this.create(key, framed);
        break;
      case 'ifVersion': {
        const cas = casOfVersion(condition.version);
        stored = cas !== undefined && (await this.replace(key, framed, cas));
        break;
      }
    }
    if (!stored) return { ok: false };
    return { ok: true, version: await this.versionAfterWrite(key, value) };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    if (condition.kind === 'ifAbsent') {
      throw new RangeError(`delete of ${key} with condition ifAbsent makes no sense; use none or ifVersion`);
    }
    if (condition.kind === 'ifVersion') {
      const cas = casOfVersion(condition.version);
      return cas !== undefined && (await this.replace(key, [DELETED], cas));
    }
    for (let attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
      const item = await this.read(key);
      if (!item || !isLive(item, key)) return false;
      const outcome = await this.write(key, 'cas', [DELETED], item.cas);
      if (outcome === 'stored') return true;
      if (outcome === 'notFound') return false;
    }
    throw this.racing('delete', key);
  }

  /** Keys starting with `prefix` that this store's clients created and that exist; not a snapshot. */
  async *scan(prefix: string): AsyncIterable<string> {
    this.checkOpen();
    yield* this.keyLog.keys(prefix);
  }

  /** Compacts the key log of `prefix`'s volume; only while nothing else writes there (fsck --offline). */
  compactListing(prefix: string): Promise<{ before: number; after: number }> {
    this.checkOpen();
    return this.keyLog.compact(prefix);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wire of this.wires) wire.close();
  }

  /** Unconditional put: a plain set on kumofs; add-then-cas on memcached, whose -M SET can unlink. */
  private async putAnyway(key: string, framed: Buffer[]): Promise<boolean> {
    if (!this.dialect.hasAdd) return this.stored(key, await this.write(key, 'set', framed));
    for (let attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
      if ((await this.write(key, 'add', framed)) === 'stored') return true;
      const item = await this.read(key);
      if (item && (await this.write(key, 'cas', framed, item.cas)) === 'stored') return true;
    }
    throw this.racing('put', key);
  }

  /**
   * Create-if-absent: add, or on kumofs a cas against CAS 1, which stores a key that never
   * existed and fails on any record; then, over a deleted marker, a cas against its CAS.
   */
  private async create(key: string, framed: Buffer[]): Promise<boolean> {
    const first = this.dialect.hasAdd ? await this.write(key, 'add', framed) : await this.write(key, 'cas', framed, CAS_OF_ABSENT);
    if (first === 'stored') return true;
    const item = await this.read(key);
    // Missing now: deleted or (kumofs) a tombstone someone else left; a conflict either way.
    if (!item || isLive(item, key)) return false;
    return this.stored(key, await this.write(key, 'cas', framed, item.cas));
  }

  /** Compare-and-swap; where cas would create a missing key, the key is read first. */
  private async replace(key: string, framed: Buffer[], cas: bigint): Promise<boolean> {
    if (this.dialect.casCreatesMissing) {
      // Keys are never removed, so one read showing the key settles that cas cannot create it.
      const item = await this.read(key);
      if (!item || item.cas !== cas || !isLive(item, key)) return false;
    }
    return this.stored(key, await this.write(key, 'cas', framed, cas));
  }

  private async versionAfterWrite(key: string, value: Buffer): Promise<string> {
    // These servers do not return the CAS a write made: it is read back. A record already
    // overwritten by someone else gets a version no record has, so ifVersion with it fails.
    const item = await this.read(key);
    if (item && isLive(item, key) && item.value.subarray(FRAME_BYTES).equals(value)) return versionOfCas(item.cas);
    return `w${randomBytes(8).toString('hex')}`;
  }

  private stored(key: string, outcome: StoreOutcome): boolean {
    return outcome === 'stored';
  }

  private async read(key: string): Promise<CasItem | undefined> {
    this.checkOpen();
    return this.wireOf(key).gets(encodeKey(key));
  }

  private async write(key: string, command: 'set' | 'add' | 'cas', framed: Buffer[], cas = 0n): Promise<StoreOutcome> {
    this.checkOpen();
    const wire = this.wireOf(key);
    const encoded = encodeKey(key);
    const outcome =
      command === 'set' ? await wire.set(encoded, framed) : command === 'add' ? await wire.add(encoded, framed) : await wire.cas(encoded, framed, cas);
    if (outcome === 'tooLarge') {
      const bytes = framed.reduce((sum, part) => sum + part.length, 0) - FRAME_BYTES;
      throw new ValueTooLarge(key, bytes, this.capabilities.maxValueBytes);
    }
    return outcome;
  }

  private wireOf(key: string): CasWire {
    return this.wires[this.placement.domainOf(key)];
  }

  private racing(operation: string, key: string): StoreError {
    return new StoreError(`${operation} of ${key} kept racing with other clients (${RACE_ATTEMPTS} attempts); retry the operation`);
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreError('memcached store was closed; open a new one');
  }
}

/** Whether a stored value is a live record (not a deleted marker). @throws StoreError when it is not framed */
function isLive(item: CasItem, key: string): boolean {
  if (item.value.length >= 1 && item.value[0] === LIVE[0]) return true;
  if (item.value.length === 1 && item.value[0] === DELETED[0]) return false;
  throw new StoreError(
    `record ${key} was not written by voldfs over this protocol (voldfs frames every value on kumofs and the text protocol); ` +
      `a volume must be reached the same way every time, through the text protocol or kumofs`,
  );
}
