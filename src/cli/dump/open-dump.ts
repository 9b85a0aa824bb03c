import type { Readable } from 'node:stream';
import { ConfigError } from '../../backends/errors.js';
import { DumpFormatError, readFrames, type DumpEntry } from './frames.js';
import { openSealedDump } from './sealing.js';

type VolumeEntry = Extract<DumpEntry, { t: 'volume' }>;

/** A dump whose first entry has been read: a ciphertext dump is unlocked by then. */
export interface OpenedDump {
  /** Whether the dump is ciphertext (of an encrypted volume). */
  readonly sealed: boolean;
  /** The dump's first entry: volume name, translators, what it holds. */
  readonly volume: VolumeEntry;
  /** Every entry, the first included, for loadVolume. */
  readonly entries: AsyncIterable<DumpEntry>;
}

/**
 * Reads a dump's first entry, unlocking a ciphertext dump with `passphrase`, so that a wrong
 * passphrase or a stream that is not a dump is told before the target volume is touched.
 * @throws WrongPassphrase; ConfigError when a ciphertext dump comes without a passphrase;
 *   DumpFormatError
 */
export async function openDump(input: Readable, passphrase: (() => Promise<string>) | undefined): Promise<OpenedDump> {
  let sealed = false;
  const frames = readFrames(input, async (header) => {
    sealed = true;
    if (!passphrase) {
      throw new ConfigError(
        "this dump is ciphertext: give its volume's passphrase in VOLDFS_PASSPHRASE_FILE (a file holding it), or run from a terminal to be asked",
      );
    }
    return openSealedDump(header, await passphrase());
  });
  const first = await frames.next();
  if (first.done || first.value.t !== 'volume') throw new DumpFormatError('the dump does not begin with its volume entry');
  const volume = first.value;
  async function* all(): AsyncGenerator<DumpEntry> {
    yield volume;
    yield* frames;
  }
  return { sealed, volume, entries: all() };
}
