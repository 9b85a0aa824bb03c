import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KvStore } from '../backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import { transact } from '../cas/transaction.js';
import type { SuperblockRecord } from './records.js';
import { replicasOf } from './volume.js';

/** One mount attached to a volume, as its session says. Times are wall-clock ms. */
export interface MountSession {
  readonly host: string;
  readonly pid: number;
  readonly version: string;
  readonly mountpoint: string;
  readonly startedAt: number;
  readonly heartbeatAt: number;
  /** How often this mount renews its session, ms. */
  readonly heartbeatMs: number;
}

/** The record of every session: id -> session. */
type SessionsRecord = Record<string, MountSession>;

/**
 * Whether mounts of a volume keep sessions. Not on a volume that keeps metadata copies on
 * several servers: there a write that a hung server misses marks the server as having lost
 * its data, and a heartbeat would make every idle mount write through such a hang.
 */
export function keepsSessions(superblock: SuperblockRecord): boolean {
  return replicasOf(superblock) === 1;
}

/** How often a mount renews its session by default. */
export const HEARTBEAT_MS = 15_000;

/** A session whose heartbeat is older than this many heartbeats belongs to a mount that is gone. */
const STALE_HEARTBEATS = 3;

export function isStale(session: MountSession, now: number): boolean {
  return now - session.heartbeatAt > STALE_HEARTBEATS * (session.heartbeatMs || HEARTBEAT_MS);
}

/** The sessions of the volume whose mounts record is `key`. */
export async function readSessions(store: KvStore, key: string): Promise<SessionsRecord> {
  const found = await store.get(key);
  return found ? decodeRecord<SessionsRecord>(key, found.value) : {};
}

/** Changes the sessions record with a conditional update (another mount may change it at once). */
export function updateSessions(store: KvStore, key: string, change: (sessions: SessionsRecord) => boolean): Promise<void> {
  return transact(store, undefined, async (tx) => {
    const bytes = await tx.read(key);
    const sessions: SessionsRecord = bytes ? decodeRecord<SessionsRecord>(key, bytes) : {};
    if (!change(sessions)) return;
    if (Object.keys(sessions).length === 0) {
      if (bytes) tx.remove(key);
    } else {
      tx.write(key, encodeRecord(sessions));
    }
  });
}

/**
 * This mount's session in the volume's mounts record: written at mount, renewed every
 * heartbeat, removed at unmount, so `voldfs status` can list the mounts attached now. A mount
 * that dies leaves its session behind; it shows as stale once its heartbeat is three beats
 * old, and `voldfs fsck --repair` removes it.
 */
export class MountSessionKeeper {
  readonly id = randomBytes(6).toString('hex');
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: KvStore,
    private readonly key: string,
    private readonly session: Omit<MountSession, 'heartbeatAt' | 'startedAt' | 'heartbeatMs'>,
    private readonly log: Logger,
    private readonly heartbeatMs = HEARTBEAT_MS,
  ) {}

  async attach(): Promise<void> {
    const startedAt = Date.now();
    const beat = () =>
      updateSessions(this.store, this.key, (sessions) => {
        sessions[this.id] = { ...this.session, startedAt: sessions[this.id]?.startedAt ?? startedAt, heartbeatAt: Date.now(), heartbeatMs: this.heartbeatMs };
        return true;
      });
    await beat();
    this.timer = setInterval(() => {
      beat().catch((err: unknown) => this.log.warn({ err }, 'cannot renew this mount\'s session; voldfs status will show it stale'));
    }, this.heartbeatMs);
    this.timer.unref();
  }

  async detach(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await updateSessions(this.store, this.key, (sessions) => delete sessions[this.id]);
  }
}
