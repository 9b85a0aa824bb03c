// Regression: on a store without native multi-key commit (memcached, Redis Cluster, Voldemort)
// a directory stopped taking new names once its leaf had to split: the split commits 64 child
// nodes, the split node and two inodes (67 writes), and the intent layer took at most 64.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { IntentCommitStore } from '../../../src/cas/intent-store.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { S_IFREG } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';

describe('a directory on a store without native commit', () => {
  it('keeps taking names past its first leaf splits', async () => {
    const inner = new NoCommitStore();
    const store = new IntentCommitStore(inner);
    const fs = new FileSystem(await Volume.open({ store, dataStore: inner, log: pino({ level: 'silent' }), prefix: 's:' }));
    const dir = await fs.mkdir('/d', 0o755, { uid: 0, gid: 0 });
    for (let i = 0; i < 1500; i++) await fs.namespace.create(dir, `a-name-of-twenty-seven-${i}`, S_IFREG | 0o644, { uid: 0, gid: 0 });
    expect((await fs.readdir(dir)).length).toBe(1500);
    const nodes: string[] = [];
    for await (const key of inner.memory.scan(`s:d:${dir}:`)) nodes.push(key);
    expect(nodes.length).toBeGreaterThan(64); // it did split
    await fs.close();
  }, 120_000);
});
