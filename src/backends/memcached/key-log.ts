import { randomBytes } from 'node:crypto';
import { StoreError } from '../errors.js';
import { IF_ABSENT, ifVersion, UNCONDITIONAL, type KvStore } from '../kv-store.js';

/** Keys of the log itself start with this; no volume prefix can (volume names are words). */
export const KEY_LOG_PREFIX = '#keylog';
/** Keys per segment record: at most 250 bytes each, so a segment stays below kumofs's 64 KiB. */
const KEYS_PER_SEGMENT = 200;
const CAS_ATTEMPTS = 50;
const EXISTENCE_BATCH = 512;
/** Keys this client remembers having logged, so that rewriting one does not log it again. */
const REMEMBERED_KEYS = 65_536;

interface Waiter {
  readonly key: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** This client's log in one group: its segments so far and the keys waiting to be logged. */
interface GroupLog {
  registered: boolean;
  nextSegment: number;
  readonly queue: Waiter[];
  running: boolean;
}

/**
 * The keys a client created, for a store that cannot list its keys (kumofs, twemproxy), so
 * that fsck finds leftovers a crash left behind. A client logs a key before creating it
 * (write-ahead): a crash can leave a logged key that was never written, never a written key
 * that is not logged. The keys of writes in flight together share one write of the log.
 *
 * Keys are logged by group, the part before their first `:` (a volume's name), so that one
 * volume's log can be compacted while other volumes are in use. Layout:
 * `#keylog` lists the groups, `#keylog:<group>` the logs of a group (one id per line, changed
 * by CAS), and `#keylog:<group>:<id>:<n>` is segment n of log id, written once.
 */
export class KeyLog {
  private readonly id = randomBytes(8).toString('hex');
  private readonly groups = new Map<string, GroupLog>();
  private readonly logged = new Set<string>();

  /** @param store the raw store: its puts of `#keylog` keys are not logged themselves */
  constructor(private readonly store: KvStore) {}

  /** Resolves once `key` is durably in this client's log. */
  async record(key: string): Promise<void> {
    if (this.logged.has(key)) return;
    const group = groupOf(key);
    let log = this.groups.get(group);
    if (!log) {
      log = { registered: false, nextSegment: 0, queue: [], running: false };
      this.groups.set(group, log);
    }
    const target = log;
    await new Promise<void>((resolve, reject) => {
      target.queue.push({ key, resolve, reject });
      void this.pump(group, target);
    });
    // A set in insertion order: the oldest key is forgotten first.
    if (this.logged.size >= REMEMBERED_KEYS) this.logged.delete(this.logged.values().next().value as string);
    this.logged.add(key);
  }

  /**
   * Every logged key that starts with `prefix` and exists now, each once. Not a snapshot:
   * keys created meanwhile may be missed.
   */
  async *keys(prefix: string): AsyncGenerator<string> {
    // Keys without a colon are in group '', which any prefix without one may match.
    const groups = prefix.includes(':') ? [groupOf(prefix)] : (await this.readList(KEY_LOG_PREFIX)).filter((g) => g === '' || g.startsWith(prefix));
    const seen = new Set<string>();
    let batch: string[] = [];
    for (const group of groups) {
      for (const id of await this.readList(registryKey(group))) {
        for await (const key of this.segmentKeys(group, id)) {
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

  /**
   * Rewrites the logs of `prefix`'s group into one holding only the keys that exist, and
   * deletes the old segments. Only while nothing else writes in that group (fsck --offline):
   * a key logged but not yet written would be dropped.
   * @returns keys listed before and after
   */
  async compact(prefix: string): Promise<{ before: number; after: number }> {
    const group = groupOf(prefix);
    const ids = await this.readList(registryKey(group));
    const logged = new Set<string>();
    const segments: string[] = [];
    for (const id of ids) {
      for await (const key of this.segmentKeys(group, id, segments)) logged.add(key);
    }
    const all = [...logged];
    const kept: string[] = [];
    for (let i = 0; i < all.length; i += EXISTENCE_BATCH) kept.push(...(await this.existing(all.slice(i, i + EXISTENCE_BATCH))));
    const fresh = randomBytes(8).toString('hex');
    for (let n = 0; n * KEYS_PER_SEGMENT < kept.length; n++) {
      const part = kept.slice(n * KEYS_PER_SEGMENT, (n + 1) * KEYS_PER_SEGMENT);
      await this.store.put(segmentKey(group, fresh, n), Buffer.from(part.join('\n'), 'latin1'), UNCONDITIONAL);
    }
    const compacted = new Set(ids);
    await this.updateList(registryKey(group), (current) => [...(kept.length > 0 ? [fresh] : []), ...current.filter((id) => !compacted.has(id))]);
    for (const key of segments) await this.store.delete(key);
    // This client's own log in the group was compacted too: later keys start it afresh.
    this.groups.delete(group);
    this.logged.clear();
    return { before: logged.size, after: kept.length };
  }

  private async *segmentKeys(group: string, id: string, segments?: string[]): AsyncGenerator<string> {
    for (let n = 0; ; n++) {
      const key = segmentKey(group, id, n);
      const segment = await this.store.get(key);
      if (!segment) return;
      segments?.push(key);
      yield* segment.value.toString('latin1').split('\n');
    }
  }

  private async existing(keys: string[]): Promise<string[]> {
    const found = await this.store.getMany(keys);
    return keys.filter((_key, i) => found[i] !== undefined);
  }

  private async pump(group: string, log: GroupLog): Promise<void> {
    if (log.running) return;
    log.running = true;
    try {
      while (log.queue.length > 0) {
        const batch = log.queue.splice(0, KEYS_PER_SEGMENT);
        try {
          if (!log.registered) {
            await this.updateList(KEY_LOG_PREFIX, (groups) => (groups.includes(group) ? groups : [...groups, group]));
            await this.updateList(registryKey(group), (ids) => (ids.includes(this.id) ? ids : [...ids, this.id]));
            log.registered = true;
          }
          const text = batch.map((w) => w.key).join('\n');
          await this.store.put(segmentKey(group, this.id, log.nextSegment), Buffer.from(text, 'latin1'), UNCONDITIONAL);
          log.nextSegment++;
          for (const waiter of batch) waiter.resolve();
        } catch (error) {
          for (const waiter of batch) waiter.reject(error);
        }
      }
    } finally {
      log.running = false;
    }
  }

  private async readList(key: string): Promise<string[]> {
    const found = await this.store.get(key);
    return found ? found.value.toString('latin1').split('\n').slice(0, -1) : [];
  }

  /** Read-modify-write of a list record by CAS, retried with backoff. */
  private async updateList(key: string, change: (lines: string[]) => string[]): Promise<void> {
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await this.store.get(key);
      const lines = current ? current.value.toString('latin1').split('\n').slice(0, -1) : [];
      const next = change(lines);
      if (current && next.join('\n') === lines.join('\n')) return;
      const value = Buffer.from(next.map((line) => `${line}\n`).join(''), 'latin1');
      if ((await this.store.put(key, value, current ? ifVersion(current.version) : IF_ABSENT)).ok) return;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * (attempt + 1)));
    }
    throw new StoreError(`could not update ${key}: it kept changing (${CAS_ATTEMPTS} attempts); retry`);
  }
}

function groupOf(key: string): string {
  const colon = key.indexOf(':');
  return colon < 0 ? '' : key.slice(0, colon);
}

function registryKey(group: string): string {
  return `${KEY_LOG_PREFIX}:${group}`;
}

function segmentKey(group: string, id: string, n: number): string {
  return `${KEY_LOG_PREFIX}:${group}:${id}:${n}`;
}
