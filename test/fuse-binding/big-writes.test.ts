// bigWrites / maxWrite reach libfuse: a 16 MiB dd arrives in 128 KiB writes instead of 4 KiB.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type Fuse from 'fuse-native';
import type { MemoryFs } from './memory-fs.js';
import { type Mounted, mountMemoryFs, run } from './mounted.js';

const MiB = 1 << 20;
const mounts: Mounted<MemoryFs>[] = [];

async function ddWrite(options: Fuse.Options): Promise<{ count: number; average: number; max: number; fs: MemoryFs }> {
  const m = await mountMemoryFs(options);
  mounts.push(m);
  await run('dd', ['if=/dev/zero', `of=${join(m.dir, 'big')}`, 'bs=1M', 'count=16', 'status=none']);
  const sizes = m.fs.writeSizes;
  const total = sizes.reduce((a, b) => a + b, 0);
  expect(total).toBe(16 * MiB);
  expect(m.fs.lookup('/big')?.size).toBe(16 * MiB);
  return { count: sizes.length, average: total / sizes.length, max: Math.max(...sizes), fs: m.fs };
}

describe('write sizes', () => {
  afterEach(async () => {
    for (const m of mounts.splice(0)) await m.close();
  });

  it('bigWrites: 16 MiB arrives in writes of 128 KiB on average', async () => {
    const w = await ddWrite({ bigWrites: true });
    expect(w.max).toBe(128 * 1024);
    expect(w.average).toBeGreaterThanOrEqual(120 * 1024);
    expect(w.count).toBeLessThanOrEqual(16 * 8 + 4);
  });

  it('without bigWrites the kernel sends one page per write', async () => {
    const w = await ddWrite({});
    expect(w.max).toBe(4096);
  });

  it('maxWrite caps the write size', async () => {
    const w = await ddWrite({ bigWrites: true, maxWrite: 64 * 1024 });
    expect(w.max).toBe(64 * 1024);
    expect(w.average).toBeGreaterThanOrEqual(60 * 1024);
  });
});
