/**
 * A voldfs volume mounted by the test process itself, with its metadata and its blocks on two
 * different stores: the product's `voldfs mount` opens one store for both, so a pool that
 * loses servers loses metadata records too (they are not erasure-coded). Mounting here lets
 * the erasure tests keep metadata on a healthy store and lose block servers only.
 *
 * The filesystem is served by this very process: everything that touches the mount must run
 * in a child process (cp, sha256sum, ...), never through this process's fs calls, or the
 * thread that would answer the kernel is the one waiting for the answer.
 */
import { pino } from 'pino';
import type { KvStore } from '../../../src/backends/kv-store.js';
import { withAtomicCommit } from '../../../src/cas/intent-store.js';
import { FuseMount } from '../../../src/fs/fuse-mount.js';
import { FileSystem } from '../../../src/inode/filesystem.js';
import { Volume } from '../../../src/inode/volume.js';
import type { KdfSettings } from '../../../src/translators/crypt/keyring.js';
import type { TranslatorRequest } from '../../../src/translators/request.js';
import { isFuseMounted } from '../../helpers/mountinfo.js';
import { run } from '../../helpers/run.js';

export interface SplitMountOptions {
  /** Mount point (an existing empty directory). */
  readonly dir: string;
  /** Opens the store of metadata records (wrapped in intent commits when it has no commit). */
  openMeta(): Promise<KvStore>;
  /** Opens the store of blocks. */
  openData(): Promise<KvStore>;
  /** Translators of a new volume; checked against an existing one. */
  readonly translators: TranslatorRequest;
  readonly passphrase?: string;
  /** KDF of a new volume's keyring (tests use a cheap one). */
  readonly kdf?: KdfSettings;
  /** Grace period before retired blocks are deleted, ms. Default 1 hour: none during a test. */
  readonly graceMs?: number;
}

export interface SplitMount {
  readonly dir: string;
  readonly volume: Volume;
  /** Unmounts, flushes and closes both stores. Safe to call twice. */
  unmount(): Promise<void>;
}

const PREFIX = 'voldfs:';

/** The volume's key prefix in both stores. */
export const SPLIT_PREFIX = PREFIX;

/** Opens (formatting an empty store) and mounts the volume at `opts.dir`. */
export async function mountSplitVolume(opts: SplitMountOptions): Promise<SplitMount> {
  const log = pino({ level: 'silent' });
  const stores: KvStore[] = [];
  const closeStores = async (): Promise<void> => {
    for (const s of stores.splice(0)) await s.close();
  };
  let volume: Volume;
  let fs: FileSystem;
  let mount: FuseMount;
  try {
    const meta = await opts.openMeta();
    stores.push(meta);
    const data = await opts.openData();
    stores.push(data);
    const pass = opts.passphrase;
    volume = await Volume.open({
      store: withAtomicCommit(meta, { log }),
      dataStore: data,
      prefix: PREFIX,
      log,
      translators: opts.translators,
      passphrase: pass === undefined ? undefined : async () => pass,
      kdf: opts.kdf === undefined ? undefined : { kdf: opts.kdf },
      graceMs: opts.graceMs ?? 3_600_000,
      cacheTtlMs: 1000,
    });
    fs = new FileSystem(volume);
    mount = new FuseMount(opts.dir, fs, log, { cacheSeconds: 1, allowOther: false, debug: false });
    await mount.mount();
  } catch (err) {
    await closeStores();
    throw err;
  }
  let done = false;
  return {
    dir: opts.dir,
    volume,
    unmount: async () => {
      if (done) return;
      done = true;
      try {
        if (await isFuseMounted(opts.dir)) await mount.unmount();
      } finally {
        // The last resort: never leave a mount behind a failed test.
        if (await isFuseMounted(opts.dir)) await run('fusermount', ['-uz', opts.dir], { timeoutMs: 15_000 });
        await fs.close();
        await closeStores();
      }
    },
  };
}
