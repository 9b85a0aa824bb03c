import type { CommitCheck, CommitOp, KvStore, PutResult, StoreCapabilities, Version, VersionedValue, WriteCondition } from '../kv-store.js';

/** Told of every request a store answered: its method, how long it took, and whether it threw. */
export type StoreObserver = (method: string, seconds: number, failed: boolean) => void;

/**
 * A store that reports each request to an observer (for `voldfs stats` and the metrics), and
 * otherwise passes everything through: the optional methods exist exactly when the inner
 * store has them.
 */
export class MeteredStore implements KvStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  readonly getValueInto?: KvStore['getValueInto'];
  readonly commit?: KvStore['commit'];
  readonly commitVersioned?: KvStore['commitVersioned'];
  readonly commitAhead?: KvStore['commitAhead'];
  readonly otherProcessesAttached?: KvStore['otherProcessesAttached'];
  readonly scan?: KvStore['scan'];
  readonly sync?: KvStore['sync'];
  readonly compactListing?: KvStore['compactListing'];

  constructor(
    private readonly inner: KvStore,
    private readonly observe: StoreObserver,
  ) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    const getValueInto = inner.getValueInto?.bind(inner);
    if (getValueInto) this.getValueInto = (key, alloc) => this.timed('get', () => getValueInto(key, alloc));
    const commit = inner.commit?.bind(inner);
    if (commit) this.commit = (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => this.timed('commit', () => commit(ops, checks));
    const commitVersioned = inner.commitVersioned?.bind(inner);
    if (commitVersioned) {
      this.commitVersioned = (ops: readonly CommitOp[], checks?: readonly CommitCheck[]): Promise<(Version | undefined)[] | undefined> =>
        this.timed('commit', () => commitVersioned(ops, checks));
    }
    const commitAhead = inner.commitAhead?.bind(inner);
    if (commitAhead) {
      this.commitAhead = async (ops: readonly CommitOp[], checks?: readonly CommitCheck[]) => {
        const taken = await commitAhead(ops, checks);
        return { versions: taken.versions, applied: this.timed('commit', () => taken.applied) };
      };
    }
    this.otherProcessesAttached = inner.otherProcessesAttached?.bind(inner);
    const scan = inner.scan?.bind(inner);
    if (scan) this.scan = (prefix) => scan(prefix);
    this.compactListing = inner.compactListing?.bind(inner);
    const sync = inner.sync?.bind(inner);
    if (sync) this.sync = () => this.timed('sync', sync);
  }

  get(key: string): Promise<VersionedValue | undefined> {
    return this.timed('get', () => this.inner.get(key));
  }

  getMany(keys: readonly string[]): Promise<(VersionedValue | undefined)[]> {
    return this.timed('getMany', () => this.inner.getMany(keys));
  }

  put(key: string, value: Buffer, condition?: WriteCondition): Promise<PutResult> {
    return this.timed('put', () => this.inner.put(key, value, condition));
  }

  delete(key: string, condition?: WriteCondition): Promise<boolean> {
    return this.timed('delete', () => this.inner.delete(key, condition));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async timed<T>(method: string, call: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    let failed = true;
    try {
      const result = await call();
      failed = false;
      return result;
    } finally {
      this.observe(method, Number(process.hrtime.bigint() - started) / 1e9, failed);
    }
  }
}
