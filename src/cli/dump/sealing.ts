import { randomBytes, type KeyObject } from 'node:crypto';
import { IntegrityError } from '../../backends/errors.js';
import { open, seal } from '../../translators/crypt/aead.js';
import { dumpKey, type CryptSettings } from '../../translators/crypt/keyring.js';
import { DumpFormatError } from './frames.js';

/**
 * The clear header of a ciphertext dump: what load needs, besides the passphrase, to open it.
 * The volume's crypt settings as its superblock keeps them (cipher, KDF and its cost, salt,
 * the master key wrapped under the passphrase, key check): never the passphrase or a key.
 */
export interface SealedHeader {
  readonly t: 'sealed';
  readonly crypt: CryptSettings;
  /** 16 random bytes: the salt of this dump's own key (keyring.ts dumpKey). */
  readonly dumpId: Buffer;
}

/** Seals or opens the frames of one ciphertext dump, in order. */
export interface FrameCipher {
  seal(body: Buffer, seq: number): Buffer;
  /** @throws DumpFormatError when frame `seq` does not authenticate (altered, reordered, from another dump) */
  open(body: Buffer, seq: number): Buffer;
}

const AAD_MAGIC = 'voldfs dump frame v1\0';

/** The header and cipher of a new ciphertext dump of the volume whose crypt settings are given. */
export async function newSealedDump(crypt: CryptSettings, passphrase: string): Promise<{ header: SealedHeader; cipher: FrameCipher }> {
  const header: SealedHeader = { t: 'sealed', crypt, dumpId: randomBytes(16) };
  return { header, cipher: frameCipher(await dumpKey(passphrase, crypt, header.dumpId)) };
}

/**
 * The cipher of an existing ciphertext dump.
 * @throws WrongPassphrase when the passphrase does not unlock the dump's volume key
 */
export async function openSealedDump(header: SealedHeader, passphrase: string): Promise<FrameCipher> {
  if (header?.t !== 'sealed' || !header.crypt || !(header.dumpId instanceof Uint8Array) || header.dumpId.length !== 16) {
    throw new DumpFormatError('the ciphertext dump has a malformed header (altered or damaged)');
  }
  return frameCipher(await dumpKey(passphrase, header.crypt, Buffer.from(header.dumpId)));
}

/** The sequence number is in the associated data: a frame dropped, repeated or moved fails. */
function frameCipher(key: KeyObject): FrameCipher {
  const aad = (seq: number) => {
    const bytes = Buffer.alloc(AAD_MAGIC.length + 8);
    bytes.write(AAD_MAGIC, 'latin1');
    bytes.writeBigUInt64BE(BigInt(seq), AAD_MAGIC.length);
    return bytes;
  };
  return {
    seal: (body, seq) => seal(key, body, aad(seq)),
    open(body, seq) {
      try {
        return open(key, body, aad(seq), `frame ${seq} of the dump`);
      } catch (err) {
        if (err instanceof IntegrityError) throw new DumpFormatError(`the dump was altered or damaged: ${err.message}`);
        throw err;
      }
    },
  };
}
