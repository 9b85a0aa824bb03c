declare module 'cluster-key-slot' {
  /** The Redis Cluster slot of a key (its hash tag's, when it has one), in [0, 16384). */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
