import { readFileSync } from 'node:fs';
import type { Env } from '../backends/backend.js';
import { ConfigError } from '../backends/errors.js';
import { BACKENDS } from '../backends/registry.js';
import { CONFIG_VARIABLES } from './config.js';

/**
 * Where settings come from, strongest first: a mount option (`-o mc_servers=...`), the
 * environment (`VOLDFS_MC_SERVERS`), the config file (`VOLDFS_CONFIG` or `-o config=FILE`, one
 * `key=value` a line), the default. fstab and systemd mounts pass no environment, so the
 * options and the file are how they choose a store.
 */
export const CONFIG_FILE_VARIABLE = 'VOLDFS_CONFIG';

/** Every VOLDFS_* setting by its short name: VOLDFS_MC_SERVERS is `mc_servers`. */
function settingsByShortName(): Map<string, string> {
  const names = [...CONFIG_VARIABLES, ...BACKENDS.flatMap((b) => b.variables)].map((v) => v.name);
  return new Map([...names, CONFIG_FILE_VARIABLE].map((name) => [name.replace(/^VOLDFS_/, '').toLowerCase(), name]));
}

/** The variable a key of a mount option or config line names (`mc_servers` or `VOLDFS_MC_SERVERS`), if any. */
function variableOf(key: string, known: Map<string, string>): string | undefined {
  const short = key.trim().replace(/^VOLDFS_/i, '').toLowerCase();
  return known.get(short);
}

/** Kernel and FUSE options that pass through to the mount as they are. */
const KERNEL_FLAGS = new Set(['nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec', 'noatime', 'atime', 'nodiratime', 'relatime', 'norelatime', 'strictatime', 'sync', 'async', 'dirsync']);
/** What mount(8) and fstab add for themselves, meaningless to the filesystem. */
const MOUNT_TOOL_FLAGS = new Set(['defaults', 'rw', 'auto', 'noauto', 'user', 'users', 'nouser', 'owner', 'group', 'nofail', '_netdev']);

export interface MountOptions {
  /** VOLDFS_* variables set by the options. */
  readonly settings: Record<string, string>;
  /** `ro`: the kernel refuses every write with EROFS. */
  readonly readOnly: boolean;
  /** `allow_other`: other users may enter the mount (root mounts always allow them). */
  readonly allowOther: boolean;
  /** Options for the kernel as given (nosuid, noatime, ...). */
  readonly kernel: readonly string[];
}

/**
 * Parses a mount option list: `key=value` for voldfs's settings, flags for the kernel. A value
 * that is itself a list (`mc_servers=a:11211,b:11211`) keeps the items that follow it as long
 * as they are `host:port` or URLs.
 * @throws ConfigError naming an option voldfs does not know, and what it does know
 */
export function parseMountOptions(lists: readonly string[]): MountOptions {
  const known = settingsByShortName();
  const settings: Record<string, string> = {};
  const kernel: string[] = [];
  let readOnly = false;
  let allowOther = false;
  let listVariable: string | undefined;
  for (const token of lists.flatMap((l) => l.split(',')).map((t) => t.trim()).filter(Boolean)) {
    const eq = token.indexOf('=');
    if (eq < 0) {
      if (listVariable && /^([^\s=/]+:\d+|[a-z][a-z0-9+.-]*:\/\/\S+)$/i.test(token)) {
        settings[listVariable] += `,${token}`;
        continue;
      }
      listVariable = undefined;
      if (token === 'ro') readOnly = true;
      else if (token === 'allow_other') allowOther = true;
      else if (KERNEL_FLAGS.has(token)) kernel.push(token);
      else if (!MOUNT_TOOL_FLAGS.has(token) && !token.startsWith('x-')) {
        throw new ConfigError(`mount option ${token} is not one voldfs knows; it takes ${describeKnown(known)}`);
      }
      continue;
    }
    const key = token.slice(0, eq);
    const variable = variableOf(key, known);
    if (key.startsWith('x-') || key === 'comment') {
      listVariable = undefined;
      continue;
    }
    if (!variable) throw new ConfigError(`mount option ${key}=... is not one voldfs knows; it takes ${describeKnown(known)}`);
    settings[variable] = token.slice(eq + 1);
    listVariable = variable;
  }
  return { settings, readOnly, allowOther, kernel };
}

function describeKnown(known: Map<string, string>): string {
  return `${[...known.keys()].map((k) => `${k}=`).join(', ')}, ro, allow_other and the kernel's ${[...KERNEL_FLAGS].join(', ')}`;
}

/**
 * Reads a config file: `key=value` lines (`mc_servers=...` or `VOLDFS_MC_SERVERS=...`), `#`
 * comments and blank lines.
 * @throws ConfigError naming the file and line of what is wrong, or why it cannot be read
 */
export function readConfigFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${CONFIG_FILE_VARIABLE}=${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const known = settingsByShortName();
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const variable = eq > 0 ? variableOf(line.slice(0, eq), known) : undefined;
    if (!variable || variable === CONFIG_FILE_VARIABLE) {
      throw new ConfigError(`${path}:${i + 1}: "${line}" is not a setting; write key=value with a key like db or mc_servers (or VOLDFS_DB)`);
    }
    out[variable] = line.slice(eq + 1).trim();
  });
  return out;
}

/**
 * The settings in force: `env` with the mount options laid over it and the config file's
 * values under both (see {@link CONFIG_FILE_VARIABLE} for the order).
 */
export function resolveSettings(env: Env, options?: MountOptions): Env {
  const withOptions: Env = { ...env, ...options?.settings };
  const file = withOptions[CONFIG_FILE_VARIABLE]?.trim();
  return file ? { ...readConfigFile(file), ...withOptions } : withOptions;
}
