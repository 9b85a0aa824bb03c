import { StoreError, StoreFull } from '../errors.js';
import type { BinaryConnection } from './connection.js';
import { Opcode, Status, STORE_EXTRAS, statusText } from './protocol.js';
import type { TextConnection, TextReply } from './text-connection.js';

/** A record as read, with its CAS unique. */
export interface CasItem {
  readonly value: Buffer;
  readonly cas: bigint;
}

/**
 * How a storage command ended: `stored`; `exists` (add found the key, or cas a different
 * unique); `notFound` (cas on a missing key); `tooLarge` (the server's item size limit).
 */
export type StoreOutcome = 'stored' | 'exists' | 'notFound' | 'tooLarge';

/**
 * The few memcached commands a CAS-only store uses, on one server, over either protocol. No
 * command here returns the CAS unique a write produced: neither the text protocol nor
 * kumofs's binary gateway tells it.
 */
export interface CasWire {
  readonly label: string;
  gets(key: Buffer): Promise<CasItem | undefined>;
  /** Unconditional write. */
  set(key: Buffer, value: readonly Buffer[]): Promise<StoreOutcome>;
  /** Create-if-absent; only on servers that have `add` (memcached, not kumofs). */
  add(key: Buffer, value: readonly Buffer[]): Promise<StoreOutcome>;
  /** Compare-and-swap against `cas` (kumofs creates a missing key instead of failing). */
  cas(key: Buffer, value: readonly Buffer[], cas: bigint): Promise<StoreOutcome>;
  close(): void;
}

/** Connections per server of a text-protocol pool: each carries one request at a time. */
export const TEXT_CONNECTIONS_PER_SERVER = 16;

/** The text protocol over a pool of {@link TextConnection}s to one server. */
export class TextWire implements CasWire {
  readonly label: string;

  constructor(private readonly connections: readonly TextConnection[]) {
    this.label = connections[0].label;
  }

  async gets(key: Buffer): Promise<CasItem | undefined> {
    const reply = await this.send([Buffer.from(`gets ${key.toString('latin1')}\r\n`, 'latin1')], true);
    if (reply.kind !== 'items') throw this.unexpected('gets', reply.line);
    const item = reply.items.find((i) => i.key === key.toString('latin1'));
    return item && { value: item.value, cas: item.cas };
  }

  set(key: Buffer, value: readonly Buffer[]): Promise<StoreOutcome> {
    return this.store('set', key, value, '');
  }

  add(key: Buffer, value: readonly Buffer[]): Promise<StoreOutcome> {
    return this.store('add', key, value, '');
  }

  cas(key: Buffer, value: readonly Buffer[], cas: bigint): Promise<StoreOutcome> {
    return this.store('cas', key, value, ` ${cas}`);
  }

  close(): void {
    for (const connection of this.connections) connection.close();
  }

  private async store(command: string, key: Buffer, value: readonly Buffer[], tail: string): Promise<StoreOutcome> {
    const bytes = value.reduce((sum, part) => sum + part.length, 0);
    const line = Buffer.from(`${command} ${key.toString('latin1')} 0 0 ${bytes}${tail}\r\n`, 'latin1');
    const reply = await this.send([line, ...value, Buffer.from('\r\n')], false);
    const text = reply.kind === 'line' ? reply.line : 'END';
    switch (text) {
      case 'STORED':
        return 'stored';
      case 'EXISTS':
      case 'NOT_STORED':
        return 'exists';
      case 'NOT_FOUND':
        return 'notFound';
      default:
        if (/too large/i.test(text)) return 'tooLarge';
        if (/out of memory/i.test(text)) {
          throw new StoreFull(`${this.label} is out of memory and refuses new records (${text}): free space by deleting files`);
        }
        throw this.unexpected(command, text);
    }
  }

  private send(parts: Buffer[], items: boolean): Promise<TextReply> {
    let least = this.connections[0];
    for (const connection of this.connections) if (connection.load < least.load) least = connection;
    return least.request(parts, items);
  }

  private unexpected(command: string, line: string): StoreError {
    return new StoreError(`${this.label} answered "${command}" with "${line.slice(0, 200)}"`);
  }
}

/** The binary protocol on one pipelined connection (kumofs's binary gateway keeps order). */
export class BinaryWire implements CasWire {
  readonly label: string;

  constructor(private readonly connection: BinaryConnection) {
    this.label = connection.label;
  }

  async gets(key: Buffer): Promise<CasItem | undefined> {
    const response = await this.connection.request({ opcode: Opcode.get, key });
    if (response.status === Status.keyNotFound) return undefined;
    if (response.status !== Status.ok) throw this.unexpected('get', response.status);
    return { value: response.value, cas: response.cas };
  }

  set(key: Buffer, value: readonly Buffer[]): Promise<StoreOutcome> {
    return this.store(Opcode.set, key, value, 0n);
  }

  add(key: Buffer, value: readonly Buffer[]): Promise<StoreOutcome> {
    return this.store(Opcode.add, key, value, 0n);
  }

  cas(key: Buffer, value: readonly Buffer[], cas: bigint): Promise<StoreOutcome> {
    return this.store(Opcode.set, key, value, cas);
  }

  close(): void {
    this.connection.close();
  }

  private async store(opcode: number, key: Buffer, value: readonly Buffer[], cas: bigint): Promise<StoreOutcome> {
    const response = await this.connection.request({ opcode, key, extras: STORE_EXTRAS, valueParts: value, cas });
    switch (response.status) {
      case Status.ok:
        return 'stored';
      case Status.keyExists:
      case Status.itemNotStored:
        return 'exists';
      case Status.keyNotFound:
        return 'notFound';
      case Status.valueTooLarge:
        return 'tooLarge';
      case Status.outOfMemory:
        throw new StoreFull(`${this.label} is out of memory and refuses new records: free space by deleting files`);
      default:
        throw this.unexpected('set', response.status);
    }
  }

  private unexpected(command: string, status: number): StoreError {
    return new StoreError(`${this.label} answered "${command}" with "${statusText(status)}"`);
  }
}
