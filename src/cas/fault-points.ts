/**
 * Named crash points of the intent protocol (see intent-store.ts). Every store call the
 * protocol makes is preceded by a call of the fault hook with the point's name, so a test can
 * stop the "process" exactly there and check that every other client still sees each commit
 * all-or-nothing. Crashing before call n+1 leaves the store exactly as crashing after call n,
 * so points before each call cover every instant.
 */
export type FaultPoint =
  // The owner of a commit, in protocol order.
  | 'precheck.read'
  | 'intent.create'
  | 'lock.read'
  | 'lock.write'
  | 'check.read'
  | 'intent.commit'
  | 'intent.reread'
  | 'apply.write'
  | 'abort.intent'
  | 'rollback.write'
  | 'intent.delete'
  // Any client settling someone else's envelope or intent.
  | 'resolve.intent.read'
  | 'resolve.abort'
  | 'resolve.write'
  | 'finish.read'
  | 'finish.write'
  | 'finish.delete'
  // Plain single-key operations through the wrapper.
  | 'get'
  | 'getMany'
  | 'put'
  | 'put.read'
  | 'delete'
  // fsck.
  | 'scan';

/**
 * Called before each store call with the point's name and the key it touches. Throwing
 * {@link InjectedCrash} makes the wrapper stop at once without any further store call, as a
 * killed process would; any other error acts as that store call failing.
 */
export type FaultHook = (point: FaultPoint, key: string) => void | Promise<void>;

/** Simulates the process dying at a crash point; the wrapper never catches it. */
export class InjectedCrash extends Error {
  constructor(
    readonly point: FaultPoint,
    readonly key: string,
  ) {
    super(`injected crash at ${point} (${key})`);
    this.name = 'InjectedCrash';
  }
}
