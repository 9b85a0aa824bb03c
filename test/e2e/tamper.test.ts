/**
 * Tampering with what an (unmounted) volume stores, through the real CLI on LMDB:
 *  - one flipped byte in every block (one fragment of each, for erasure): erasure reads back
 *    identical and `voldfs fsck --repair` rewrites the fragments; crypt alone, and a plain
 *    volume (raw checksum), answer EIO, never wrong bytes, and fsck reports the blocks lost;
 *  - a block ref copied into another file's chunk map: EIO with crypt, whether the record is
 *    copied as stored (metadata authentication) or re-sealed under the other key (block
 *    authentication binds the inode);
 *  - markers written into file contents, names, symlink targets and xattrs of an encrypted
 *    volume appear in no record of the store and nowhere in its data file;
 *  - a wrong or missing passphrase at mount: a clear message, the store unchanged; `voldfs
 *    passwd`, after which the old passphrase fails and the new one mounts.
 * Needs `npm run build` (the CLI runs from dist/).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbStore } from '../../src/backends/lmdb/index.js';
import { UNCONDITIONAL } from '../../src/backends/kv-store.js';
import { decodeRecord, encodeRecord } from '../../src/chunk/record-codec.js';
import type { ChunkMapRecord } from '../../src/chunk/file-data.js';
import { defaultVoldfsCommand, mountVoldfs, type VoldfsMount } from '../helpers/mount.js';
import { isFuseMounted } from '../helpers/mountinfo.js';
import { patternBytes } from '../helpers/pattern.js';
import { run, type RunResult } from '../helpers/run.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { openVolumeStore } from './translators/volume-store.js';

const TEST_MS = 180_000;
const PASSPHRASE = 'tamper test passphrase';
const STACKS = ['none', 'crypt', 'erasure:4+2', 'crypt,erasure:4+2'] as const;
type Stack = (typeof STACKS)[number];

interface Volume {
  readonly work: string;
  readonly lmdbPath: string;
  readonly env: Record<string, string>;
  readonly passFile: string;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fresh LMDB store and the variables naming it; nothing formatted yet. */
async function newVolume(stack: Stack): Promise<Volume> {
  const work = await makeTempDir('tamper');
  cleanups.push(() => removeTempDir(work));
  const passFile = join(work, 'passphrase');
  await writeFile(passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
  const lmdbPath = join(work, 'store.lmdb');
  const env: Record<string, string> = {
    VOLDFS_DB: 'lmdb',
    VOLDFS_LMDB_PATH: lmdbPath,
    VOLDFS_STATE_DIR: join(work, 'state'),
    VOLDFS_LOG_LEVEL: 'warn',
    VOLDFS_TRANSLATORS: stack,
  };
  if (stack.includes('crypt')) env.VOLDFS_PASSPHRASE_FILE = passFile;
  return { work, lmdbPath, env, passFile };
}

async function mount(vol: Volume, mkfs: boolean): Promise<VoldfsMount> {
  const m = await mountVoldfs({ env: vol.env, mkfs, mountpoint: join(vol.work, 'mnt') });
  cleanups.push(() => m.unmount());
  return m;
}

/** The CLI, run with the volume's variables plus `extra` (undefined removes a variable). */
async function voldfs(vol: Volume, args: string[], extra: Record<string, string | undefined> = {}): Promise<RunResult> {
  const [cmd, ...pre] = await defaultVoldfsCommand();
  const env: NodeJS.ProcessEnv = { ...process.env, ...vol.env, ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  return run(cmd, [...pre, ...args], { env, timeoutMs: 60_000 });
}

/** Opens the volume's LMDB directly (only while nothing is mounted) for `fn`. */
async function withLmdb<T>(vol: Volume, fn: (store: LmdbStore) => Promise<T>): Promise<T> {
  const store = await LmdbStore.open({ path: vol.lmdbPath });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function allRecords(store: LmdbStore, prefix = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const key of store.scan(prefix)) {
    const found = await store.get(key);
    if (found) out.set(key, found.value);
  }
  return out;
}

/** key -> SHA-256 of value, for "nothing changed". */
async function fingerprint(vol: Volume): Promise<Record<string, string>> {
  return withLmdb(vol, async (store) => {
    const out: Record<string, string> = {};
    for (const [key, value] of await allRecords(store)) out[key] = createHash('sha256').update(value).digest('hex');
    return out;
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Reads a file; its content or the error code (EIO, ...). */
async function readOutcome(path: string): Promise<Buffer | string> {
  try {
    return await readFile(path);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/** The part of `voldfs fsck --json`'s summary this file reads. */
interface FsckSummaryJson {
  readonly fragmentsRewritten: number;
  readonly damageLeft: number;
  readonly byKind: Record<string, number | undefined>;
}

describe('a flipped byte in every stored block', () => {
  for (const stack of STACKS) {
    const erasure = stack.includes('erasure');
    it(
      `${stack}: ${erasure ? 'every file reads back identical (rebuilt from parity)' : 'every read answers EIO, never wrong bytes'}`,
      async () => {
        const vol = await newVolume(stack);
        let m: VoldfsMount;
        if (stack === 'crypt,erasure:4+2') {
          // The flags path of mkfs, which the other cases leave to VOLDFS_TRANSLATORS.
          const mk = await voldfs(vol, ['mkfs', '--crypt', '--erasure', '4+2'], { VOLDFS_TRANSLATORS: undefined });
          expect(mk.code, mk.stderr).toBe(0);
          expect(mk.stdout).toMatch(/translators crypt,erasure:4\+2/);
          m = await mount(vol, false);
        } else {
          m = await mount(vol, true);
        }
        const files: Record<string, Buffer> = {
          big: patternBytes(2 * 1024 * 1024 + 777, 1),
          small: patternBytes(5000, 2),
          tiny: Buffer.from('ten bytes!'),
        };
        for (const [name, data] of Object.entries(files)) await writeFile(join(m.dir, name), data);
        await m.unmount();

        const damaged = await withLmdb(vol, async (store) => {
          const prefix = 'voldfs:b:';
          const byBlock = new Map<string, string[]>();
          for await (const key of store.scan(prefix)) {
            const block = key.slice(prefix.length).replace(/\.\d+(~[0-9a-z]+)?$/, '');
            byBlock.set(block, [...(byBlock.get(block) ?? []), key]);
          }
          for (const keys of byBlock.values()) {
            const key = keys[Math.floor(Math.random() * keys.length)];
            const found = await store.get(key);
            if (!found) throw new Error(`block record ${key} vanished`);
            const bytes = Buffer.from(found.value);
            bytes[Math.floor(Math.random() * bytes.length)] ^= 1 << Math.floor(Math.random() * 8);
            expect((await store.put(key, bytes, UNCONDITIONAL)).ok).toBe(true);
          }
          return byBlock.size;
        });
        // big: its two whole chunks (its 777-byte tail is inline in its chunk map, as is tiny:
        // metadata, which crypt authenticates and a checksum guards otherwise); small.
        expect(damaged).toBe(3);

        await m.remount();
        for (const [name, data] of Object.entries(files)) {
          const got = await readOutcome(join(m.dir, name));
          if (erasure) expect(Buffer.isBuffer(got) && got.equals(data), `${name}: ${Buffer.isBuffer(got) ? 'other bytes' : got}`).toBe(true);
          else if (name === 'tiny') expect(Buffer.isBuffer(got) && got.equals(data), `${name}: no block to damage`).toBe(true);
          else expect(got, name).toBe('EIO');
        }
        await m.unmount();

        // fsck sees the same: erasure rewrites the corrupt fragments, the others have lost data.
        const fsck = async (args: string[]): Promise<{ code: number | null; summary: FsckSummaryJson }> => {
          const r = await voldfs(vol, ['fsck', '--json', ...args]);
          if (!r.stdout.trim().startsWith('{')) throw new Error(`voldfs fsck printed no report (exit ${r.code}): ${r.stderr.slice(-1500)}`);
          return { code: r.code, summary: (JSON.parse(r.stdout) as { summary: FsckSummaryJson }).summary };
        };
        const repaired = await fsck(['--repair']);
        if (erasure) {
          expect(repaired.code).toBe(0);
          expect(repaired.summary.byKind['block-damaged']).toBe(3);
          expect(repaired.summary.fragmentsRewritten).toBe(3);
          const again = await fsck([]);
          expect(again.code).toBe(0);
          expect(again.summary.byKind['block-damaged'] ?? 0).toBe(0);
        } else {
          expect(repaired.code).toBe(1);
          expect(repaired.summary.byKind['block-lost']).toBe(3);
          expect(repaired.summary.damageLeft).toBe(3);
        }
      },
      TEST_MS,
    );
  }
});

describe("a block ref copied into another file's chunk map", () => {
  for (const stack of ['crypt', 'crypt,erasure:4+2'] as const) {
    it(
      `${stack}: the other file reads EIO, copied as stored or re-sealed under its key; the first still reads`,
      async () => {
        const vol = await newVolume(stack);
        const m = await mount(vol, true);
        const a = patternBytes(100_000, 11);
        const b = patternBytes(100_000, 12);
        const c = patternBytes(100_000, 13);
        await writeFile(join(m.dir, 'a'), a);
        await writeFile(join(m.dir, 'b'), b);
        await writeFile(join(m.dir, 'c'), c);
        const ino = async (name: string): Promise<number> => (await stat(join(m.dir, name))).ino;
        const [inoA, inoB, inoC] = [await ino('a'), await ino('b'), await ino('c')];
        await m.unmount();

        const store = await openVolumeStore({ ...process.env, ...vol.env, VOLDFS_PASSPHRASE: PASSPHRASE });
        try {
          const volume = await store.unlock();
          // b: a's chunk map re-sealed under b's key, as someone holding the metadata key could.
          const keyA = volume.keys.chunkMap(inoA, 0);
          const found = await volume.meta.get(keyA);
          if (!found) throw new Error('no chunk map for a');
          const record = decodeRecord<ChunkMapRecord>(keyA, found.value);
          expect((await volume.meta.put(volume.keys.chunkMap(inoB, 0), encodeRecord(record))).ok).toBe(true);
          // c: a's chunk map record copied byte for byte.
          const sealed = await store.opened.meta.get(keyA);
          if (!sealed) throw new Error('no stored chunk map for a');
          expect((await store.opened.meta.put(volume.keys.chunkMap(inoC, 0), sealed.value)).ok).toBe(true);
        } finally {
          await store.close();
        }

        // b and c first, on a fresh mount: nothing of a is cached yet.
        await m.remount();
        expect(await readOutcome(join(m.dir, 'b'))).toBe('EIO');
        expect(await readOutcome(join(m.dir, 'c'))).toBe('EIO');
        expect(sha((await readOutcome(join(m.dir, 'a'))) as Buffer)).toBe(sha(a));
      },
      TEST_MS,
    );
  }
});

describe('no plaintext in the store of an encrypted volume', () => {
  const M = {
    content: 'MARKER-CONTENT-7a1c',
    fileName: 'MARKER-NAME-3e9d',
    dirName: 'MARKER-DIR-55b0',
    target: 'MARKER-TARGET-c4f2',
    xattrName: 'MARKER-XNAME-0d17',
    xattrValue: 'MARKER-XVALUE-9b6e',
  };

  /** Writes every marker into the mounted volume and checks it reads back. */
  async function writeMarkers(dir: string): Promise<void> {
    const sub = join(dir, `${M.dirName}`);
    await mkdir(sub);
    const file = join(sub, `file-${M.fileName}`);
    await writeFile(file, `${M.content}\n`.repeat(2000));
    await writeFile(join(dir, 'small'), M.content);
    await symlink(`../${M.target}/nowhere`, join(dir, 'link'));
    const x = await run('setfattr', ['-n', `user.${M.xattrName}`, '-v', M.xattrValue, file]);
    expect(x.code, x.stderr).toBe(0);
    expect(await readdir(sub)).toEqual([`file-${M.fileName}`]);
    expect(await readlink(join(dir, 'link'))).toBe(`../${M.target}/nowhere`);
    const g = await run('getfattr', ['--only-values', '-n', `user.${M.xattrName}`, file]);
    expect(g.stdout).toBe(M.xattrValue);
  }

  /** Markers found in any key or value of the store, or in its data file. */
  async function markersFound(vol: Volume): Promise<string[]> {
    const records = await withLmdb(vol, (store) => allRecords(store));
    expect(records.size).toBeGreaterThan(5);
    const dump = Buffer.concat([...records].flatMap(([key, value]) => [Buffer.from(key), value]));
    const files = await readdir(vol.lmdbPath);
    const raw = Buffer.concat(await Promise.all(files.map((f) => readFile(join(vol.lmdbPath, f)))));
    return Object.values(M).filter((marker) => dump.includes(Buffer.from(marker)) || raw.includes(Buffer.from(marker)));
  }

  for (const stack of ['crypt', 'crypt,erasure:4+2'] as const) {
    it(
      `${stack}: contents, names, symlink targets and xattrs appear in no record and nowhere in the data file`,
      async () => {
        const vol = await newVolume(stack);
        const m = await mount(vol, true);
        await writeMarkers(m.dir);
        await m.unmount();
        expect(await markersFound(vol)).toEqual([]);
      },
      TEST_MS,
    );
  }

  it(
    'none (the control): the same markers are all found, so the search above can find them',
    async () => {
      const vol = await newVolume('none');
      const m = await mount(vol, true);
      await writeMarkers(m.dir);
      await m.unmount();
      expect((await markersFound(vol)).sort()).toEqual(Object.values(M).sort());
    },
    TEST_MS,
  );
});

describe('passphrases', () => {
  /** An encrypted volume holding one file, unmounted. */
  async function encryptedVolume(): Promise<{ vol: Volume; mountDir: string; data: Buffer }> {
    const vol = await newVolume('crypt');
    const m = await mount(vol, true);
    const data = patternBytes(300_000, 21);
    await writeFile(join(m.dir, 'kept'), data);
    await m.unmount();
    return { vol, mountDir: m.dir, data };
  }

  it(
    'a wrong or missing passphrase at mount gives a clear message, mounts nothing and changes nothing',
    async () => {
      const { vol, mountDir } = await encryptedVolume();
      const before = await fingerprint(vol);
      const wrongFile = join(vol.work, 'wrong');
      await writeFile(wrongFile, 'not the passphrase\n');

      const wrong = await voldfs(vol, ['mount', mountDir], { VOLDFS_PASSPHRASE_FILE: wrongFile });
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/the passphrase does not unlock this volume: check VOLDFS_PASSPHRASE_FILE/);
      expect(wrong.stderr).not.toContain('not the passphrase');

      const none = await voldfs(vol, ['mount', mountDir], { VOLDFS_PASSPHRASE_FILE: undefined });
      expect(none.code).not.toBe(0);
      expect(none.stderr).toMatch(/this volume is encrypted: give its passphrase in VOLDFS_PASSPHRASE_FILE/);

      const missing = await voldfs(vol, ['mount', mountDir], { VOLDFS_PASSPHRASE_FILE: join(vol.work, 'no-such-file') });
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toMatch(/VOLDFS_PASSPHRASE_FILE=.*no-such-file cannot be read/);

      expect(await isFuseMounted(mountDir)).toBe(false);
      expect(await fingerprint(vol)).toEqual(before);
    },
    TEST_MS,
  );

  it(
    'voldfs passwd: a wrong current passphrase changes nothing; after a change the old one fails and the new one mounts',
    async () => {
      const { vol, mountDir, data } = await encryptedVolume();
      const newFile = join(vol.work, 'new-passphrase');
      await writeFile(newFile, 'a brand new passphrase\n', { mode: 0o600 });
      const wrongFile = join(vol.work, 'wrong');
      await writeFile(wrongFile, 'not the passphrase\n');
      const before = await fingerprint(vol);

      const refused = await voldfs(vol, ['passwd'], { VOLDFS_PASSPHRASE_FILE: wrongFile, VOLDFS_NEW_PASSPHRASE_FILE: newFile });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/the passphrase does not unlock this volume/);
      expect(await fingerprint(vol)).toEqual(before);

      const changed = await voldfs(vol, ['passwd'], { VOLDFS_NEW_PASSPHRASE_FILE: newFile });
      expect(changed.code, changed.stderr).toBe(0);
      expect(changed.stdout).toMatch(/passphrase of volume voldfs changed/);
      const after = await fingerprint(vol);
      // Only the superblock changed: no block or metadata record was rewritten.
      const changedKeys = Object.keys(after).filter((k) => after[k] !== before[k]);
      expect(changedKeys).toEqual(['voldfs:sb']);
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());

      const old = await voldfs(vol, ['mount', mountDir]);
      expect(old.code).not.toBe(0);
      expect(old.stderr).toMatch(/the passphrase does not unlock this volume/);
      expect(await isFuseMounted(mountDir)).toBe(false);

      const m = await mountVoldfs({ env: { ...vol.env, VOLDFS_PASSPHRASE_FILE: newFile }, mkfs: false, mountpoint: mountDir });
      cleanups.push(() => m.unmount());
      expect(sha(await readFile(join(m.dir, 'kept')))).toBe(sha(data));
      await m.unmount();
    },
    TEST_MS,
  );
});
