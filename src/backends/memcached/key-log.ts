import { randomBytes } from 'node:crypto';
import { StoreError } from '../errors.js';
import { IF_ABSENT, ifVersion, UNCONDITIONAL, type KvStore } from '../kv-store.js';

/** Keys of the log itself start with this; no volume prefix can (volume names are words). */
export const KEY_LOG_PREFIX = '#keylog';
const REGISTRY_KEY = KEY_LOG_PREFIX;
/** Keys per segment record: at most 250 bytes each, so a segment stays below kumofs's 64 KiB. */
const KEYS_PER_SEGMENT = 200;
const REGISTER_ATTEMPTS = 50;
const EXISTENCE_BATCH = 512;

interface Waiter {
  readonly key: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The keys one client created, for a store that cannot list its keys (kumofs, twemproxy), so
 * that fsck finds leftovers a crash left behind. A client logs a key before creating it
 * (write-ahead): a crash can leave a logged key that was never written, never a written key
 * that is not logged. Keys logged together in one segment record are group-committed: the
 * keys of writes in flight together share one write of the log.
 *
 * Layout: `#keylog` lists the logs (one id per line, appended by CAS); `#keylog:<id>:<n>` is
 * segment n of log id, written once (fresh keys, so no create-if-absent is needed).
 */
export class KeyLog {
  private readonly id = randomBytes(8).toString('hex');
  private registered = false;
  private nextSegment = 0;
  private readonly queue: Waiter[] = [];
  private running = false;

  /** @param store the raw store: its puts of `#keylog` keys are not logged themselves */
  constructor(private readonly store: KvStore) {}

  /** Resolves once `key` is durably in this client's log. */
  record(key: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ key, resolve, reject });
      void this.pump();
    });
  }

  /**
   * Every logged key that starts with `prefix` and exists now, each once. Not a snapshot:
   * keys created meanwhile may be missed.
   */
  async *keys(prefix: string): AsyncGenerator<string> {
    const registry = await this.store.get(REGISTRY_KEY);
    const ids = registry ? registry.value.toString('latin1').split('\n').filter(Boolean) : [];
    const seen = new Set<string>();
    let batch: string[] = [];
    for (const id of ids) {
      for (let n = 0; ; n++) {
        const segment = await this.store.get(segmentKey(id, n));
        if (!segment) break;
        for (const key of segment.value.toString('latin1').split('\n')) {
          if (!key.startsWith(prefix) || seen.has(key)) continue;
          seen.add(key);
          batch.push(key);
          if (batch.length >= EXISTENCE_BATCH) {
            yield* await this.existing(batch);
            batch = [];
          }
        }
      }
    }
    yield* await this.existing(batch);
  }

  private async existing(keys: string[]): Promise<string[]> {
    const found = await this.store.getMany(keys);
    return keys.filter((_key, i) => found[i] !== undefined);
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, KEYS_PER_SEGMENT);
        try {
          await this.register();
          await this.store.put(segmentKey(this.id, this.nextSegment), Buffer.from(batch.map((w) => w.key).join('\n'), 'latin1'), UNCONDITIONAL);
          this.nextSegment++;
          for (const waiter of batch) waiter.resolve();
        } catch (error) {
          for (const waiter of batch) waiter.reject(error);
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Adds this log's id to the registry, once, by CAS. */
  private async register(): Promise<void> {
    if (this.registered) return;
    for (let attempt = 0; attempt < REGISTER_ATTEMPTS; attempt++) {
      const current = await this.store.get(REGISTRY_KEY);
      const text = current ? `${current.value.toString('latin1')}${this.id}\n` : `${this.id}\n`;
      const result = await this.store.put(REGISTRY_KEY, Buffer.from(text, 'latin1'), current ? ifVersion(current.version) : IF_ABSENT);
      if (result.ok) {
        this.registered = true;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * (attempt + 1)));
    }
    throw new StoreError(`could not add this client's key log to ${REGISTRY_KEY}: it kept changing (${REGISTER_ATTEMPTS} attempts); retry`);
  }
}

function segmentKey(id: string, n: number): string {
  return `${KEY_LOG_PREFIX}:${id}:${n}`;
}
