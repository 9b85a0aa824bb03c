/**
 * What fsck finds. A problem is either damage (the volume is wrong: names, counts or data a
 * user can hit) or a leftover (garbage a crash or a lost race left behind: it wastes space but
 * nothing reads it). Only damage left unrepaired makes fsck exit non-zero.
 */

export const PROBLEM_KINDS = {
  'superblock-missing': 'damage',
  'store-lost-data': 'damage',
  'metadata-copies': 'damage',
  'superblock-format': 'damage',
  'root-missing': 'damage',
  'corrupt-record': 'damage',
  'dangling-entry': 'damage',
  'type-mismatch': 'damage',
  'directory-extra-name': 'damage',
  'dir-parent': 'damage',
  'dir-nlink': 'damage',
  nlink: 'damage',
  'dir-node-missing': 'damage',
  'chunk-map-bad': 'damage',
  'chunk-index-missing': 'damage',
  'chunk-index-bad': 'damage',
  'block-damaged': 'damage',
  'block-lost': 'damage',
  'allocator-missing': 'damage',
  'allocator-behind': 'damage',
  'orphan-inode': 'leftover',
  'hidden-entry': 'leftover',
  'orphan-chunk-maps': 'leftover',
  'orphan-chunk-index': 'leftover',
  'chunk-map-past-eof': 'leftover',
  'orphan-dir-nodes': 'leftover',
  'unreachable-dir-node': 'leftover',
  'expired-garbage': 'leftover',
  'unreferenced-block': 'leftover',
  'pending-intent': 'leftover',
  'stale-mount': 'leftover',
  'stale-lock': 'leftover',
} as const;

export type ProblemKind = keyof typeof PROBLEM_KINDS;
export type Severity = (typeof PROBLEM_KINDS)[ProblemKind];

/**
 * What became of a problem:
 * - `repaired`: fixed by this run;
 * - `gone`: re-checked before repairing and no longer there (a live mount changed it);
 * - `left`: repairable, but no repair was asked for;
 * - `needs-offline`: only safe with `--offline` (a live mount may own what it would change);
 * - `not-repairable`: fsck cannot fix it (lost data, missing superblock);
 * - `failed`: the repair was tried and the store refused or failed (see `done`).
 */
export type ProblemAction = 'repaired' | 'gone' | 'left' | 'needs-offline' | 'not-repairable' | 'failed';

export interface Problem {
  readonly kind: ProblemKind;
  readonly severity: Severity;
  /** Path from the root, when the walk reached the thing. */
  readonly path?: string;
  readonly ino?: number;
  /** The record concerned, when one key says it better than an inode number. */
  readonly key?: string;
  /** What is wrong, in words. */
  readonly what: string;
  action: ProblemAction;
  /** What was done (or why not). */
  done?: string;
}

/** A repair staged while checking, run after every check in `order` (lowest first). */
export interface Fix {
  /** Repairs depend on each other: entries before counts, counts before the allocator. */
  readonly order: number;
  /** Only safe when no mount can be active. */
  readonly offlineOnly?: boolean;
  /**
   * Re-checks and repairs. Returns what was done, or `gone` when the re-check found the
   * problem no longer there.
   */
  readonly run: () => Promise<{ readonly outcome: 'repaired' | 'gone'; readonly done: string }>;
}

/** Repair order: fixes of a lower rank run first. */
export const FIX_ORDER = {
  entries: 10,
  dirNodes: 20,
  dirFields: 30,
  nlink: 40,
  /** After link counts: dropping a hidden name decrements the count just set. */
  hiddenNames: 45,
  orphans: 50,
  chunkMaps: 60,
  garbage: 70,
  /** Lock records before the leases that make their locks stale. */
  locks: 75,
  blocks: 80,
  allocator: 90,
  staleMounts: 92,
  /** After every repair that writes metadata (those write all copies themselves). */
  metadataCopies: 95,
  /** Last: the markers say "this domain holds the volume", true only once it is repaired. */
  lossMarkers: 100,
} as const;

export type ProblemInput = Omit<Problem, 'severity' | 'action' | 'done'> & { action?: ProblemAction; done?: string };

/** Problems found so far, with the repairs staged for them. */
export class ProblemList {
  readonly all: Problem[] = [];
  private readonly fixes: { problem: Problem; fix: Fix }[] = [];

  /**
   * Records a problem. With `fix` it is repairable (its action is decided when repairs run);
   * without, it is `not-repairable` unless `input.action` says otherwise.
   */
  add(input: ProblemInput, fix?: Fix): Problem {
    const problem: Problem = {
      ...input,
      severity: PROBLEM_KINDS[input.kind],
      action: input.action ?? (fix ? 'left' : 'not-repairable'),
    };
    this.all.push(problem);
    if (fix) this.fixes.push({ problem, fix });
    return problem;
  }

  /** Staged repairs in the order they must run. */
  staged(): { problem: Problem; fix: Fix }[] {
    return [...this.fixes].sort((a, b) => a.fix.order - b.fix.order);
  }

  /** Damage still there after this run: what makes fsck exit 1. */
  damageLeft(): Problem[] {
    return this.all.filter((p) => p.severity === 'damage' && p.action !== 'repaired' && p.action !== 'gone');
  }
}
