// Types for the part of @ronomon/crypto-async (a native addon without its own typings) we use.
declare module '@ronomon/crypto-async' {
  /** Message of the error a cipher call reports when an AEAD tag does not verify. */
  export const E_CORRUPT: string;
  /**
   * One whole AEAD encryption (`encrypt` 1: writes the tag) or decryption (0: checks it) of
   * `source` into `target` (the same bytes for in place), on libuv's threadpool; the callback
   * gets the bytes written.
   */
  export function cipher(
    algorithm: string,
    encrypt: 0 | 1,
    key: Buffer,
    keyOffset: number,
    keySize: number,
    iv: Buffer,
    ivOffset: number,
    ivSize: number,
    source: Buffer,
    sourceOffset: number,
    sourceSize: number,
    target: Buffer,
    targetOffset: number,
    aad: Buffer,
    aadOffset: number,
    aadSize: number,
    tag: Buffer,
    tagOffset: number,
    tagSize: number,
    callback: (error: Error | undefined, targetSize: number) => void,
  ): void;
}
