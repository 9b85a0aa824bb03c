import calculateSlot from 'cluster-key-slot';

/** Redis Cluster key slots: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384. */
export const SLOT_COUNT = 16384;

/** Slot of a key, in `[0, 16384)`, by cluster-key-slot (the module ioredis routes commands with). */
export function keySlot(key: string): number {
  return calculateSlot(key);
}
