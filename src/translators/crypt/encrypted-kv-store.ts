import type { KeyObject } from 'node:crypto';
import { ValueTooLarge } from '../../backends/errors.js';
import type {
  CommitCheck,
  CommitOp,
  KvStore,
  PutResult,
  StoreCapabilities,
  VersionedValue,
  WriteCondition,
} from '../../backends/kv-store.js';
import { AEAD_OVERHEAD, open, seal } from './aead.js';

const AAD_MAGIC = 'voldfs record v1\0';

export interface EncryptedKvStoreOptions {
  /**
   * Keys stored in clear (the superblock, which holds the wrapped key needed to decrypt the
   * rest). Default: none.
   */
  readonly exclude?: (key: string) => boolean;
}

/**
 * A KvStore whose values are sealed with AES-256-GCM under the metadata key, with the record's
 * key as associated data, so a record copied or swapped under another key fails to
 * authenticate. Keys stay in clear: voldfs keys hold only numbers and random ids, never names.
 * Versions, conditions, commit, getMany and scan pass through unchanged.
 *
 * A record that fails authentication throws IntegrityError from get/getMany (the filesystem
 * maps it to EIO); its bytes are never returned.
 */
export class EncryptedKvStore implements KvStore {
  readonly name: string;
  /** The inner store's, with maxValueBytes less nonce and tag (28 bytes). */
  readonly capabilities: StoreCapabilities;
  readonly commit?: (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => Promise<boolean>;
  readonly commitVersioned?: KvStore['commitVersioned'];
  readonly commitAhead?: KvStore['commitAhead'];
  readonly otherProcessesAttached?: KvStore['otherProcessesAttached'];
  readonly scan?: (prefix: string) => AsyncIterable<string>;
  private readonly exclude: (key: string) => boolean;

  constructor(
    private readonly inner: KvStore,
    private readonly key: KeyObject,
    options: EncryptedKvStoreOptions = {},
  ) {
    this.name = inner.name;
    this.exclude = options.exclude ?? (() => false);
    this.capabilities = Object.freeze({
      ...inner.capabilities,
      maxValueBytes: inner.capabilities.maxValueBytes - AEAD_OVERHEAD,
    });
    const innerCommit = inner.commit?.bind(inner);
    if (innerCommit) {
      // async, so that an oversized value rejects the promise like every other failure
      // instead of throwing at the call.
      this.commit = async (ops, checks) => innerCommit(this.sealOps(ops), checks);
    }
    const innerVersioned = inner.commitVersioned?.bind(inner);
    if (innerVersioned) this.commitVersioned = async (ops, checks) => innerVersioned(this.sealOps(ops), checks);
    const innerAhead = inner.commitAhead?.bind(inner);
    if (innerAhead) this.commitAhead = async (ops, checks) => innerAhead(this.sealOps(ops), checks);
    this.otherProcessesAttached = inner.otherProcessesAttached?.bind(inner);
    if (inner.scan) this.scan = inner.scan.bind(inner);
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    return this.openFound(key, await this.inner.get(key));
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    const found = await this.inner.getMany(keys);
    return found.map((f, i) => this.openFound(keys[i], f));
  }

  /** @throws ValueTooLarge above `capabilities.maxValueBytes`; whatever the inner store throws */
  async put(key: string, value: Buffer, condition?: WriteCondition): Promise<PutResult> {
    return this.inner.put(key, this.sealValue(key, value), condition);
  }

  delete(key: string, condition?: WriteCondition): Promise<boolean> {
    return this.inner.delete(key, condition);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** The ops of a commit with their values sealed (deletes as they are). */
  private sealOps(ops: readonly CommitOp[]): CommitOp[] {
    return ops.map((op) => (op.value === null ? op : { ...op, value: this.sealValue(op.key, op.value) }));
  }

  private sealValue(key: string, value: Buffer): Buffer {
    if (this.exclude(key)) return value;
    if (value.length > this.capabilities.maxValueBytes) {
      throw new ValueTooLarge(key, value.length, this.capabilities.maxValueBytes);
    }
    return seal(this.key, value, recordAad(key));
  }

  private openFound(key: string, found: VersionedValue | undefined): VersionedValue | undefined {
    if (found === undefined || this.exclude(key)) return found;
    return { value: open(this.key, found.value, recordAad(key), `record ${key}`), version: found.version };
  }
}

function recordAad(key: string): Buffer {
  return Buffer.from(AAD_MAGIC + key, 'utf8');
}
