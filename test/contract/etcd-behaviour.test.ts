/**
 * etcd behaviour beyond the shared contract: failover between members, the request size
 * limit, a full backend, clear errors at open.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreFull, StoreUnavailable, ValueTooLarge } from '../../src/backends/errors.js';
import { EtcdStore, parseHttpOptions } from '../../src/backends/kv-http/index.js';
import { IF_ABSENT, MAX_KEY_BYTES, ifVersion, type KvStore } from '../../src/backends/kv-store.js';
import { startEtcd, type EtcdServers } from '../helpers/etcd-servers.js';
import { findFreeBase } from '../helpers/free-ports.js';

const open = (env: Record<string, string>) => EtcdStore.connect(parseHttpOptions(env));

describe('etcd, three members', () => {
  let servers: EtcdServers;
  let store: KvStore;

  beforeAll(async () => {
    servers = await startEtcd('cluster');
    store = await open({ ...servers.env, VOLDFS_HTTP_TIMEOUT_MS: '3000' });
  });

  afterAll(async () => {
    await store?.close();
    await servers?.stop();
  });

  it('versions are the mod_revision etcd reports, as decimal strings', async () => {
    const r = await store.put('rev:a', Buffer.from('x'));
    if (!r.ok) throw new Error('put failed');
    expect(r.version).toMatch(/^[1-9][0-9]*$/);
    const raw = await fetch(`${servers.urls[1]}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: Buffer.from('rev:a').toString('base64') }),
    });
    const body = (await raw.json()) as { kvs: { mod_revision: string }[] };
    expect(body.kvs[0].mod_revision).toBe(r.version);
  });

  it('takes a value as large as the 1.5 MiB request limit allows, under the longest key', async () => {
    const limit = parseHttpOptions({ VOLDFS_HTTP_DIALECT: 'etcd' }).maxRequestBytes - 2048;
    const big = await open({ ...servers.env, VOLDFS_HTTP_MAX_VALUE_BYTES: String(limit) });
    try {
      const key = `big:${'k'.repeat(MAX_KEY_BYTES - 4)}`;
      const value = Buffer.alloc(limit, 0x5a);
      const r = await big.put(key, value, IF_ABSENT);
      expect(r.ok).toBe(true);
      expect((await big.get(key))?.value.equals(value)).toBe(true);
      if (!r.ok) return;
      // The same size as an ifVersion transaction (a compare more) fits too.
      expect((await big.put(key, value, ifVersion(r.version))).ok).toBe(true);
    } finally {
      await big.close();
    }
  });

  it('a commit larger than the request limit throws ValueTooLarge before sending', async () => {
    if (!store.commit) throw new Error('etcd store has no commit');
    const value = Buffer.alloc(1024 * 1024, 1);
    await expect(
      store.commit([
        { key: 'huge:a', value, condition: IF_ABSENT },
        { key: 'huge:b', value, condition: IF_ABSENT },
      ]),
    ).rejects.toBeInstanceOf(ValueTooLarge);
    expect(await store.get('huge:a')).toBeUndefined();
  });

  it('a conditional write whose answer was lost, and which was resent, is reported as applied', async () => {
    // A proxy in front of member 1 passes the write to etcd and then drops the connection
    // instead of answering: etcd applied it, the client saw only the broken connection.
    let lose = 0;
    const proxy = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const answer = await fetch(servers.urls[1] + (req.url ?? ''), { method: req.method, body: Buffer.concat(chunks) });
        const body = Buffer.from(await answer.arrayBuffer());
        if (req.url?.endsWith('/kv/txn') && lose > 0) {
          lose--;
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(body);
      })();
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    // A fresh client per write: the first answer lost moves a client on to member 1 for good.
    const withLostAnswer = async <T>(write: (lossy: KvStore) => Promise<T>): Promise<T> => {
      const lossy = await open({ ...servers.env, VOLDFS_HTTP_URLS: `${proxyUrl},${servers.urls[1]}` });
      try {
        lose = 1;
        const result = await write(lossy);
        expect(lose).toBe(0);
        return result;
      } finally {
        await lossy.close();
      }
    };
    try {
      const put = await withLostAnswer((lossy) => lossy.put('lost:a', Buffer.from('mine'), IF_ABSENT));
      expect(put.ok).toBe(true);
      const stored = await store.get('lost:a');
      expect(stored?.value.toString()).toBe('mine');
      if (put.ok) expect(put.version).toBe(stored?.version);

      const committed = await withLostAnswer((lossy) =>
        lossy.commit!([
          { key: 'lost:b', value: Buffer.from('b'), condition: IF_ABSENT },
          { key: 'lost:c', value: Buffer.from('c'), condition: IF_ABSENT },
        ]),
      );
      expect(committed).toBe(true);

      // A real conflict stays one: the key held someone else's value before the write.
      await store.put('lost:d', Buffer.from('theirs'));
      expect((await withLostAnswer((lossy) => lossy.put('lost:d', Buffer.from('mine'), IF_ABSENT))).ok).toBe(false);
      expect((await store.get('lost:d'))?.value.toString()).toBe('theirs');
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('keeps working when the member it talks to is killed: it fails over to another', async () => {
    const first = await store.put('failover:k', Buffer.from('before'));
    if (!first.ok) throw new Error('put failed');
    // The store talks to the first URL until it fails; kill that member.
    await servers.kill(0);
    const started = Date.now();
    const got = await store.get('failover:k');
    expect(got?.value.toString()).toBe('before');
    const second = await store.put('failover:k', Buffer.from('after'), ifVersion(first.version));
    expect(second.ok).toBe(true);
    // A leader election, if the killed member led, takes about a second.
    expect(Date.now() - started).toBeLessThan(5000);
    // A fresh client that lists the dead member first still opens.
    const fresh = await open({ ...servers.env });
    try {
      expect((await fresh.get('failover:k'))?.value.toString()).toBe('after');
    } finally {
      await fresh.close();
    }
  });
});

describe('etcd, errors', () => {
  let tiny: EtcdServers | undefined;
  let plainHttp: Server | undefined;

  afterAll(async () => {
    await tiny?.stop();
    await new Promise((resolve) => plainHttp?.close(resolve) ?? resolve(undefined));
  });

  it('unreachable members at open give StoreUnavailable naming every URL and the variable', async () => {
    const base = await findFreeBase([0, 1]);
    const urls = `http://127.0.0.1:${base},http://127.0.0.1:${base + 1}`;
    const started = Date.now();
    const err = await open({ VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: urls, VOLDFS_HTTP_RETRY_MS: '500' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreUnavailable);
    const message = (err as Error).message;
    expect(message).toContain(`127.0.0.1:${base}: connect ECONNREFUSED`);
    expect(message).toContain(`127.0.0.1:${base + 1}: connect ECONNREFUSED`);
    expect(message).toContain('VOLDFS_HTTP_URLS');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('an HTTP server that is not etcd is refused at open with a clear message', async () => {
    plainHttp = createServer((_req, res) => {
      res.writeHead(404).end('not found');
    });
    await new Promise<void>((resolve) => plainHttp?.listen(0, '127.0.0.1', resolve));
    const port = (plainHttp.address() as AddressInfo).port;
    const err = await open({ VOLDFS_HTTP_DIALECT: 'etcd', VOLDFS_HTTP_URLS: `http://127.0.0.1:${port}` }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreUnavailable);
    expect((err as Error).message).toMatch(/no etcd v3 JSON gateway/);
  });

  it('a full backend (quota reached) gives StoreFull with what to do', async () => {
    tiny = await startEtcd('single', { quotaBytes: 8 * 1024 * 1024 });
    const store = await open({ ...tiny.env });
    try {
      const value = Buffer.alloc(1024 * 1024, 3);
      let err: unknown;
      for (let i = 0; i < 40 && err === undefined; i++) {
        await store.put(`full:${i}`, value).catch((e: unknown) => {
          err = e;
        });
      }
      expect(err).toBeInstanceOf(StoreFull);
      expect((err as Error).message).toMatch(/quota.*defrag.*alarm disarm/);
    } finally {
      await store.close();
    }
  });
});
