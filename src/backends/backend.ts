import type { KvStore } from './kv-store.js';

/** Environment as read once at start; backends never touch `process.env` themselves. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * A backend as the registry knows it: a name, its options parsed and validated up front from
 * the environment (a bad value throws ConfigError naming the variable), and a factory.
 * Adding a backend means adding a folder with one of these and one line in registry.ts.
 */
export interface BackendDefinition<Options> {
  /** Value of VOLDFS_DB that selects it. */
  readonly name: string;
  /** One line for `voldfs --help` and error messages. */
  readonly summary: string;
  /** The VOLDFS_* variables it reads, with their defaults, for help and the README. */
  readonly variables: readonly { name: string; description: string; default?: string }[];
  /** Parses and validates; throws ConfigError with the variable's name on a bad value. */
  parseOptions(env: Env): Options;
  /** Connects (or opens); throws StoreUnavailable with a clear message when it cannot. */
  create(options: Options): Promise<KvStore>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds backends of any options type
export type AnyBackend = BackendDefinition<any>;
