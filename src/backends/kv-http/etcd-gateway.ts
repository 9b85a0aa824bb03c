/**
 * The etcd v3 JSON gateway as voldfs uses it: request and response shapes (proto3 JSON:
 * bytes are base64, 64-bit numbers are strings, fields at their default value are omitted),
 * and the meaning of its error answers.
 */
import { StoreError, StoreFull, StoreTimeout, StoreUnavailable } from '../errors.js';
import type { HttpResponse } from './http-endpoints.js';

export interface EtcdKeyValue {
  readonly key?: string;
  /** Absent for an empty value. */
  readonly value?: string;
  readonly create_revision?: string;
  readonly mod_revision?: string;
  readonly version?: string;
}

export interface EtcdHeader {
  readonly revision?: string;
}

export interface EtcdRangeResponse {
  readonly header?: EtcdHeader;
  readonly kvs?: readonly EtcdKeyValue[];
  readonly more?: boolean;
}

export interface EtcdPutResponse {
  readonly header?: EtcdHeader;
}

export interface EtcdDeleteResponse {
  readonly header?: EtcdHeader;
  /** Absent when nothing was deleted. */
  readonly deleted?: string;
}

export interface EtcdTxnResponse {
  readonly header?: EtcdHeader;
  /** Absent (false) when a compare failed. */
  readonly succeeded?: boolean;
  readonly responses?: readonly {
    readonly response_range?: EtcdRangeResponse;
    readonly response_put?: EtcdPutResponse;
    readonly response_delete_range?: EtcdDeleteResponse;
  }[];
}

export interface EtcdCompare {
  readonly key: string;
  readonly target: 'MOD' | 'CREATE';
  readonly result: 'EQUAL';
  readonly mod_revision?: string;
  readonly create_revision?: string;
}

export type EtcdRequestOp =
  | { readonly request_range: { readonly key: string } }
  | { readonly request_put: { readonly key: string; readonly value: string } }
  | { readonly request_delete_range: { readonly key: string } };

/** Base64 of a key, as the gateway wants bytes. */
export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** Compare that holds iff `key` is absent (etcd compares a missing key as revision 0). */
export function absent(key: string): EtcdCompare {
  return { key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' };
}

/** Compare that holds iff `key` exists with this mod_revision. */
export function modifiedAt(key: string, revision: string): EtcdCompare {
  return { key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: revision };
}

/** A version token is a decimal mod_revision > 0; anything else can never match. */
export function isRevision(version: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(version);
}

/** The error an answer carries: gRPC code and message. */
export function gatewayError(response: HttpResponse): { code: number | undefined; message: string } {
  try {
    const parsed = JSON.parse(response.body.toString('utf8')) as { code?: unknown; message?: unknown; error?: unknown };
    const message = typeof parsed.message === 'string' ? parsed.message : typeof parsed.error === 'string' ? parsed.error : '';
    return { code: typeof parsed.code === 'number' ? parsed.code : undefined, message };
  } catch {
    return { code: undefined, message: response.body.toString('utf8', 0, 300) };
  }
}

/** gRPC Unavailable / DeadlineExceeded, and the etcd messages that mean "ask again or elsewhere". */
const TRANSIENT =
  /no leader|leader changed|not capable|stopped|request timed out|timed out, possibly due to|too many requests|server is not ready|ReadIndex|unhealthy cluster/i;

/** Whether another member (or a later try) may serve what this one refused. */
export function isTransient(response: HttpResponse): boolean {
  if (response.status === 200) return false;
  if (response.status === 404) return false;
  const { code, message } = gatewayError(response);
  return code === 14 || code === 4 || response.status === 503 || TRANSIENT.test(message);
}

/**
 * The store error for a refused request (status other than 200). `what` names the
 * operation. "request is too large" is left to the caller, which knows the size.
 */
export function refusal(response: HttpResponse, what: string): StoreError {
  const { code, message } = gatewayError(response);
  const where = `etcd at ${response.endpoint}`;
  if (/database space exceeded/i.test(message)) {
    return new StoreFull(
      `${where} refused the ${what}: its backend quota is full (${message}); compact and defragment ` +
        '(etcdctl compact, etcdctl defrag), then etcdctl alarm disarm, or raise --quota-backend-bytes',
    );
  }
  if (/too many operations in txn request/i.test(message)) {
    return new StoreError(
      `${where} refused the ${what}: ${message}; the server's --max-txn-ops is lower than ` +
        'VOLDFS_HTTP_ETCD_MAX_TXN_OPS: lower the variable or raise the flag',
    );
  }
  if (code === 4 || /timed out/i.test(message)) {
    return new StoreTimeout(`${where} timed out on the ${what}: ${message}; the cluster may be overloaded or without quorum`);
  }
  if (isTransient(response)) {
    return new StoreUnavailable(
      `${where} cannot serve the ${what} now: ${message}; check that a majority of the members is running`,
    );
  }
  if (response.status === 404) {
    return new StoreUnavailable(
      `${where} has no etcd v3 JSON gateway (HTTP 404 for the ${what}); is VOLDFS_HTTP_URLS pointing at etcd's client port?`,
    );
  }
  return new StoreError(`${where} refused the ${what}: HTTP ${response.status} ${message}`);
}
