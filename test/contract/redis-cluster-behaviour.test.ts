/**
 * Redis Cluster behaviour beyond the shared contract: keys spread over every master,
 * keyInDomain lands on the asked master, and a killed master's replica takes over while
 * operations continue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IF_ABSENT, ifVersion, type KvStore } from '../../src/backends/kv-store.js';
import { RedisStore, parseRedisOptions } from '../../src/backends/redis/index.js';
import { sleep } from '../helpers/run.js';
import { startRedis, type RedisServers } from '../helpers/redis-servers.js';

describe('redis cluster', () => {
  let servers: RedisServers;
  let store: KvStore;

  beforeAll(async () => {
    servers = await startRedis('cluster', { nodeTimeoutMs: 2000 });
    store = await RedisStore.connect(
      parseRedisOptions({ ...servers.env, VOLDFS_REDIS_TIMEOUT_MS: '2000', VOLDFS_REDIS_RETRY_MS: '20000' }),
    );
  });

  afterAll(async () => {
    await store?.close();
    await servers?.stop();
  });

  /** Ports of the live masters, and the master port that holds `key`. */
  async function masters(): Promise<number[]> {
    return (await servers.nodes()).filter((n) => n.role === 'master' && !n.failed).map((n) => n.port);
  }

  async function holderOf(key: string): Promise<number> {
    for (const port of await masters()) {
      // EXISTS on a master that does not own the slot answers with a MOVED error.
      const out = await servers.cli(port, 'exists', key).catch(() => '');
      if (out.trim() === '1') return port;
    }
    throw new Error(`no master holds ${key}`);
  }

  it('spreads the keys of one prefix over every master', async () => {
    const prefix = 'spread:vol1:';
    await Promise.all(Array.from({ length: 90 }, (_v, i) => store.put(`${prefix}${i}`, Buffer.from('x'))));
    const ports = await masters();
    expect(ports.length).toBe(3);
    for (const port of ports) {
      const listed = (await servers.cli(port, '--scan', '--pattern', `${prefix}*`)).split('\n').filter(Boolean);
      expect(listed.length, `keys on master ${port}`).toBeGreaterThan(10);
    }
    const domains = new Set(Array.from({ length: 90 }, (_v, i) => store.capabilities.placement.domainOf(`${prefix}${i}`)));
    expect([...domains].sort()).toEqual([0, 1, 2]);
  });

  it('keyInDomain puts keys of distinct domains on distinct masters, as domainOf says', async () => {
    const { placement } = store.capabilities;
    const holders = new Map<number, number>();
    for (let d = 0; d < placement.domains; d++) {
      const key = placement.keyInDomain('frag:block42', d);
      expect(key.startsWith('frag:block42')).toBe(true);
      await store.put(key, Buffer.from(`fragment ${d}`));
      holders.set(d, await holderOf(key));
    }
    expect(new Set(holders.values()).size).toBe(3);
    // domainOf of ordinary keys agrees with where Redis put them.
    for (let i = 0; i < 12; i++) {
      const key = `agree:${i}`;
      await store.put(key, Buffer.from('a'));
      expect(await holderOf(key)).toBe(holders.get(placement.domainOf(key)));
    }
    expect(() => placement.keyInDomain('has{brace', 0)).toThrow(/contains '\{'/);
  });

  it(
    'survives a master being killed: its replica is promoted and operations continue',
    async () => {
      const key = 'failover:inode:1';
      const first = await store.put(key, Buffer.from('before'), IF_ABSENT);
      if (!first.ok) throw new Error('initial put failed');
      const victim = await holderOf(key);
      const victimId = (await servers.nodes()).find((n) => n.port === victim)?.id;
      // Replication is asynchronous: wait until the replica has the write before the kill.
      const replica = (await servers.nodes()).find((n) => n.masterId === victimId);
      if (!replica) throw new Error('the master has no replica');
      await waitForReplication(victim, replica.port);

      await servers.kill(victim);
      const started = Date.now();
      const got = await store.get(key);
      const recoveredMs = Date.now() - started;
      expect(got?.value.toString()).toBe('before');
      expect(got?.version).toBe(first.version);
      const second = await store.put(key, Buffer.from('after'), ifVersion(first.version));
      expect(second.ok).toBe(true);
      expect((await store.get(key))?.value.toString()).toBe('after');
      // Writes on the other masters never stopped, and new keys land everywhere again.
      await Promise.all(Array.from({ length: 30 }, (_v, i) => store.put(`failover:after:${i}`, Buffer.from('y'))));

      const promoted = (await servers.nodes(replica.port)).find((n) => n.port === replica.port);
      expect(promoted?.role).toBe('master');
      // cluster-node-timeout is 2 s here; promotion takes about twice that.
      expect(recoveredMs).toBeLessThan(15_000);
      console.log(`redis cluster failover: reads resumed after ${recoveredMs} ms`);
    },
    60_000,
  );

  async function waitForReplication(masterPort: number, replicaPort: number): Promise<void> {
    const offset = (info: string, field: string) => Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1]);
    for (let i = 0; i < 100; i++) {
      const m = offset(await servers.cli(masterPort, 'info', 'replication'), 'master_repl_offset');
      const r = offset(await servers.cli(replicaPort, 'info', 'replication'), 'slave_repl_offset');
      if (m > 0 && r >= m) return;
      await sleep(50);
    }
    throw new Error(`replica ${replicaPort} did not catch up with master ${masterPort}`);
  }
});
