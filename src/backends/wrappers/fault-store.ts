import type {
  CommitCheck,
  CommitOp,
  KvStore,
  PutResult,
  StoreCapabilities,
  VersionedValue,
  WriteCondition,
} from '../kv-store.js';

/** The store call a {@link StoreCallHook} is told about. */
export type StoreCall = 'get' | 'getMany' | 'put' | 'delete' | 'commit' | 'scan';

/**
 * Called before each call of the wrapped store with the call's kind and the key it touches
 * (the first key for getMany and commit, the prefix for scan). Throwing fails that call; a hook
 * that ends the process stops the store exactly there.
 */
export type StoreCallHook = (call: StoreCall, key: string) => void | Promise<void>;

/**
 * A KvStore that runs a hook before every call of the store it wraps, and is otherwise that
 * store: same name, capabilities, native commit and scan (when the inner store has them).
 * The data path's counterpart of the intent layer's fault points, for stores or records that
 * do not go through the intent layer (immutable blocks; stores with native commit).
 */
export class FaultStore implements KvStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  readonly commit?: (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => Promise<boolean>;
  readonly commitVersioned?: KvStore['commitVersioned'];
  readonly commitAhead?: KvStore['commitAhead'];
  readonly otherProcessesAttached?: KvStore['otherProcessesAttached'];
  readonly scan?: (prefix: string) => AsyncIterable<string>;

  constructor(
    readonly inner: KvStore,
    private readonly hook: StoreCallHook,
  ) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    const commit = inner.commit?.bind(inner);
    if (commit) {
      this.commit = async (ops, checks) => {
        await this.hook('commit', ops[0]?.key ?? checks?.[0]?.key ?? '');
        return commit(ops, checks);
      };
    }
    const versioned = inner.commitVersioned?.bind(inner);
    if (versioned) {
      this.commitVersioned = async (ops, checks) => {
        await this.hook('commit', ops[0]?.key ?? checks?.[0]?.key ?? '');
        return versioned(ops, checks);
      };
    }
    const ahead = inner.commitAhead?.bind(inner);
    if (ahead) {
      this.commitAhead = async (ops, checks) => {
        await this.hook('commit', ops[0]?.key ?? checks?.[0]?.key ?? '');
        return ahead(ops, checks);
      };
    }
    this.otherProcessesAttached = inner.otherProcessesAttached?.bind(inner);
    const scan = inner.scan?.bind(inner);
    if (scan) this.scan = (prefix) => this.scanAfterHook(scan, prefix);
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    await this.hook('get', key);
    return this.inner.get(key);
  }

  async getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    if (keys.length > 0) await this.hook('getMany', keys[0]);
    return this.inner.getMany(keys);
  }

  async put(key: string, value: Buffer, condition?: WriteCondition): Promise<PutResult> {
    await this.hook('put', key);
    return this.inner.put(key, value, condition);
  }

  async delete(key: string, condition?: WriteCondition): Promise<boolean> {
    await this.hook('delete', key);
    return this.inner.delete(key, condition);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async *scanAfterHook(scan: (prefix: string) => AsyncIterable<string>, prefix: string): AsyncIterable<string> {
    await this.hook('scan', prefix);
    yield* scan(prefix);
  }
}
