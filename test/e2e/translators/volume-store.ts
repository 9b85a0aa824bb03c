/**
 * Direct access to the store behind a voldfs volume, for tests that look at (or damage) what
 * the translators wrote: opened from the same VOLDFS_* variables the CLI got, through the
 * product's own openStore, so metadata goes through the intent layer where the CLI's does.
 * Open it only while the volume is unmounted (or for reads), and close it after.
 */
import { parseConfig } from '../../../src/cli/config.js';
import { openStore, type OpenedStore } from '../../../src/cli/open-store.js';
import { decodeRecord } from '../../../src/chunk/record-codec.js';
import type { KvStore } from '../../../src/backends/kv-store.js';
import { VolumeKeys } from '../../../src/inode/keys.js';
import type { SuperblockRecord } from '../../../src/inode/records.js';
import { unlock, type OpenedVolume } from '../../../src/inode/volume.js';
import type { TranslatorSettings } from '../../../src/translators/stack.js';

export interface VolumeStore {
  readonly opened: OpenedStore;
  readonly keys: VolumeKeys;
  /** The superblock, read in clear. */
  superblock(): Promise<SuperblockRecord>;
  /** The volume with its translators applied (the passphrase from `env`). */
  unlock(): Promise<OpenedVolume>;
  /** Every record of the store (not only this volume's) below the metadata layer: key -> value. */
  dump(prefix?: string): Promise<Map<string, Buffer>>;
  /** Keys of the volume's block records (fragments for erasure). */
  blockKeys(): Promise<string[]>;
  close(): Promise<void>;
}

/** Opens the store `env` names (VOLDFS_DB, VOLDFS_VOLUME, ...), as the CLI would. */
export async function openVolumeStore(env: NodeJS.ProcessEnv): Promise<VolumeStore> {
  const config = parseConfig(env);
  const opened = await openStore(config);
  const keys = new VolumeKeys(`${config.volume}:`);
  const scanAll = async (store: KvStore, prefix: string): Promise<string[]> => {
    if (!store.scan) throw new Error(`store ${store.name} cannot list its keys`);
    const out: string[] = [];
    for await (const key of store.scan(prefix)) out.push(key);
    return out.sort();
  };
  return {
    opened,
    keys,
    superblock: async () => {
      const found = await opened.meta.get(keys.superblock());
      if (!found) throw new Error(`no superblock under ${keys.prefix}`);
      return decodeRecord<SuperblockRecord>(keys.superblock(), found.value);
    },
    unlock: async () => {
      const pass = env.VOLDFS_PASSPHRASE;
      const volume = await unlock({
        store: opened.meta,
        dataStore: opened.data,
        replication: opened.replication,
        prefix: keys.prefix,
        passphrase: pass === undefined ? undefined : async () => pass,
      });
      if (!volume) throw new Error(`no volume under ${keys.prefix}`);
      return volume;
    },
    dump: async (prefix = '') => {
      const all = await scanAll(opened.data, prefix);
      const values = await opened.data.getMany(all);
      const out = new Map<string, Buffer>();
      all.forEach((key, i) => {
        const v = values[i];
        if (v) out.set(key, v.value);
      });
      return out;
    },
    blockKeys: () => scanAll(opened.data, keys.blockPrefix()),
    close: () => opened.close(),
  };
}

/** The translators a superblock records, as `crypt,erasure:4+2` (or `none`). */
export function describeRecorded(superblock: SuperblockRecord): string {
  const t = superblock.translators as TranslatorSettings;
  const parts = [t.crypt ? 'crypt' : '', t.erasure ? `erasure:${t.erasure.k}+${t.erasure.m}` : ''];
  return parts.filter(Boolean).join(',') || 'none';
}
