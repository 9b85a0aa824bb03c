import type { BackendDefinition } from '../backend.js';
import { MemoryStore } from './memory-store.js';

export { MemoryStore, MEMORY_DEFAULT_MAX_VALUE_BYTES, type MemoryStoreOptions } from './memory-store.js';
export { MemoryData } from './memory-data.js';
export { crashAfter, failCall, SimulatedCrash, type FaultHook, type OperationCall } from './faults.js';

/**
 * `VOLDFS_DB=mem`: an empty in-process store that lives as long as the process. For tests
 * and trying voldfs out; everything is lost at unmount.
 */
export const memoryBackend: BackendDefinition<Record<string, never>> = {
  name: 'mem',
  summary: 'in-process memory, lost when the process exits (tests, demos)',
  variables: [],
  parseOptions: () => ({}),
  create: async () => new MemoryStore(),
};
