// Ciphertext dumps of an encrypted volume: they load back whole with the volume's passphrase,
// hold none of its plaintext (names, contents, xattrs), and a changed byte, a dropped frame or a
// wrong passphrase is refused, the passphrase before anything is loaded.
import { PassThrough, Readable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/backends/errors.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { dumpVolume } from '../../../src/cli/dump/dump.js';
import { DumpFormatError, readFrames, SEALED_DUMP_MAGIC } from '../../../src/cli/dump/frames.js';
import { loadVolume } from '../../../src/cli/dump/load.js';
import { openDump } from '../../../src/cli/dump/open-dump.js';
import { newSealedDump } from '../../../src/cli/dump/sealing.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { ROOT_INO, S_IFDIR, S_IFREG, type InodeRecord } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';
import { WrongPassphrase, type CryptSettings } from '../../../src/translators/crypt/keyring.js';
import type { TranslatorSettings } from '../../../src/translators/stack.js';
import { CHEAP_KDF, PASSPHRASE } from '../translators/fixtures.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const noProgress = () => undefined;
const passphrase = async () => PASSPHRASE;
const KNOWN = Buffer.from('a line of a known file, which must not be found in a ciphertext dump\n'.repeat(3000));
const SECRET_NAME = 'quarterly-salaries.txt';
const SECRET_XATTR = Buffer.from('xattr value nobody may read');

const openEncrypted = async () =>
  new FileSystem(
    await Volume.open({ store: new MemoryStore(), log, prefix: 'v:', graceMs: 10, translators: { crypt: true }, passphrase, kdf: { kdf: CHEAP_KDF } }),
  );
const cryptOf = (fs: FileSystem): CryptSettings => (fs.volume.superblock.translators as TranslatorSettings).crypt!;

async function writeFile(fs: FileSystem, parent: number, name: string, pieces: [number, Buffer][]): Promise<number> {
  const ino = await fs.namespace.create(parent, name, S_IFREG | 0o640, root);
  const fh = await fs.files.open(ino, 2);
  for (const [offset, bytes] of pieces) await fs.files.write(fh, offset, bytes);
  await fs.files.release(fh);
  return ino;
}

async function sourceVolume(): Promise<FileSystem> {
  const fs = await openEncrypted();
  const dir = await fs.namespace.create(ROOT_INO, 'reports', S_IFDIR | 0o750, { uid: 3, gid: 4 });
  const file = await writeFile(fs, dir, SECRET_NAME, [[0, KNOWN]]);
  await fs.attributes.setxattr(file, 'user.note', SECRET_XATTR, 0);
  await fs.namespace.link(file, ROOT_INO, 'same-file');
  await fs.namespace.symlink(ROOT_INO, 'pointer', `reports/${SECRET_NAME}`, root);
  await writeFile(fs, ROOT_INO, 'sparse', [[2 << 20, Buffer.from('after a hole')]]);
  return fs;
}

async function dumpToBuffer(fs: FileSystem, sealed: boolean): Promise<Buffer> {
  const sink = new PassThrough();
  const parts: Buffer[] = [];
  sink.on('data', (b: Buffer) => parts.push(b));
  const seal = sealed ? await newSealedDump(cryptOf(fs), PASSPHRASE) : undefined;
  await dumpVolume(fs, sink, { name: 'v', translators: 'crypt' }, noProgress, seal);
  sink.end();
  return Buffer.concat(parts);
}

/** Where each frame of a dump starts and ends (its 4-byte length included), after the magic line. */
function frameSpans(dump: Buffer): [number, number][] {
  const spans: [number, number][] = [];
  for (let at = dump.indexOf(0x0a) + 1; at < dump.length; ) {
    const end = at + 4 + dump.readUInt32BE(at);
    spans.push([at, end]);
    at = end;
  }
  return spans;
}

/** Every file's contents, xattrs and attributes by path (ctime and parent are the load's own). */
async function describeTree(fs: FileSystem): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const walk = async (ino: number, path: string) => {
    const r: InodeRecord = await fs.attributes.stat(ino);
    let content: string | undefined;
    if ((r.mode & 0o170000) === S_IFREG) {
      const fh = await fs.files.open(ino, 0);
      const buf = Buffer.alloc(Number(r.size));
      await fs.files.read(fh, 0, Number(r.size), buf);
      await fs.files.release(fh);
      content = buf.toString('base64');
    }
    const kept: Partial<InodeRecord> = { ...r };
    delete kept.ctime;
    delete kept.parent;
    out[path] = { ...kept, content };
    if ((r.mode & 0o170000) === S_IFDIR) for (const [name, [child]] of await fs.readdir(ino)) await walk(child, `${path}/${name}`);
  };
  await walk(ROOT_INO, '');
  return out;
}

async function loadInto(dump: Buffer, pass: (() => Promise<string>) | undefined = passphrase): Promise<FileSystem> {
  const opened = await openDump(Readable.from([dump]), pass);
  expect(opened.sealed).toBe(true);
  const target = await openEncrypted();
  await loadVolume(target, opened.entries, noProgress);
  return target;
}

describe('a ciphertext dump', () => {
  it('loads back whole, with the same passphrase, into another encrypted volume', async () => {
    const fs = await sourceVolume();
    const dump = await dumpToBuffer(fs, true);
    expect(dump.subarray(0, SEALED_DUMP_MAGIC.length).toString()).toBe(SEALED_DUMP_MAGIC);
    const target = await loadInto(dump);
    expect(await describeTree(target)).toEqual(await describeTree(fs));
    // Another dump of the same volume has its own key: no frame repeats.
    const again = await dumpToBuffer(fs, true);
    expect(again.subarray(again.length - 64).equals(dump.subarray(dump.length - 64))).toBe(false);
    await Promise.all([fs.close(), target.close()]);
  });

  it('holds no plaintext of a known file: neither its bytes, its name, nor its xattr', async () => {
    const fs = await sourceVolume();
    const plain = await dumpToBuffer(fs, false);
    const sealed = await dumpToBuffer(fs, true);
    const needles = [KNOWN.subarray(0, 32), KNOWN.subarray(100_000, 100_016), Buffer.from(SECRET_NAME), SECRET_XATTR, Buffer.from('after a hole')];
    // The plaintext dump shows the search finds them when they are there.
    for (const needle of needles) expect(plain.includes(needle), needle.toString()).toBe(true);
    for (const needle of needles) expect(sealed.includes(needle), needle.toString()).toBe(false);
    // What travels: the wrapped key and its KDF settings, never a key or the passphrase.
    expect(sealed.includes(Buffer.from(PASSPHRASE))).toBe(false);
    expect(sealed.includes(Buffer.from(cryptOf(fs).wrappedKey))).toBe(true);
    await fs.close();
  });

  it('refuses a changed byte in any frame, a frame dropped, and a dump cut short', async () => {
    const fs = await sourceVolume();
    const dump = await dumpToBuffer(fs, true);
    const spans = frameSpans(dump);
    const attempt = async (bytes: Buffer) => {
      try {
        const target = await loadInto(bytes);
        await target.close();
        return 'loaded';
      } catch (err) {
        return err;
      }
    };
    // Every sealed frame (the header, spans[0], is checked by the key it must unwrap).
    for (const [start, end] of spans.slice(1)) {
      const changed = Buffer.from(dump);
      changed[start + 4 + Math.floor((end - start - 4) / 2)] ^= 0x01;
      const err = await attempt(changed);
      expect(err).toBeInstanceOf(DumpFormatError);
      expect(String(err)).toMatch(/the dump was altered or damaged: frame \d+ of the dump failed authentication/);
    }
    const [dropStart, dropEnd] = spans[3];
    expect(String(await attempt(Buffer.concat([dump.subarray(0, dropStart), dump.subarray(dropEnd)])))).toMatch(/frame 2 of the dump failed authentication/);
    expect(String(await attempt(dump.subarray(0, spans.at(-1)![0])))).toMatch(/cut short/);
    const header = Buffer.from(dump);
    header[spans[0][1] - 3] ^= 0x01; // in the dump id, the last field of the header
    expect(await attempt(header)).toBeInstanceOf(DumpFormatError);
    await fs.close();
  });

  it('is refused with a wrong passphrase or none, before any entry is read', async () => {
    const fs = await sourceVolume();
    const dump = await dumpToBuffer(fs, true);
    await expect(openDump(Readable.from([dump]), async () => 'not the passphrase')).rejects.toBeInstanceOf(WrongPassphrase);
    await expect(openDump(Readable.from([dump]), undefined)).rejects.toThrow(ConfigError);
    await expect(openDump(Readable.from([dump]), undefined)).rejects.toThrow(/this dump is ciphertext: give its volume's passphrase in VOLDFS_PASSPHRASE_FILE/);
    const noUnlock = readFrames(Readable.from([dump]));
    await expect(noUnlock.next()).rejects.toThrow(/this dump is ciphertext/);
    await fs.close();
  });
});
