/** `end` of a lock that runs to the end of the file, however far it grows. */
export const TO_EOF = Number.MAX_SAFE_INTEGER;

/** flock(2) locks and POSIX record locks (fcntl, OFD) never conflict with each other (as on Linux). */
export type LockKind = 'flock' | 'posix';
export type LockType = 'read' | 'write';

/** One lock held on a range of an inode, as stored in the inode's lock record. */
export interface HeldLock {
  /** The mount holding it (its lease decides whether the lock still counts). */
  readonly mount: string;
  /** The kernel's lock owner (a process's files for POSIX locks, an open file for flock and OFD). */
  readonly owner: string;
  /** The open file it was taken through: its last close drops it (OFD locks need this). */
  readonly fh: number;
  readonly pid: number;
  readonly kind: LockKind;
  readonly type: LockType;
  /** Byte range [start, end); end {@link TO_EOF} for "to the end of the file". */
  readonly start: number;
  readonly end: number;
}

/** A lock asked for; `type` undefined asks to unlock the range. */
export interface LockRequest extends Omit<HeldLock, 'type'> {
  readonly type: LockType | undefined;
}

const sameOwner = (a: Pick<HeldLock, 'mount' | 'owner' | 'kind'>, b: Pick<HeldLock, 'mount' | 'owner' | 'kind'>) =>
  a.mount === b.mount && a.owner === b.owner && a.kind === b.kind;

/** The first lock of another owner that keeps `request` from being granted, if any. */
export function findConflict(held: readonly HeldLock[], request: LockRequest & { type: LockType }): HeldLock | undefined {
  return held.find(
    (h) =>
      h.kind === request.kind &&
      !sameOwner(h, request) &&
      h.start < request.end &&
      request.start < h.end &&
      (h.type === 'write' || request.type === 'write'),
  );
}

/**
 * The locks after `request` is applied, as POSIX does: the owner's locks in the range are
 * replaced by the new one (split where they stick out), and touching ranges of one type merge.
 * Conflicts are the caller's to check first.
 */
export function applyLock(held: readonly HeldLock[], request: LockRequest): HeldLock[] {
  const others = held.filter((h) => !sameOwner(h, request));
  let mine: HeldLock[] = [];
  for (const h of held) {
    if (!sameOwner(h, request)) continue;
    if (h.end <= request.start || request.end <= h.start) {
      mine.push(h);
      continue;
    }
    if (h.start < request.start) mine.push({ ...h, end: request.start });
    if (request.end < h.end) mine.push({ ...h, start: request.end });
  }
  if (request.type !== undefined) mine.push({ ...request, type: request.type });
  mine = mergeTouching(mine);
  return [...others, ...mine];
}

/** Merges one owner's touching or overlapping ranges of the same type. */
function mergeTouching(mine: HeldLock[]): HeldLock[] {
  const sorted = [...mine].sort((a, b) => a.start - b.start);
  const out: HeldLock[] = [];
  for (const h of sorted) {
    const last = out.at(-1);
    if (last && last.type === h.type && h.start <= last.end) {
      out[out.length - 1] = { ...h, start: last.start, end: Math.max(last.end, h.end) };
    } else {
      out.push(h);
    }
  }
  return out;
}
