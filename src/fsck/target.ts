import type { KvStore } from '../backends/kv-store.js';
import { IntegrityError } from '../backends/errors.js';
import { IntentCommitStore } from '../cas/intent-store.js';
import type { ReplicatedStore } from '../backends/wrappers/replicated-store.js';
import { decodeRecord } from '../chunk/record-codec.js';
import type { BlockStore } from '../translators/block-store.js';
import { VolumeKeys } from '../inode/keys.js';
import { ROOT_INO, type SuperblockRecord } from '../inode/records.js';
import { VOLUME_FORMAT, VolumeNotFormatted, unlock, type VolumeStores } from '../inode/volume.js';
import type { ProblemList } from './problems.js';

/** The volume as fsck sees it. */
export interface FsckTarget {
  readonly keys: VolumeKeys;
  /** Metadata records as the volume reads them (decrypted when the volume is encrypted). */
  readonly meta: KvStore;
  /** The store holding the blocks' raw records, scanned for unreferenced ones. */
  readonly data: KvStore;
  /** Undefined when the superblock is missing: no data checks are possible then. */
  readonly superblock?: SuperblockRecord;
  readonly blocks?: BlockStore;
  /** The intent layer over the metadata store, when the store has no native commit. */
  readonly intents?: IntentCommitStore;
  /** The layer keeping metadata copies on several domains, when the store has several. */
  readonly replication?: ReplicatedStore;
}

/**
 * Opens the volume for checking. A missing superblock is recorded as damage and the target
 * comes back without one (a metadata-only check of what is left); a wrong format is recorded
 * and the check stops there (undefined), since this voldfs cannot read that volume's records.
 * @throws VolumeNotFormatted when the prefix holds no volume at all; ConfigError /
 *   WrongPassphrase from unlocking an encrypted volume
 */
export async function openTarget(stores: VolumeStores, problems: ProblemList): Promise<FsckTarget | undefined> {
  const keys = new VolumeKeys(stores.prefix);
  const data = stores.dataStore ?? stores.store;
  const intents = stores.store instanceof IntentCommitStore ? stores.store : undefined;
  const found = await stores.store.get(keys.superblock());
  if (!found) {
    if (!(await stores.store.get(keys.inode(ROOT_INO)))) {
      throw new VolumeNotFormatted(`no volume under "${stores.prefix}": nothing to check (voldfs mkfs makes one)`);
    }
    problems.add({
      kind: 'superblock-missing',
      key: keys.superblock(),
      what:
        'the superblock is missing: the store lost records (a memcached restarted or evicted). Chunk size and ' +
        'translators are unknown, so file data cannot be checked and nothing is repaired; the names are checked below',
    });
    return { keys, meta: stores.store, data, intents };
  }
  let superblock: SuperblockRecord;
  try {
    superblock = decodeRecord<SuperblockRecord>(keys.superblock(), found.value);
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    problems.add({ kind: 'superblock-format', key: keys.superblock(), what: `the superblock cannot be read: ${err.message}` });
    return undefined;
  }
  if (superblock.format !== VOLUME_FORMAT) {
    problems.add({
      kind: 'superblock-format',
      key: keys.superblock(),
      what: `the volume has format ${superblock.format}; this voldfs checks format ${VOLUME_FORMAT}: use a matching voldfs`,
    });
    return undefined;
  }
  // fsck is what a volume that lost data is opened with: no refusal here.
  const opened = await unlock(stores, false);
  if (!opened) throw new VolumeNotFormatted(`the superblock under "${stores.prefix}" vanished while opening it`);
  return { keys, meta: opened.meta, data, superblock: opened.superblock, blocks: opened.blocks, intents, replication: stores.replication };
}
