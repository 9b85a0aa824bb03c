import { open } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Layout of the two meta pages at the start of an LMDB data file, as written by lmdb-js 3
 * (LMDB data format 2, 64-bit): a 24-byte page header, then the meta record.
 */
const META_MAGIC_OFFSET = 24;
const META_VERSION_OFFSET = 28;
const META_PAGE_SIZE_OFFSET = 48;
const META_LAST_PAGE_OFFSET = 144;
const META_TXNID_OFFSET = 152;
const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 2;
const MIN_PAGE = 512;
const MAX_PAGE = 65536;

/**
 * Refuses a `data.mdb` that is not a complete LMDB file of the format lmdb-js writes. lmdb-js
 * crashes the process (SIGSEGV/SIGBUS) on such a file instead of reporting MDB_INVALID, so the
 * check has to happen before opening. A missing or empty file is fine: LMDB initialises it.
 * @throws Error saying what is wrong with the file; the caller adds path and remedy.
 */
export async function checkDataFile(dir: string): Promise<void> {
  const file = join(dir, 'data.mdb');
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const { size } = await handle.stat();
    if (size === 0) return;
    const first = Buffer.alloc(META_TXNID_OFFSET + 8);
    await handle.read(first, 0, first.length, 0);
    const pageSize = first.readUInt32LE(META_PAGE_SIZE_OFFSET);
    if (first.readUInt32LE(META_MAGIC_OFFSET) !== MDB_MAGIC) {
      throw new Error(`${file} is not an LMDB data file`);
    }
    if (first.readUInt32LE(META_VERSION_OFFSET) !== MDB_DATA_VERSION) {
      throw new Error(`${file} is in an LMDB data format other than version ${MDB_DATA_VERSION}`);
    }
    if (pageSize < MIN_PAGE || pageSize > MAX_PAGE || (pageSize & (pageSize - 1)) !== 0 || size < 2 * pageSize) {
      throw new Error(`${file} is truncated or damaged (page size ${pageSize}, ${size} bytes)`);
    }
    const second = Buffer.alloc(first.length);
    await handle.read(second, 0, second.length, pageSize);
    const metas = [first, second].filter((m) => m.readUInt32LE(META_MAGIC_OFFSET) === MDB_MAGIC);
    // LMDB opens the meta page with the newer transaction id; its last page must exist.
    const newest = metas.reduce((a, b) => (b.readBigUInt64LE(META_TXNID_OFFSET) > a.readBigUInt64LE(META_TXNID_OFFSET) ? b : a));
    const needed = (Number(newest.readBigUInt64LE(META_LAST_PAGE_OFFSET)) + 1) * pageSize;
    if (size < needed) {
      throw new Error(`${file} is truncated: ${size} bytes where its last page ends at ${needed}`);
    }
  } finally {
    await handle.close();
  }
}
