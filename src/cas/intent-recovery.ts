import type { IntentState } from './intent-codec.js';
import type { TxResolver } from './tx-resolver.js';

/** An intent as fsck lists it. */
export interface IntentInfo {
  readonly txid: string;
  readonly state: IntentState;
  /** Owner's wall clock when written, ms since epoch. */
  readonly createdAt: number;
  readonly keys: readonly string[];
}

export interface RecoveryOptions {
  /**
   * Abort every pending intent, not only abandoned ones. Only when no client can be running
   * (offline fsck): a live commit aborted this way just fails, but needlessly. Default false.
   */
  readonly abortLive?: boolean;
  /**
   * Prefix of keys to scan for envelopes whose intent vanished; `false` skips the scan (it
   * reads every key under the prefix). Default `''`: the whole store.
   */
  readonly envelopePrefix?: string | false;
}

export interface RecoveryReport {
  /** False when the store cannot list keys (no scan): nothing was found or done. */
  readonly listed: boolean;
  /** Committed transactions whose remaining locks were rolled forward. */
  readonly rolledForward: readonly string[];
  /** Aborted or abandoned transactions whose locks were rolled back. */
  readonly rolledBack: readonly string[];
  /** Pending transactions left alone because their owners may be running. */
  readonly live: readonly string[];
  /** Transactions whose keys kept changing, so their intents are still there. */
  readonly unfinished: readonly string[];
  /** Keys that held an envelope whose intent was gone; each was rolled back. */
  readonly orphanEnvelopes: readonly string[];
  /** Keys still locked by live transactions after recovery. */
  readonly lockedKeys: readonly string[];
}

/** Keys read per getMany while looking for envelopes. */
const BATCH = 64;

/** fsck's part of the intent protocol: list intents, finish them, sweep orphan envelopes. */
export class IntentRecovery {
  constructor(private readonly r: TxResolver) {}

  private get intentPrefix(): string {
    return this.r.intentKey('');
  }

  /** Every intent in the store, or undefined if the store cannot list keys. */
  async list(): Promise<IntentInfo[] | undefined> {
    const txids = await this.scanIntents();
    if (!txids) return undefined;
    const out: IntentInfo[] = [];
    for (const txid of txids) {
      const tx = await this.r.readTx('resolve.intent.read', txid);
      if (tx) out.push({ txid, state: tx.state, createdAt: tx.intent.createdAt, keys: tx.intent.keys });
    }
    return out;
  }

  async recover(options: RecoveryOptions): Promise<RecoveryReport> {
    const report = {
      listed: false,
      rolledForward: [] as string[],
      rolledBack: [] as string[],
      live: [] as string[],
      unfinished: [] as string[],
      orphanEnvelopes: [] as string[],
      lockedKeys: [] as string[],
    };
    const txids = await this.scanIntents();
    if (!txids) return report;
    report.listed = true;
    const abortLive = options.abortLive ?? false;
    for (const txid of txids) {
      const tx = await this.r.readTx('resolve.intent.read', txid);
      if (!tx) continue;
      if (tx.state === 'pending') {
        // decide() aborts and rolls back when abandoned (or always with abortLive).
        const decision = await this.r.decide(txid, abortLive);
        if (decision === 'live') report.live.push(txid);
        else await this.finishIfLeft(txid, report);
        continue;
      }
      const done = await this.r.finishTx(tx);
      (done ? (tx.state === 'committed' ? report.rolledForward : report.rolledBack) : report.unfinished).push(txid);
    }
    if (options.envelopePrefix !== false) await this.sweepEnvelopes(options.envelopePrefix ?? '', abortLive, report);
    return report;
  }

  /** After decide() aborted a transaction: its intent is gone unless its keys kept changing. */
  private async finishIfLeft(
    txid: string,
    report: { rolledBack: string[]; unfinished: string[]; rolledForward: string[] },
  ): Promise<void> {
    const tx = await this.r.readTx('resolve.intent.read', txid);
    if (!tx) {
      report.rolledBack.push(txid);
      return;
    }
    if (tx.state === 'pending') return;
    const done = await this.r.finishTx(tx);
    (done ? (tx.state === 'committed' ? report.rolledForward : report.rolledBack) : report.unfinished).push(txid);
  }

  private async sweepEnvelopes(
    prefix: string,
    abortLive: boolean,
    report: { orphanEnvelopes: string[]; lockedKeys: string[] },
  ): Promise<void> {
    const scan = this.r.inner.scan?.bind(this.r.inner);
    if (!scan) return;
    const keys: string[] = [];
    await this.r.call('scan', prefix, async () => {
      for await (const key of scan(prefix)) if (!key.startsWith(this.r.settings.namespace)) keys.push(key);
    });
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      const found = await this.r.call('getMany', batch[0], () => this.r.inner.getMany(batch));
      for (let j = 0; j < batch.length; j++) {
        const raw = this.r.decodeRaw(batch[j], found[j]);
        if (raw.kind !== 'envelope') continue;
        const decision = await this.r.decide(raw.envelope.txid, abortLive);
        if (decision === 'live') {
          report.lockedKeys.push(batch[j]);
          continue;
        }
        const content = decision === 'committed' ? raw.envelope.next : (raw.envelope.prev?.value ?? null);
        const replaced = await this.r.replace('resolve.write', batch[j], raw.version, content);
        if (replaced.ok && decision === 'missing') report.orphanEnvelopes.push(batch[j]);
      }
    }
  }

  /** Transaction ids of every intent, or undefined without scan. */
  private async scanIntents(): Promise<string[] | undefined> {
    const scan = this.r.inner.scan?.bind(this.r.inner);
    if (!scan) return undefined;
    const prefix = this.intentPrefix;
    const txids: string[] = [];
    await this.r.call('scan', prefix, async () => {
      for await (const key of scan(prefix)) txids.push(key.slice(prefix.length));
    });
    return txids;
  }
}
