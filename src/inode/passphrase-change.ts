import type { KvStore } from '../backends/kv-store.js';
import { ConfigError } from '../backends/errors.js';
import { transact } from '../cas/transaction.js';
import { decodeRecord, encodeRecord } from '../chunk/record-codec.js';
import { rewrapKeyring } from '../translators/crypt/keyring.js';
import type { TranslatorSettings } from '../translators/stack.js';
import { VolumeKeys } from './keys.js';
import type { SuperblockRecord } from './records.js';

/**
 * Re-wraps an encrypted volume's master key under a new passphrase: one CAS on the superblock,
 * nothing else changes, so mounts keep working and the old passphrase stops working.
 * @throws WrongPassphrase for a wrong current passphrase; ConfigError for a plain volume
 */
export async function changePassphrase(store: KvStore, prefix: string, current: string, next: string): Promise<void> {
  const keys = new VolumeKeys(prefix);
  await transact(store, undefined, async (tx) => {
    const bytes = await tx.read(keys.superblock());
    if (!bytes) throw new ConfigError(`no volume under "${prefix}"`);
    const sb = decodeRecord<SuperblockRecord>(keys.superblock(), bytes);
    const settings = sb.translators as TranslatorSettings;
    if (!settings.crypt) throw new ConfigError('this volume is not encrypted: it has no passphrase to change');
    const crypt = await rewrapKeyring(current, next, settings.crypt);
    tx.write(keys.superblock(), encodeRecord({ ...sb, translators: { ...settings, crypt } }));
  });
}
