import { createHash, type Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { Packr } from 'msgpackr';
import type { ByteOffset } from '../../chunk/byte-offset.js';
import type { Timespec } from '../../inode/timespec.js';
import type { FrameCipher, SealedHeader } from './sealing.js';

/**
 * The dump format: the magic line, then frames of a 4-byte big-endian length and a MessagePack
 * entry, the last one a trailer with counts and a SHA-256 of every frame before it (so a cut
 * or altered stream is found). Directories come before what they hold; a file's data follows
 * its entry as `data` frames (only the extents that hold data: holes stay holes) and ends with
 * `end`, carrying the SHA-256 of its extents.
 *
 * A ciphertext dump (of an encrypted volume) starts with its own magic line and a clear header
 * frame (sealing.ts: the volume's wrapped key and KDF settings), then the same frames, each
 * body sealed with AES-256-GCM under a key only the volume's passphrase unlocks.
 */
export const DUMP_MAGIC = 'voldfs-dump 1\n';
export const SEALED_DUMP_MAGIC = 'voldfs-dump 1 ciphertext\n';

interface Common {
  readonly id: number;
  /** The directory's id; absent only for the root. */
  readonly parent?: number;
  readonly name: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly atime: Timespec;
  readonly mtime: Timespec;
  readonly xattrs?: Record<string, Buffer>;
}

export type DumpEntry =
  | { readonly t: 'volume'; readonly name: string; readonly translators: string; readonly entries: number; readonly bytes: number }
  | ({ readonly t: 'dir' } & Common)
  | ({ readonly t: 'file'; readonly size: ByteOffset } & Common)
  | ({ readonly t: 'symlink'; readonly target: string } & Common)
  | ({ readonly t: 'node'; readonly rdev: number } & Common)
  | { readonly t: 'link'; readonly of: number; readonly parent: number; readonly name: string }
  | { readonly t: 'data'; readonly offset: ByteOffset; readonly bytes: Buffer }
  | { readonly t: 'end'; readonly sha256: string }
  | { readonly t: 'trailer'; readonly entries: number; readonly bytes: number; readonly sha256: string };

// Sizes and offsets past 2^53 - 1 are bigints, the only values written as 64-bit integers.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });

export class DumpFormatError extends Error {}

/**
 * Writes frames to a stream, waiting when it is full, and keeps the running checksum; with
 * `sealed`, a ciphertext dump.
 */
export class FrameWriter {
  private readonly hash: Hash = createHash('sha256');
  private seq = 0;

  constructor(
    private readonly out: Writable,
    private readonly sealed?: { readonly header: SealedHeader; readonly cipher: FrameCipher },
  ) {}

  async start(): Promise<void> {
    if (!this.sealed) return this.raw(Buffer.from(DUMP_MAGIC));
    await this.raw(Buffer.from(SEALED_DUMP_MAGIC));
    await this.raw(frameOf(packr.pack(this.sealed.header)));
  }

  async write(entry: DumpEntry): Promise<void> {
    const packed = packr.pack(entry);
    const body = this.sealed ? this.sealed.cipher.seal(packed, this.seq++) : packed;
    const frame = frameOf(body);
    this.hash.update(frame);
    await this.raw(frame);
  }

  async finish(entries: number, bytes: number): Promise<void> {
    await this.write({ t: 'trailer', entries, bytes, sha256: this.hash.copy().digest('hex') });
  }

  private async raw(bytes: Buffer): Promise<void> {
    if (!this.out.write(bytes)) {
      await new Promise<void>((resolve, reject) => {
        const fail = (err: Error) => reject(err);
        this.out.once('error', fail);
        this.out.once('drain', () => {
          this.out.off('error', fail);
          resolve();
        });
      });
    }
  }
}

function frameOf(body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/**
 * Opens a ciphertext dump from its header; it throws (WrongPassphrase, ConfigError) when it
 * cannot, before any entry is read.
 */
export type DumpUnlocker = (header: SealedHeader) => Promise<FrameCipher>;

/**
 * The entries of a dump stream, checked: the magic, whole frames, and a trailer whose checksum
 * matches the frames before it. A ciphertext dump is opened with `unlock`, and every frame
 * must authenticate.
 * @throws DumpFormatError saying what is wrong (not a dump, cut short, altered, ciphertext
 *   without `unlock`); whatever `unlock` throws
 */
export async function* readFrames(input: Readable, unlock?: DumpUnlocker): AsyncGenerator<DumpEntry> {
  const hash = createHash('sha256');
  let pending: Buffer = Buffer.alloc(0);
  let magicSeen = false;
  let sealed = false;
  let cipher: FrameCipher | undefined;
  let seq = 0;
  let trailer = false;
  for await (const chunk of input) {
    pending = pending.length === 0 ? (chunk as Buffer) : Buffer.concat([pending, chunk as Buffer]);
    if (!magicSeen) {
      const line = pending.subarray(0, 64).indexOf(0x0a);
      if (line < 0 && pending.length < 64) continue;
      const magic = pending.subarray(0, line + 1).toString('latin1');
      if (magic !== DUMP_MAGIC && magic !== SEALED_DUMP_MAGIC) {
        throw new DumpFormatError('this is not a voldfs dump (it does not start with "voldfs-dump 1")');
      }
      sealed = magic === SEALED_DUMP_MAGIC;
      pending = pending.subarray(magic.length);
      magicSeen = true;
    }
    while (pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (pending.length < 4 + length) break;
      const frame = pending.subarray(0, 4 + length);
      pending = pending.subarray(4 + length);
      if (trailer) throw new DumpFormatError('the dump goes on after its trailer');
      if (sealed && !cipher) {
        if (!unlock) throw new DumpFormatError('this dump is ciphertext: it loads only with its volume\'s passphrase');
        cipher = await unlock(packr.unpack(frame.subarray(4)) as SealedHeader);
        continue;
      }
      const body = cipher ? cipher.open(frame.subarray(4), seq++) : frame.subarray(4);
      const entry = packr.unpack(body) as DumpEntry;
      if (entry.t === 'trailer') {
        if (entry.sha256 !== hash.copy().digest('hex')) throw new DumpFormatError('the dump was altered: its checksum does not match its contents');
        trailer = true;
      } else {
        hash.update(frame);
      }
      yield entry;
    }
  }
  if (!magicSeen) throw new DumpFormatError('this is not a voldfs dump (it is empty or too short)');
  if (!trailer || pending.length > 0) throw new DumpFormatError('the dump is cut short: it has no trailer (was the dump interrupted?)');
}
