import type { Env } from './backend.js';
import { ConfigError } from './errors.js';

/** One server as written in a `host:port` list; IPv6 hosts are kept without their brackets. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/** The variable's value trimmed, or undefined when it is unset or blank. */
export function blankToUndefined(text: string | undefined): string | undefined {
  const trimmed = text?.trim();
  return trimmed === undefined || trimmed === '' ? undefined : trimmed;
}

/**
 * Reads the integer variable `name`: `fallback` when unset or blank.
 * @param unit what the number counts, for the message (e.g. `milliseconds`)
 * @throws ConfigError naming the variable, the accepted range and the default
 */
export function integerOption(
  env: Env,
  name: string,
  limits: { readonly fallback: number; readonly min: number; readonly max: number; readonly unit?: string },
): number {
  const { fallback, min, max, unit } = limits;
  const text = blankToUndefined(env[name]);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `${name}=${JSON.stringify(env[name])} is invalid: expected ${unit ? `${unit}, ` : ''}an integer from ${min} ` +
        `to ${max} (default ${fallback})`,
    );
  }
  return value;
}

/**
 * Parses the comma-separated server list `text` of variable `name`, such as
 * `127.0.0.1:11211,[::1]:11212`: host names, IPv4 or bracketed IPv6 addresses, ports 1..65535,
 * no server twice. The order is kept (placement may depend on it).
 * @param example a valid list for the message, e.g. `127.0.0.1:7000,127.0.0.1:7001`
 * @throws ConfigError naming the variable, the faulty entry and the accepted form
 */
export function hostPortList(name: string, text: string, example: string): HostPort[] {
  const bad = (why: string) =>
    new ConfigError(
      `${name}=${JSON.stringify(text)} is invalid: ${why}; expected a comma-separated list of host:port, ` +
        `e.g. ${example} (IPv6 hosts in brackets: [::1]:${example.split(',')[0].split(':').pop()})`,
    );
  const seen = new Set<string>();
  return text.split(',').map((raw) => {
    const entry = raw.trim();
    if (entry === '') throw bad('empty server entry');
    const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]+)$/.exec(entry);
    if (!match) throw bad(`${JSON.stringify(entry)} is not host:port`);
    const host = match[1] ?? match[2];
    const valid = match[1] !== undefined ? IPV6.test(host) && host.includes(':') : HOSTNAME.test(host);
    if (!valid) throw bad(`${JSON.stringify(host)} is not a host name or IP address`);
    const port = Number(match[3]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${match[3]} is not in 1..65535`);
    const label = `${host.toLowerCase()} ${port}`;
    if (seen.has(label)) throw bad(`${entry} is listed twice`);
    seen.add(label);
    return Object.freeze({ host, port });
  });
}
