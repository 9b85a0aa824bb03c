// A 1 GiB file written with dd (1 MiB writes, fsync) on a fresh LMDB mount reads back identical
// after the kernel's caches are dropped: past the block cache's size, evicted block buffers are
// recycled while later chunks of the same index groups are still committing (their commits
// conflict on the shared index record and retry). Needs `npm run build`; root (drop_caches).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useVoldfsMount } from '../helpers/mount-hooks.js';
import { run } from '../helpers/run.js';
import { makeTempDir } from '../helpers/temp-dir.js';

const MIB = 1024 * 1024;

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe.skipIf(process.getuid?.() !== 0)('a big file', () => {
  const mount = useVoldfsMount();
  it('of 1 GiB written with dd bs=1M conv=fsync reads back identical', async () => {
    const source = join(await makeTempDir('big-source'), 'random');
    const dd = await run('dd', ['if=/dev/urandom', `of=${source}`, 'bs=1M', 'count=1024', 'status=none'], { timeoutMs: 120_000 });
    expect(dd.code, dd.stderr).toBe(0);
    const target = join(mount.get().dir, 'big');
    const copy = await run('dd', [`if=${source}`, `of=${target}`, 'bs=1M', 'conv=fsync', 'status=none'], { timeoutMs: 300_000 });
    expect(copy.code, copy.stderr).toBe(0);
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    expect(await sha256(target)).toBe(await sha256(source));
  }, 600_000);
});
