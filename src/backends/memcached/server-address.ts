/** One memcached server as configured in VOLDFS_MC_SERVERS. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, with IPv6 hosts in brackets, as written in VOLDFS_MC_SERVERS. */
export function formatAddress(address: ServerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
