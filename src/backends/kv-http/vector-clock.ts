/**
 * Voldemort vector clocks as the REST coordinator exchanges them in the X-VOLD-Vector-Clock
 * header: JSON `{"versions":[{"nodeId":0,"version":3}],"timestamp":1700000000000}` (Jackson's
 * rendering of voldemort.rest.VectorClockWrapper). nodeId is a Java short (0..32767), version a
 * long >= 1.
 */

export interface ClockEntry {
  readonly nodeId: number;
  readonly version: number;
}

export interface VectorClock {
  /** Sorted by nodeId, one entry per node. */
  readonly versions: readonly ClockEntry[];
  /** Milliseconds since the epoch of the last increment; not part of the ordering. */
  readonly timestamp: number;
}

/**
 * The node id voldfs adds to every clock it creates (Short.MAX_VALUE, far from the small ids of
 * real cluster nodes, which the coordinator never increments). See voldemort-store.ts for why
 * creating keys needs it.
 */
export const VOLDFS_NODE_ID = 32767;

/** The clock voldfs sends to create a key: `{VOLDFS_NODE_ID: 1}`. */
export const CREATION_CLOCK: VectorClock = Object.freeze({
  versions: Object.freeze([Object.freeze({ nodeId: VOLDFS_NODE_ID, version: 1 })]),
  timestamp: 0,
});

/** Parses a header value; undefined if it is not a well-formed clock. */
export function parseClock(text: string | null | undefined): VectorClock | undefined {
  if (!text) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { versions, timestamp } = raw as { versions?: unknown; timestamp?: unknown };
  if (!Array.isArray(versions)) return undefined;
  const entries: ClockEntry[] = [];
  for (const entry of versions as unknown[]) {
    if (typeof entry !== 'object' || entry === null) return undefined;
    const { nodeId, version } = entry as { nodeId?: unknown; version?: unknown };
    if (!Number.isInteger(nodeId) || !Number.isSafeInteger(version)) return undefined;
    if ((nodeId as number) < 0 || (nodeId as number) > 32767 || (version as number) < 1) return undefined;
    entries.push({ nodeId: nodeId as number, version: version as number });
  }
  entries.sort((a, b) => a.nodeId - b.nodeId);
  for (let i = 1; i < entries.length; i++) if (entries[i].nodeId === entries[i - 1].nodeId) return undefined;
  const ts = typeof timestamp === 'number' && Number.isSafeInteger(timestamp) ? timestamp : 0;
  return { versions: entries, timestamp: ts };
}

/** The header value for a clock. */
export function serializeClock(clock: VectorClock): string {
  return JSON.stringify({
    versions: clock.versions.map((e) => ({ nodeId: e.nodeId, version: e.version })),
    timestamp: clock.timestamp,
  });
}

/**
 * The smallest clock that descends from all of `clocks` (entry-wise maximum, latest
 * timestamp). A write made with it supersedes every one of them.
 */
export function mergeClocks(clocks: readonly VectorClock[]): VectorClock {
  const max = new Map<number, number>();
  let timestamp = 0;
  for (const clock of clocks) {
    for (const e of clock.versions) max.set(e.nodeId, Math.max(max.get(e.nodeId) ?? 0, e.version));
    timestamp = Math.max(timestamp, clock.timestamp);
  }
  return {
    versions: [...max.entries()].sort((a, b) => a[0] - b[0]).map(([nodeId, version]) => ({ nodeId, version })),
    timestamp,
  };
}

/** Whether two clocks have the same entries (timestamps aside: they do not order versions). */
export function sameEntries(a: VectorClock, b: VectorClock): boolean {
  return (
    a.versions.length === b.versions.length &&
    a.versions.every((e, i) => e.nodeId === b.versions[i].nodeId && e.version === b.versions[i].version)
  );
}
