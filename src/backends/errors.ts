/**
 * Errors of the store layer. The filesystem maps them to errnos in one place (src/fs):
 * StoreFull -> ENOSPC, ValueTooLarge -> EFBIG/EIO, the rest -> EIO, each with a log line.
 * Messages say what is wrong and how to fix it; they never contain values or keys' contents
 * beyond the key itself.
 */
export class StoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The store cannot be reached (connection refused, all servers down). */
export class StoreUnavailable extends StoreError {}

/** The store did not answer within the configured time. */
export class StoreTimeout extends StoreError {}

/**
 * Whether `err` says a server could not be reached (refused, lost, no answer in time), as
 * opposed to refusing or failing a request: the record may still be there.
 */
export function isUnreachable(err: unknown): err is StoreUnavailable | StoreTimeout {
  return err instanceof StoreUnavailable || err instanceof StoreTimeout;
}

/** A value exceeds the store's item size limit. */
export class ValueTooLarge extends StoreError {
  constructor(
    readonly key: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(`value of ${size} bytes for key ${key} exceeds the store's limit of ${limit} bytes`);
  }
}

/** The store refused a write for lack of space (memcached -M out of memory, LMDB map full). */
export class StoreFull extends StoreError {}

/** A record exists but cannot be decoded or fails its checksum / authentication. */
export class IntegrityError extends StoreError {}

/** A configuration value is wrong; the message names the variable and the accepted values. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
