import { LRUCache } from 'lru-cache';
import { StoreError, ValueTooLarge } from '../errors.js';
import { UNCONDITIONAL, type KvStore, type PutResult, type StoreCapabilities, type VersionedValue, type WriteCondition } from '../kv-store.js';
import pMap from 'p-map';
import type { CasItem, CasWire, StoreOutcome } from './cas-wire.js';
import { KEY_LOG_PREFIX, KeyLog } from './key-log.js';
import { encodeKey } from './keys.js';
import { JumpHashPlacement } from './placement.js';
import { casOfVersion, versionOfCas } from './protocol.js';
import { DELETED_MARKER, FRAME_BYTES, newWriteFrame, unframe, type FramedRecord } from './record-frame.js';

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

export { FRAME_BYTES } from './record-frame.js';
const GET_MANY_CONCURRENCY = 64;
/** Rounds of an unconditional put or delete racing other writers before giving up. */
const RACE_ATTEMPTS = 8;
/** The CAS kumofs compares a missing key against: any value creates it, any live record differs. */
const CAS_OF_ABSENT = 1n;
/** Versions of records written with a write id: the id, so a put's version is known without reading back. */
const WRITE_VERSION_PREFIX = 'w';
/** Keys whose CAS this client last read, with the write id it belongs to. */
const REMEMBERED_CAS = 65_536;
/**
 * Records up to this size are read back after a write, in the background, to learn their CAS
 * before the next conditional write needs it: metadata is rewritten by CAS, blocks never are.
 */
const READ_BACK_MAX_BYTES = 16 * 1024;

/** A record's CAS as last read: true of that write forever, since every write has a new id. */
interface KnownCas {
  readonly writeId: string;
  readonly cas: bigint;
}

/**
 * A KvStore over memcached-protocol servers that offer get/gets, set and cas but not the rest
 * of what MemcachedStore uses: kumofs (either gateway port), and memcached behind twemproxy
 * (text protocol only). Keys are spread over the servers by jump consistent hashing.
 *
 * Nothing here depends on an atomic create-if-absent or a conditional delete the server
 * lacks. Every value is framed (record-frame.ts): a delete writes a one-byte "deleted" marker
 * by CAS instead of removing the key, so
 * - a conditional delete is a cas of the marker against the version;
 * - create-if-absent is `add` where the server has it, or a cas against the marker's CAS
 *   (kumofs: against CAS 1 on a key that never existed, which kumofs creates atomically and
 *   which fails once anyone else created it);
 * - no key voldfs deletes is ever left as a kumofs tombstone, so reusing it never trips on one.
 * Markers stay (a few dozen bytes per deleted key): the price of both guarantees.
 *
 * Neither protocol returns the CAS a write made, so a version is the random id each write
 * puts in its frame, not the CAS: a put knows its version without reading the record back.
 * A conditional write needs the CAS that goes with the id: the one last read for that id if
 * this client remembers it (one round trip), else read now (two). Small records are read back
 * after each write without the caller waiting, so that the next cas usually finds the CAS known.
 *
 * These servers cannot list their keys, so every key created (put without ifVersion) is first
 * logged in this client's key log (key-log.ts): `scan` lists the logged keys that exist.
 */
export class CasOnlyStore implements KvStore {
  readonly name = 'mc';
  readonly capabilities: StoreCapabilities;
  private readonly placement: JumpHashPlacement;
  private readonly keyLog: KeyLog;
  private readonly knownCas = new LRUCache<string, KnownCas>({ max: REMEMBERED_CAS });
  /** Read-backs in flight, by key. */
  private readonly readingBack = new Map<string, Promise<void>>();
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
    const record = item && unframe(item.value, key);
    return record && { value: record.value, version: this.versionOf(key, record, item.cas) };
  }

  getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    return pMap(keys, (key) => this.get(key), { concurrency: GET_MANY_CONCURRENCY });
  }

  async put(key: string, value: Buffer, condition: WriteCondition = UNCONDITIONAL): Promise<PutResult> {
    const limit = this.capabilities.maxValueBytes;
    if (value.length > limit) throw new ValueTooLarge(key, value.length, limit);
    const { writeId, header } = newWriteFrame();
    const framed = [header, value];
    if (condition.kind !== 'ifVersion' && !key.startsWith(KEY_LOG_PREFIX)) await this.keyLog.record(key);
    let stored: boolean;
    switch (condition.kind) {
      case 'none':
        stored = await this.putAnyway(key, framed);
        break;
      case 'ifAbsent':
        stored = await this.create(key, framed);
        break;
      case 'ifVersion':
        stored = await this.replace(key, framed, condition.version);
        break;
    }
    if (!stored) return { ok: false };
    if (value.length <= READ_BACK_MAX_BYTES && !key.startsWith(KEY_LOG_PREFIX)) this.readBack(key, writeId);
    return { ok: true, version: WRITE_VERSION_PREFIX + writeId };
  }

  async delete(key: string, condition: WriteCondition = UNCONDITIONAL): Promise<boolean> {
    if (condition.kind === 'ifAbsent') {
      throw new RangeError(`delete of ${key} with condition ifAbsent makes no sense; use none or ifVersion`);
    }
    if (condition.kind === 'ifVersion') return this.replace(key, [DELETED_MARKER], condition.version);
    for (let attempt = 0; attempt < RACE_ATTEMPTS; attempt++) {
      const item = await this.read(key);
      if (!item || !unframe(item.value, key)) return false;
      const outcome = await this.write(key, 'cas', [DELETED_MARKER], item.cas);
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
    if (!item || unframe(item.value, key)) return false;
    return this.stored(key, await this.write(key, 'cas', framed, item.cas));
  }

  /** Compare-and-swap against the record `version` names; false when it is not the current one. */
  private async replace(key: string, framed: Buffer[], version: string): Promise<boolean> {
    const cas = await this.casOf(key, version);
    return cas !== undefined && this.stored(key, await this.write(key, 'cas', framed, cas));
  }

  /**
   * The CAS to compare against for `version`, or undefined when the record is not that
   * version. Keys are never removed, so a CAS read from the key proves that a cas cannot
   * create it (kumofs creates a missing key on cas).
   */
  private async casOf(key: string, version: string): Promise<bigint | undefined> {
    if (version.startsWith(WRITE_VERSION_PREFIX)) {
      const writeId = version.slice(WRITE_VERSION_PREFIX.length);
      const known = this.knownCas.get(key) ?? (await this.readingBack.get(key), this.knownCas.get(key));
      if (known?.writeId === writeId) return known.cas;
      const item = await this.read(key);
      const record = item && unframe(item.value, key);
      return record?.writeId === writeId ? item?.cas : undefined;
    }
    // A record from before write ids: its version is its CAS.
    const cas = casOfVersion(version);
    if (cas === undefined || !this.dialect.casCreatesMissing) return cas;
    const item = await this.read(key);
    return item && item.cas === cas && unframe(item.value, key) ? cas : undefined;
  }

  /** Learns the CAS of the write `writeId` made, unless the record has changed again meanwhile. */
  private readBack(key: string, writeId: string): void {
    const learn = async (): Promise<void> => {
      try {
        const item = await this.read(key);
        if (item && unframe(item.value, key)?.writeId === writeId) this.knownCas.set(key, { writeId, cas: item.cas });
      } catch {
        // Only an optimization: without it the next cas of this key reads the record itself.
      }
    };
    const reading = learn().finally(() => {
      if (this.readingBack.get(key) === reading) this.readingBack.delete(key);
    });
    this.readingBack.set(key, reading);
  }

  /** A record's version; for one with a write id, its CAS is remembered for the next cas. */
  private versionOf(key: string, record: FramedRecord, cas: bigint): string {
    if (record.writeId === undefined) return versionOfCas(cas);
    this.knownCas.set(key, { writeId: record.writeId, cas });
    return WRITE_VERSION_PREFIX + record.writeId;
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
