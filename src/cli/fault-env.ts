/**
 * Testing aid: crash a real voldfs process at a chosen store call, so end-to-end tests can
 * check that a mount killed at any instant leaves a volume that reads consistently.
 *
 *   VOLDFS_CRASH_AT=<name>[#<n>]   the process logs one line and kills itself with SIGKILL
 *                                  right before the n-th (default 1st) store call matching
 *                                  <name>, counted from the process start
 *   VOLDFS_CRASH_TRACE=<file>      appends one line per store call: every name it matches,
 *                                  each with its running count (`lock.write#3 lock.write:dir#1`),
 *                                  to find the calls an operation makes
 *
 * Names a call matches:
 * - its point: one of the intent layer's points (src/cas/fault-points.ts: `intent.create`,
 *   `lock.write`, `intent.commit`, `apply.write`, `put`, ...) for metadata of stores without
 *   native commit, or `store.<call>` (get, getMany, put, delete, commit, scan) for calls that
 *   bypass the intent layer: blocks always, everything on stores with native commit (lmdb);
 * - `<point>:<kind>`, where kind is the record the key belongs to: sb, alloc, inode, dir,
 *   chunk, block, garbage, intent (the intent layer's own records), other;
 * - for single-key writes (points `put`, `delete`, `store.put`, `store.delete`) also
 *   `<kind>.put` / `<kind>.delete`: `block.put`, `chunk.put` (chunk map), `inode.put`, ...
 *
 * Never set these outside tests: the process dies on purpose.
 */
import { appendFileSync } from 'node:fs';
import { destination, pino, type Logger } from 'pino';
import type { Env } from '../backends/backend.js';
import { ConfigError } from '../backends/errors.js';
import type { FaultHook, FaultPoint } from '../cas/fault-points.js';
import type { StoreCall, StoreCallHook } from '../backends/wrappers/fault-store.js';
import { VolumeKeys } from '../inode/keys.js';

/** The crash a process was asked for, and where to trace calls. */
export interface FaultSettings {
  /** Crash before the `occurrence`-th call matching `name` (1-based). */
  readonly crashAt?: { readonly name: string; readonly occurrence: number };
  /** File to append the trace to. */
  readonly traceFile?: string;
}

/** Hooks for the intent layer and for the store wrapper, sharing one set of counters. */
export interface StoreFaults {
  readonly intent: FaultHook;
  readonly store: StoreCallHook;
}

// A record, not a list, so the compiler notices a point added to or removed from FaultPoint.
const INTENT_POINTS: Record<FaultPoint, true> = {
  'precheck.read': true,
  'intent.create': true,
  'lock.read': true,
  'lock.write': true,
  'check.read': true,
  'intent.commit': true,
  'intent.reread': true,
  'apply.write': true,
  'abort.intent': true,
  'rollback.write': true,
  'intent.delete': true,
  'resolve.intent.read': true,
  'resolve.abort': true,
  'resolve.write': true,
  'finish.read': true,
  'finish.write': true,
  'finish.delete': true,
  get: true,
  getMany: true,
  put: true,
  'put.read': true,
  delete: true,
  scan: true,
};
const STORE_CALLS: Record<StoreCall, true> = { get: true, getMany: true, put: true, delete: true, commit: true, scan: true };
const KINDS = ['sb', 'alloc', 'inode', 'dir', 'chunk', 'block', 'garbage', 'intent', 'other'] as const;
type Kind = (typeof KINDS)[number];
const POINTS = new Set<string>([...Object.keys(INTENT_POINTS), ...Object.keys(STORE_CALLS).map((c) => `store.${c}`)]);
const SINGLE_WRITES: Record<string, 'put' | 'delete'> = { put: 'put', 'store.put': 'put', delete: 'delete', 'store.delete': 'delete' };

const FORM =
  'expected <point>[#<n>], <point>:<kind>[#<n>] or <kind>.put|delete[#<n>], e.g. lock.write#2, apply.write:dir, block.put#1 ' +
  `(points: ${[...POINTS].join(', ')}; kinds: ${KINDS.join(', ')})`;

/**
 * Reads VOLDFS_CRASH_AT and VOLDFS_CRASH_TRACE (both unset: no hooks at all).
 * @throws ConfigError naming the variable and the accepted form
 */
export function parseFaultEnv(env: Env): FaultSettings | undefined {
  const crashText = env.VOLDFS_CRASH_AT?.trim();
  const traceFile = env.VOLDFS_CRASH_TRACE?.trim() || undefined;
  if (!crashText && !traceFile) return undefined;
  if (!crashText) return Object.freeze({ traceFile });
  const match = /^([A-Za-z.]+(?::[a-z]+)?)(?:#([0-9]+))?$/.exec(crashText);
  const occurrence = Number(match?.[2] ?? '1');
  if (!match || !knownName(match[1]) || !Number.isSafeInteger(occurrence) || occurrence < 1) {
    throw new ConfigError(`VOLDFS_CRASH_AT=${JSON.stringify(crashText)} is invalid: ${FORM}`);
  }
  return Object.freeze({ crashAt: Object.freeze({ name: match[1], occurrence }), traceFile });
}

function knownName(name: string): boolean {
  const [point, kind] = name.split(':');
  if (kind !== undefined) return POINTS.has(point) && (KINDS as readonly string[]).includes(kind);
  if (POINTS.has(point)) return true;
  const alias = /^([a-z]+)\.(put|delete)$/.exec(point);
  return alias !== null && (KINDS as readonly string[]).includes(alias[1]);
}

/**
 * The hooks that count store calls by name, trace them, and kill the process at the chosen one.
 * @param volumePrefix the volume's key prefix (`<VOLDFS_VOLUME>:`), to tell record kinds apart
 * @param intentNamespace prefix of the intent layer's own keys (default `_cas/`)
 */
export function makeStoreFaults(settings: FaultSettings, volumePrefix: string, intentNamespace = '_cas/', log?: Logger): StoreFaults {
  const logger = log ?? pino({ name: 'fault-env', level: 'warn' }, destination({ fd: 2, sync: true }));
  const kindOf = keyKinds(volumePrefix, intentNamespace);
  const counts = new Map<string, number>();
  const count = (name: string): number => {
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n);
    return n;
  };
  const seen = async (point: string, key: string): Promise<void> => {
    // Counted before any await, so numbering follows the order in which calls are issued.
    const kind = kindOf(key);
    const names = [point, `${point}:${kind}`];
    const write = SINGLE_WRITES[point];
    if (write) names.push(`${kind}.${write}`);
    const counted = names.map((name) => [name, count(name)] as const);
    const crash = settings.crashAt;
    const hit = crash && counted.find(([name, n]) => name === crash.name && n === crash.occurrence);
    if (hit) {
      logger.warn({ crashAt: crash.name, occurrence: crash.occurrence, point, kind, key }, 'VOLDFS_CRASH_AT reached: killing this process');
      process.kill(process.pid, 'SIGKILL');
      // SIGKILL of oneself lands before kill() returns; never let the call proceed regardless.
      await new Promise<never>(() => undefined);
    }
    // Written before the call goes on: an operation answered before its commit applies has its
    // commit's line in the trace by the time its caller sees the answer.
    if (settings.traceFile) appendFileSync(settings.traceFile, counted.map(([name, n]) => `${name}#${n}`).join(' ') + '\n');
  };
  return {
    intent: (point, key) => seen(point, key),
    store: (call, key) => seen(`store.${call}`, key),
  };
}

/** Which record a key belongs to, from the volume's key layout (src/inode/keys.ts). */
function keyKinds(volumePrefix: string, intentNamespace: string): (key: string) => Kind {
  const keys = new VolumeKeys(volumePrefix);
  // Prefixes of numbered records: what the keys of inodes 1 and 2 have in common.
  const common = (a: string, b: string): string => {
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    return a.slice(0, i);
  };
  const prefixes: [string, Kind][] = [
    [common(keys.inode(1), keys.inode(2)), 'inode'],
    [common(keys.dirNode(1, 'r'), keys.dirNode(2, 'r')), 'dir'],
    [common(keys.chunkMap(1, 0), keys.chunkMap(2, 0)), 'chunk'],
    [keys.blockPrefix(), 'block'],
    [keys.garbagePrefix(), 'garbage'],
  ];
  return (key) => {
    if (key.startsWith(intentNamespace)) return 'intent';
    if (key === keys.superblock()) return 'sb';
    if (key === keys.inodeAllocator()) return 'alloc';
    return prefixes.find(([prefix]) => key.startsWith(prefix))?.[1] ?? 'other';
  };
}
