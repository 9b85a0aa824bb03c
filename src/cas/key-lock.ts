/**
 * An in-process mutex per key, so that one process does not race itself on a record (its own
 * concurrent read-modify-writes would only turn into CAS conflicts and retries). Waiters are
 * served in arrival order. It does nothing across processes: that is what CAS is for.
 * Memory is proportional to the keys currently held or awaited.
 */
export class KeyLock {
  /** Per key, the promise the next arrival waits for (the last holder's release). */
  private readonly tails = new Map<string, Promise<void>>();

  /** Keys currently held or awaited. */
  get size(): number {
    return this.tails.size;
  }

  /** Whether `key` is held (or awaited) right now. */
  isLocked(key: string): boolean {
    return this.tails.has(key);
  }

  /**
   * Waits for `key`, then returns its release function. Releasing twice is harmless.
   * Prefer {@link withLock}, which cannot forget to release.
   */
  async acquire(key: string): Promise<() => void> {
    const previous = this.tails.get(key);
    let open!: () => void;
    const released = new Promise<void>((resolve) => {
      open = resolve;
    });
    const tail = previous ? previous.then(() => released) : released;
    this.tails.set(key, tail);
    if (previous) await previous;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      // Nobody queued behind us: drop the entry so idle keys cost nothing.
      if (this.tails.get(key) === tail) this.tails.delete(key);
      open();
    };
  }

  /** Runs `fn` holding `key`; releases when it settles, also when it throws. */
  async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire(key);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Runs `fn` holding every key of `keys` (duplicates ignored). Keys are taken in sorted
   * order, so two callers with overlapping sets cannot deadlock.
   */
  async withLocks<T>(keys: Iterable<string>, fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const releases: (() => void)[] = [];
    try {
      for (const key of sorted) releases.push(await this.acquire(key));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }
}
