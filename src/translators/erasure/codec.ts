import { ConfigError } from '../../backends/errors.js';
import { requireNativeAddon } from '../native-addon.js';

/**
 * Systematic Reed-Solomon codecs, named by id in the superblock because two libraries' parity
 * bytes differ: a volume is read with the codec it was written with.
 *
 * The one codec is @ronomon/reed-solomon 6.x (Cauchy bit-matrix over GF(2^w), native, runs in
 * the libuv threadpool), chosen over a WASM build on the main thread for speed and for keeping
 * the event loop free (figures in docs/performance.md, "Figures behind choices in the code").
 *
 * It is a node-gyp addon: when the package manager skips install scripts, build it with
 * `(cd node_modules/@ronomon/reed-solomon && npx node-gyp rebuild --nodedir=/usr)`.
 */

/** Codec id of @ronomon/reed-solomon 6.x. */
export const RONOMON_CODEC_ID = 'ronomon-rs6';

export interface ErasureCodec {
  readonly id: string;
  /** Data fragments. */
  readonly k: number;
  /** Parity fragments. */
  readonly m: number;
  /** Fragment sizes must be a positive multiple of this many bytes. */
  readonly alignment: number;
  /**
   * Computes the fragments in `targets` (index i < k: data fragment i of `data`; i >= k: parity
   * fragment i - k of `parity`) from those in `sources`. `data` holds k fragments and `parity`
   * m fragments of `fragmentBytes` each, back to back. Encoding parity is
   * `run(data, parity, [0..k-1], [k..k+m-1])`. At least k sources, at most m targets.
   */
  run(data: Buffer, parity: Buffer, sources: readonly number[], targets: readonly number[]): Promise<void>;
}

/** Largest k and m the codecs accept. */
export const MAX_DATA_FRAGMENTS = 24;
export const MAX_PARITY_FRAGMENTS = 6;

/**
 * @throws ConfigError for an unknown codec id, k or m out of range, or a codec whose native
 *   addon is not built (the message says how to build it)
 */
export function createCodec(id: string, k: number, m: number): ErasureCodec {
  if (id !== RONOMON_CODEC_ID) {
    throw new ConfigError(`unknown erasure codec ${JSON.stringify(id)}: this voldfs knows ${RONOMON_CODEC_ID}`);
  }
  if (!Number.isInteger(k) || k < 1 || k > MAX_DATA_FRAGMENTS) {
    throw new ConfigError(`erasure k (data fragments) must be 1..${MAX_DATA_FRAGMENTS}, not ${k}`);
  }
  if (!Number.isInteger(m) || m < 1 || m > MAX_PARITY_FRAGMENTS) {
    throw new ConfigError(`erasure m (parity fragments) must be 1..${MAX_PARITY_FRAGMENTS}, not ${m}`);
  }
  const rs = loadRonomon();
  const context = rs.create(k, m);
  return {
    id,
    k,
    m,
    alignment: 8,
    run: (data, parity, sources, targets) =>
      new Promise<void>((resolve, reject) => {
        rs.encode(context, mask(sources), mask(targets), data, 0, data.length, parity, 0, parity.length, (err) =>
          err ? reject(err) : resolve(),
        );
      }),
  };
}

function mask(indices: readonly number[]): number {
  return indices.reduce((bits, i) => bits | (1 << i), 0);
}

function loadRonomon(): typeof import('@ronomon/reed-solomon') {
  return requireNativeAddon<typeof import('@ronomon/reed-solomon')>('@ronomon/reed-solomon', `erasure codec ${RONOMON_CODEC_ID}`);
}
