import { PassThrough, Readable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { dumpVolume } from '../../../src/cli/dump/dump.js';
import { ExtentHash } from '../../../src/cli/dump/extents.js';
import { DumpFormatError, readFrames } from '../../../src/cli/dump/frames.js';
import { LoadRefused, loadVolume } from '../../../src/cli/dump/load.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { ROOT_INO, S_IFDIR, S_IFIFO, S_IFREG, type InodeRecord } from '../../../src/inode/records.js';
import { Volume } from '../../../src/inode/volume.js';

const log = pino({ level: 'silent' });
const root = { uid: 0, gid: 0 };
const noProgress = () => undefined;

const open = async () => new FileSystem(await Volume.open({ store: new MemoryStore(), log, prefix: 'v:', graceMs: 10 }));

async function writeFile(fs: FileSystem, parent: number, name: string, pieces: [number, Buffer][], mode = 0o644): Promise<number> {
  const ino = await fs.namespace.create(parent, name, S_IFREG | mode, root);
  const fh = await fs.files.open(ino, 2);
  for (const [offset, bytes] of pieces) await fs.files.write(fh, offset, bytes);
  await fs.files.release(fh);
  return ino;
}

/** Everything a dump must carry, by path: attributes, xattrs, link groups, and contents. */
async function describeTree(fs: FileSystem): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const walk = async (ino: number, path: string) => {
    const r: InodeRecord = await fs.attributes.stat(ino);
    let content: string | undefined;
    if ((r.mode & 0o170000) === S_IFREG && r.size < 1 << 24) {
      const fh = await fs.files.open(ino, 0);
      const buf = Buffer.alloc(Number(r.size));
      await fs.files.read(fh, 0, buf.length, buf);
      await fs.files.release(fh);
      content = buf.toString('base64');
    }
    // ctime is the load's own time, and parent an inode number of its own volume.
    const kept: Partial<InodeRecord> = { ...r };
    delete kept.ctime;
    delete kept.parent;
    out[path] = { ...kept, content, xattrs: Object.fromEntries(Object.entries(r.xattrs ?? {}).map(([k, v]) => [k, v.toString('hex')])) };
    if ((r.mode & 0o170000) === S_IFDIR) for (const [name, [child]] of await fs.readdir(ino)) await walk(child, `${path}/${name}`);
  };
  await walk(ROOT_INO, '');
  return out;
}

async function dumpToBuffer(fs: FileSystem): Promise<Buffer> {
  const sink = new PassThrough();
  const parts: Buffer[] = [];
  sink.on('data', (b: Buffer) => parts.push(b));
  await dumpVolume(fs, sink, { name: 'v', translators: 'none' }, noProgress);
  sink.end();
  return Buffer.concat(parts);
}

describe('dump and load', () => {
  it('carry a tree whole: modes, owners, times, xattrs, hard links, symlinks, FIFOs, empty and sparse files', async () => {
    const fs = await open();
    const dir = await fs.namespace.create(ROOT_INO, 'dir', S_IFDIR | 0o2750, { uid: 7, gid: 8 });
    const file = await writeFile(fs, dir, 'data', [[0, Buffer.from('hello world')]], 0o4755);
    await fs.namespace.link(file, ROOT_INO, 'second-name');
    await fs.attributes.setxattr(file, 'user.tag', Buffer.from([0, 1, 2, 255]), 0);
    await fs.attributes.chown(file, 1000, 1001);
    await fs.namespace.symlink(dir, 'link', '../second-name', { uid: 5, gid: 6 });
    await fs.namespace.create(ROOT_INO, 'fifo', S_IFIFO | 0o600, root);
    await writeFile(fs, ROOT_INO, 'empty', []);
    const sparse = await writeFile(fs, ROOT_INO, 'sparse', [[3 << 20, Buffer.from('middle')]]);
    await fs.attributes.truncate(sparse, 5 << 20);
    await fs.attributes.utimens(dir, { sec: 1_000_000_000, nsec: 123_456_789 }, { sec: 946_684_800, nsec: 1 });

    const dump = await dumpToBuffer(fs);
    const target = await open();
    const done = await loadVolume(target, readFrames(Readable.from([dump])), noProgress);
    expect(done.entries).toBe(8);
    expect(await describeTree(target)).toEqual(await describeTree(fs));
    // Holes stay holes: the dump holds the 6 bytes of the sparse file, not 5 MiB.
    expect(dump.length).toBeLessThan(1 << 20);
    await fs.close();
    await target.close();
  });

  it('carry a sparse file of 2^63 - 1 bytes exactly, in a few frames', async () => {
    const last = 2n ** 63n - 1n;
    const fs = await open();
    const ino = await writeFile(fs, ROOT_INO, 'huge', [[0, Buffer.from('head')]]);
    await fs.attributes.truncate(ino, last);
    const fh = await fs.files.open(ino, 2);
    await fs.files.write(fh, last - 4n, Buffer.from('tail'));
    await fs.files.release(fh);
    const dump = await dumpToBuffer(fs);
    expect(dump.length).toBeLessThan(1 << 20);
    const target = await open();
    await loadVolume(target, readFrames(Readable.from([dump])), noProgress);
    const [[, [loaded]]] = await target.readdir(ROOT_INO);
    expect((await target.attributes.stat(loaded)).size).toBe(last);
    const tail = Buffer.alloc(4);
    const reader = await target.files.open(loaded, 0);
    await target.files.read(reader, last - 4n, 4, tail);
    await target.files.release(reader);
    expect(tail.toString()).toBe('tail');
    await fs.close();
    await target.close();
  });

  it('refuse a volume that has files, a stream that is not a dump, cut short or altered', async () => {
    const fs = await open();
    await writeFile(fs, ROOT_INO, 'f', [[0, Buffer.from('x'.repeat(5000))]]);
    const dump = await dumpToBuffer(fs);
    await expect(loadVolume(fs, readFrames(Readable.from([dump])), noProgress)).rejects.toBeInstanceOf(LoadRefused);
    const attempt = async (bytes: Buffer) => {
      const target = await open();
      try {
        return await loadVolume(target, readFrames(Readable.from([bytes])), noProgress).then(() => 'loaded', (err: unknown) => err);
      } finally {
        await target.close();
      }
    };
    expect(String(await attempt(Buffer.from('not a dump at all')))).toMatch(/this is not a voldfs dump/);
    expect(String(await attempt(dump.subarray(0, dump.length - 10)))).toMatch(/cut short/);
    const altered = Buffer.from(dump);
    altered[altered.indexOf('xxxx')] = 'y'.charCodeAt(0);
    const err = await attempt(altered);
    expect(err).toBeInstanceOf(DumpFormatError);
    expect(String(err)).toMatch(/does not match its checksum|altered/);
    await fs.close();
  });
});

describe('the checksum of a file in a dump', () => {
  it('is the same however the data is cut into pieces, and holes count as zeros', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 20_000 }), fc.array(fc.nat({ max: 20_000 }), { maxLength: 8 }), fc.nat({ max: 5000 }), (bytes, cuts, start) => {
        const data = Buffer.from(bytes);
        const whole = new ExtentHash(start + data.length + 7);
        whole.add(start, data);
        const pieces = new ExtentHash(start + data.length + 7);
        const points = [...new Set([0, ...cuts.map((c) => c % data.length), data.length])].sort((a, b) => a - b);
        for (let i = 0; i + 1 < points.length; i++) {
          const piece = data.subarray(points[i], points[i + 1]);
          // A piece of zeros may as well be a hole: leave every other one out.
          if (i % 2 === 1 && piece.every((b) => b === 0)) continue;
          pieces.add(start + points[i], piece);
        }
        expect(pieces.digest()).toBe(whole.digest());
      }),
    );
    const a = new ExtentHash(10);
    a.add(0, Buffer.from('abc'));
    const b = new ExtentHash(10);
    b.add(0, Buffer.from('abd'));
    expect(a.digest()).not.toBe(b.digest());
  });
});
