// getxattr/listxattr honour the caller's buffer: an exact size for a size query, ERANGE when
// the value or list does not fit (2.2.6 truncated silently and over-reported sizes).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryFs } from './memory-fs.js';
import { type Mounted, mountMemoryFs, run } from './mounted.js';

const ERANGE = 34;

// Raw syscalls with a buffer of our choosing: getfattr and os.getxattr retry on ERANGE.
const PROBE = `
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
op, path, size = sys.argv[1], sys.argv[2].encode(), int(sys.argv[4])
buf = ctypes.create_string_buffer(max(size, 1))
if op == 'get':
    r = libc.getxattr(path, sys.argv[3].encode(), buf if size else None, size)
else:
    r = libc.listxattr(path, buf if size else None, size)
print(r, ctypes.get_errno() if r < 0 else buf.raw[:max(r, 0) if size else 0].hex())
`;

async function probe(op: 'get' | 'list', path: string, name: string, size: number): Promise<[number, string]> {
  const [r, rest] = (await run('/usr/bin/python3', ['-c', PROBE, op, path, name, String(size)])).trim().split(' ');
  return [Number(r), rest ?? ''];
}

describe('xattr buffer sizes', () => {
  let m: Mounted<MemoryFs>;
  let f: string;
  const value = 'v'.repeat(300);
  beforeAll(async () => {
    m = await mountMemoryFs();
    f = join(m.dir, 'x');
    await writeFile(f, '');
    await run('setfattr', ['-n', 'user.big', '-v', value, f]);
    await run('setfattr', ['-n', 'user.small', '-v', 'ab', f]);
  });
  afterAll(async () => {
    await m?.close();
  });

  it('getxattr with size 0 reports the exact length', async () => {
    expect(await probe('get', f, 'user.big', 0)).toEqual([300, '']);
  });

  it('getxattr into a buffer that is too small fails with ERANGE', async () => {
    expect(await probe('get', f, 'user.big', 64)).toEqual([-1, String(ERANGE)]);
    expect(await probe('get', f, 'user.big', 299)).toEqual([-1, String(ERANGE)]);
  });

  it('getxattr into a buffer that fits returns the value', async () => {
    expect(await probe('get', f, 'user.big', 300)).toEqual([300, Buffer.from(value).toString('hex')]);
    expect(await probe('get', f, 'user.small', 64)).toEqual([2, Buffer.from('ab').toString('hex')]);
    expect((await run('getfattr', ['--only-values', '-n', 'user.big', f]))).toBe(value);
  });

  it('listxattr reports the exact size, fills a buffer that fits and ERANGEs otherwise', async () => {
    const list = 'user.big\0user.small\0';
    expect(await probe('list', f, '', 0)).toEqual([list.length, '']);
    expect(await probe('list', f, '', list.length)).toEqual([list.length, Buffer.from(list).toString('hex')]);
    expect(await probe('list', f, '', list.length - 1)).toEqual([-1, String(ERANGE)]);
  });

  it('a missing attribute is ENODATA', async () => {
    await expect(run('getfattr', ['-n', 'user.none', f])).rejects.toThrow(/No such attribute/);
  });
});
