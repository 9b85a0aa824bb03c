import { StoreUnavailable } from '../errors.js';

/** The store operations a fault hook sees. */
export type MemoryOperation = 'get' | 'getMany' | 'put' | 'delete' | 'commit' | 'scan';

/** One call as a fault hook sees it; `index` counts calls on this client from 0. */
export interface OperationCall {
  readonly op: MemoryOperation;
  readonly index: number;
  readonly keys: readonly string[];
}

/**
 * Called before each operation of a MemoryStore, before anything is read or written. Throwing
 * (or rejecting) makes the operation fail with that error and leaves the data untouched;
 * awaiting adds latency, which lets a test widen race windows deterministically.
 */
export type FaultHook = (call: OperationCall) => void | Promise<void>;

/** Thrown by {@link crashAfter} for every call past the crash point. */
export class SimulatedCrash extends StoreUnavailable {
  constructor(call: OperationCall) {
    super(`simulated crash: ${call.op} (call #${call.index}) never reached the store`);
  }
}

/**
 * Lets the first `calls` operations through, then fails every later one with SimulatedCrash,
 * as if the client process died: what it wrote before stays in the shared data, nothing after.
 */
export function crashAfter(calls: number): FaultHook {
  return (call) => {
    if (call.index >= calls) throw new SimulatedCrash(call);
  };
}

/** Fails only the call with index `n` (0-based), with the error `makeError` returns. */
export function failCall(n: number, makeError: (call: OperationCall) => Error): FaultHook {
  return (call) => {
    if (call.index === n) throw makeError(call);
  };
}
