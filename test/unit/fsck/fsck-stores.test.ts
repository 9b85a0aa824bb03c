import { describe, expect, it } from 'vitest';
import { MemoryData, MemoryStore } from '../../../src/backends/memory/index.js';
import { IntentCommitStore } from '../../../src/cas/intent-store.js';
import { encodeRecord } from '../../../src/chunk/record-codec.js';
import { fsckVolume } from '../../../src/fsck/index.js';
import { WrongPassphrase } from '../../../src/translators/crypt/keyring.js';
import { CHEAP_KDF } from '../translators/fixtures.js';
import { patternBytes } from '../../helpers/pattern.js';
import { NoCommitStore } from '../../helpers/no-commit-store.js';
import { VolumeFixture, kindsOf, silent } from './fsck-fixture.js';

describe('fsck of an erasure-coded volume', () => {
  it('rewrites a lost fragment byte for byte, and reports a block past what parity rebuilds', async () => {
    const store = new MemoryStore({ domains: 3 });
    const fx = await VolumeFixture.create({ store, translators: { crypt: false, erasure: { k: 2, m: 1 } } });
    const big = await fx.writeFile('/striped', patternBytes(100_000, 1));
    // Under erasure's 16 KiB, over the inline threshold: a block kept as whole copies.
    const small = await fx.writeFile('/copied', patternBytes(10_000, 2));
    await fx.close();
    const fragmentsOf = async (ino: number) => {
      const block = await fx.chunkBlock(ino, 0);
      return (await fx.keysUnder('b:')).filter((k) => k.startsWith(fx.keys.blockPrefix() + block.id));
    };
    const striped = await fragmentsOf(big);
    expect(striped).toHaveLength(3);
    const lost = striped[1];
    const bytes = (await store.get(lost))?.value;
    await store.delete(lost);

    const check = await fx.fsck();
    expect(check.problems).toMatchObject([{ kind: 'block-damaged', path: '/striped', action: 'left' }]);
    expect(check.exitCode).toBe(1);
    const repair = await fx.fsck({ repair: true });
    expect(repair.problems).toMatchObject([{ kind: 'block-damaged', action: 'repaired', done: '1 records rewritten' }]);
    expect(repair.summary.fragmentsRewritten).toBe(1);
    expect(repair.exitCode).toBe(0);
    expect((await store.get(lost))?.value.equals(bytes as Buffer)).toBe(true);
    expect((await fx.fsck()).problems).toEqual([]);

    // Copies: m + 1 = 2 whole copies; losing both is beyond repair.
    const copies = await fragmentsOf(small);
    expect(copies).toHaveLength(2);
    for (const key of copies) await store.delete(key);
    const gone = await fx.fsck({ repair: true, offline: true });
    expect(gone.problems).toMatchObject([{ kind: 'block-lost', path: '/copied', action: 'not-repairable' }]);
    expect(gone.exitCode).toBe(1);
  });
});

describe('fsck on a store that cannot list keys', () => {
  it('checks everything reachable, says what it cannot find, and still finds the chunk just past the end', async () => {
    const data = new MemoryData();
    const open = () => ({
      store: new IntentCommitStore(new NoCommitStore({ data, noScan: true }), { log: silent }),
      dataStore: new NoCommitStore({ data, noScan: true }),
    });
    const fx = await VolumeFixture.create(open());
    await fx.mkdir('/d');
    const a = await fx.writeFile('/d/a', patternBytes(5000, 3));
    const b = await fx.writeFile('/d/b', patternBytes(7000, 4));
    await fx.close();
    const block = await fx.chunkBlock(a, 0);
    await fx.data.delete(fx.keys.blockPrefix() + block.id);
    const stray = await fx.fs.volume.blocks.put('pastend0000000000000', Buffer.alloc(10, 9), { volumeId: fx.fs.volume.superblock.volumeId, ino: b, chunkIndex: 1 });
    await fx.store.put(fx.keys.chunkMap(b, 1), encodeRecord({ block: stray }));
    await fx.store.put(fx.keys.inode(999), encodeRecord({ mode: 0o100644, nlink: 1, size: 0 })); // an orphan no scan finds

    const report = await fx.fsck({ repair: true, offline: true });
    expect(report.notes.join('\n')).toContain('cannot list keys: orphan inodes, chunk maps past the end');
    expect(report.notes.join('\n')).toContain('pending transactions cannot be listed');
    expect(report.summary.listed).toBe(false);
    expect(kindsOf(report)).toEqual(['block-lost', 'chunk-map-past-eof']);
    expect(report.problems.find((p) => p.kind === 'chunk-map-past-eof')?.action).toBe('repaired');
    expect(report.exitCode).toBe(1);
    expect(await fx.store.get(fx.keys.chunkMap(b, 1))).toBeUndefined();
    expect(await fx.data.get(fx.keys.blockPrefix() + stray.id)).toBeUndefined();
  });
});

describe('fsck of an encrypted, erasure-coded volume', () => {
  it('checks through the keyring, repairs a lost fragment and a link count, and refuses a wrong passphrase', async () => {
    const store = new MemoryStore({ domains: 3 });
    const options = { store, translators: { crypt: true, erasure: { k: 2, m: 1 } }, passphrase: 'correct horse' };
    const fx = await VolumeFixture.create(options);
    await fx.mkdir('/secret');
    const ino = await fx.writeFile('/secret/plans', patternBytes(50_000, 5));
    await fx.link('/secret/plans', '/copy');
    await fx.close();
    const block = await fx.chunkBlock(ino, 0);
    const fragment = (await fx.keysUnder('b:')).find((k) => k.startsWith(fx.keys.blockPrefix() + block.id));
    expect(fragment).toBeDefined();
    await store.delete(fragment as string);
    await fx.putInode(ino, { ...(await fx.inode(ino)), nlink: 1 });

    const report = await fx.fsck({ repair: true, offline: true });
    expect(report.problems.map((p) => [p.kind, p.action])).toEqual([
      ['block-damaged', 'repaired'],
      ['nlink', 'repaired'],
    ]);
    expect((await fx.inode(ino)).nlink).toBe(2);
    expect((await fx.fsck()).problems).toEqual([]);

    const wrong = fsckVolume({ store, prefix: fx.keys.prefix, passphrase: async () => 'wrong', kdf: { kdf: CHEAP_KDF } });
    await expect(wrong).rejects.toBeInstanceOf(WrongPassphrase);
  });
});
