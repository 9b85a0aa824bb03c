/** A write-back buffer as the shared budget sees it: it can start storing its oldest dirty chunk. */
export interface Spiller {
  /** Whether it holds dirty chunks not being stored yet. */
  readonly hasDirty: boolean;
  /** Starts storing its oldest dirty chunk (the memory is given back once it is stored). */
  spillOldest(): Promise<void>;
}

/**
 * The chunk buffers of every write-back buffer of a mount, dirty or being stored, counted against
 * one ceiling. A write that finds the mount over it stores dirty chunks (its own file's first,
 * then other files') and waits for stores to finish: a burst of writes over many files waits
 * rather than grows.
 */
export class WriteMemory {
  private held = 0;
  /** Of those, chunks being stored: each gives its memory back when its store ends. */
  private storing = 0;
  private readonly holders = new Set<Spiller>();
  private waiters: (() => void)[] = [];

  /** @param maxChunks chunk buffers held at most before writers wait (at least 1) */
  constructor(readonly maxChunks: number) {
    if (!Number.isSafeInteger(maxChunks) || maxChunks < 1) throw new RangeError(`maxChunks must be a whole number >= 1, got ${maxChunks}`);
  }

  /** Chunk buffers held now. */
  get chunks(): number {
    return this.held;
  }

  /** A buffer took one chunk's memory. */
  take(holder: Spiller): void {
    this.held++;
    this.holders.add(holder);
  }

  /** One of the chunks held started being stored. */
  storeStarted(): void {
    this.storing++;
  }

  /**
   * A chunk's memory is free again: stored (`stored` true, after {@link storeStarted}), or
   * dropped by a truncate.
   */
  give(stored: boolean): void {
    this.held--;
    if (stored) this.storing--;
    const waiting = this.waiters;
    this.waiters = [];
    for (const wake of waiting) wake();
  }

  /** A buffer holds nothing any more. */
  forget(holder: Spiller): void {
    this.holders.delete(holder);
  }

  /** Waits until the mount is within its ceiling, storing dirty chunks to get there. */
  async relieve(own: Spiller): Promise<void> {
    while (this.held > this.maxChunks) {
      const victim = own.hasDirty ? own : [...this.holders].find((h) => h.hasDirty);
      if (victim) await victim.spillOldest();
      // Wait for a store to finish; with none running, the next round spills again.
      if (this.held > this.maxChunks && this.storing > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}
