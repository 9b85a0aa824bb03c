/**
 * The stores the multi-mount stress runs on, started on 127.0.0.1 (free ports) and stopped by
 * PID: a memcached pool, a Redis Cluster (3 masters + 3 replicas), a 3-member etcd cluster, a
 * kumofs cluster of 3 servers (through its text or binary gateway port; needs ../shared/kumofs)
 * or twemproxy in front of 3 memcached servers.
 * The driver only sees the VOLDFS_* variables that name the store and a stop function.
 */
import { startEtcd } from '../../helpers/etcd-servers.js';
import { KumofsCluster } from '../../helpers/kumofs-cluster.js';
import { startMemcachedServers } from '../../helpers/memcached-servers.js';
import { startRedis } from '../../helpers/redis-servers.js';
import { Twemproxy } from '../../helpers/twemproxy.js';

/** Store kinds of the stress test, as `scripts/stress --store` takes them. */
export const STRESS_STORES = ['memcached', 'redis-cluster', 'etcd', 'kumofs-text', 'kumofs-binary', 'twemproxy'] as const;
export type StressStore = (typeof STRESS_STORES)[number];

/** Options of {@link startStressStore}. */
export interface StressStoreOptions {
  /** memcached only: servers in the pool. Default 3. */
  readonly servers?: number;
  /** memcached only: memory per server, MiB. Default 1024. */
  readonly memoryMb?: number;
}

/** A running store. */
export interface RunningStressStore {
  /** VOLDFS_DB and the variables naming the servers (no volume name). */
  readonly env: Readonly<Record<string, string>>;
  /** For progress lines, e.g. "3 memcached". */
  readonly description: string;
  /** Stops every server by PID. Idempotent. */
  stop(): Promise<void>;
}

/** True if `name` is one of {@link STRESS_STORES}. */
export function isStressStore(name: string): name is StressStore {
  return (STRESS_STORES as readonly string[]).includes(name);
}

/**
 * Starts the servers of `store` and waits until they serve (for Redis: every replica attached).
 * @throws Error with the starter's output when they cannot start
 */
export async function startStressStore(store: StressStore, options: StressStoreOptions = {}): Promise<RunningStressStore> {
  switch (store) {
    case 'memcached': {
      const servers = options.servers ?? 3;
      // Blocks replaced or deleted stay for the 30 s grace period: room for a minute of churn.
      const pool = await startMemcachedServers(servers, { memoryMb: options.memoryMb ?? 1024 });
      return { env: { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: pool.serversValue }, description: `${servers} memcached`, stop: () => pool.stop() };
    }
    case 'redis-cluster': {
      const cluster = await startRedis('cluster');
      return { env: cluster.env, description: 'a Redis Cluster of 3 masters + 3 replicas', stop: () => cluster.stop() };
    }
    case 'etcd': {
      const cluster = await startEtcd('cluster');
      return { env: cluster.env, description: '3 etcd members', stop: () => cluster.stop() };
    }
    case 'kumofs-text':
    case 'kumofs-binary': {
      const cluster = await KumofsCluster.start({ servers: 3 });
      const port = store === 'kumofs-text' ? cluster.text : cluster.binary;
      return { env: { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: port }, description: `kumofs (3 servers), gateway ${store.slice(7)} port`, stop: () => cluster.stop() };
    }
    case 'twemproxy': {
      const proxy = await Twemproxy.start(3, options.memoryMb ?? 1024);
      return { env: { VOLDFS_DB: 'mc', VOLDFS_MC_SERVERS: proxy.address }, description: 'twemproxy over 3 memcached', stop: () => proxy.stop() };
    }
  }
}
