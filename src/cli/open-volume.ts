import { FileSystem } from '../inode/filesystem.js';
import type { CryptSettings } from '../translators/crypt/keyring.js';
import type { TranslatorSettings } from '../translators/stack.js';
import { Volume } from '../inode/volume.js';
import type { Config } from './config.js';
import { makeLogger } from './logger.js';
import { openStore, type OpenedStore } from './open-store.js';
import { passphraseSource } from './passphrase.js';

/** A volume opened by a command (dump, load, status), as a mount opens it but without FUSE. */
export interface OpenedVolume {
  readonly fs: FileSystem;
  readonly store: OpenedStore;
  /** Its translators as the superblock records them, e.g. `crypt,erasure` or `none`. */
  readonly translators: string;
  /** An encrypted volume's crypt settings (wrapped key, KDF): what a ciphertext dump carries. */
  readonly crypt?: CryptSettings;
  close(): Promise<void>;
}

export interface OpenVolumeOptions {
  /** Where the passphrase comes from; default the environment's (passphrase.ts). */
  readonly passphrase?: () => Promise<string>;
  /** Format an empty store as a new volume (default true), or refuse with VolumeNotFormatted. */
  readonly formatIfEmpty?: boolean;
}

/** Opens the volume `config` names; a command's log stays quiet below warnings. */
export async function openVolume(config: Config, options: OpenVolumeOptions = {}): Promise<OpenedVolume> {
  const store = await openStore(config);
  try {
    const volume = await Volume.open(
      {
        store: store.meta,
        dataStore: store.data,
        replication: store.replication,
        log: makeLogger(config.logLevel === 'info' ? 'warn' : config.logLevel),
        prefix: `${config.volume}:`,
        translators: config.translators,
        passphrase: options.passphrase ?? passphraseSource(process.env),
      },
      options.formatIfEmpty ?? true,
    );
    const fs = new FileSystem(volume, async () => {
      await store.data.sync?.();
    });
    return {
      fs,
      store,
      translators: Object.keys(volume.superblock.translators).join(',') || 'none',
      crypt: (volume.superblock.translators as TranslatorSettings).crypt,
      close: async () => {
        await fs.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
