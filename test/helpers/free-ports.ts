/**
 * Finding free loopback ports for test servers, and telling when a killed server is gone. A
 * port found free may be taken by someone else before the server binds it, so starters retry
 * with another range when that happens.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/** True if nothing listens on 127.0.0.1:`port` and we may bind it. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * A base port such that `base + offset` is free for every offset in `offsets`, with `base`
 * drawn at random from `[low, high)`.
 * @throws Error after 200 unlucky draws
 */
export async function findFreeBase(offsets: readonly number[], low = 20000, high = 40000): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low));
    let free = true;
    for (const offset of offsets) {
      if (!(await portIsFree(base + offset))) {
        free = false;
        break;
      }
    }
    if (free) return base;
  }
  throw new Error(`no free port range on 127.0.0.1 in ${low}..${high} for offsets ${offsets.join(',')}`);
}

/**
 * True once process `pid` has exited: it no longer exists, or it is a zombie waiting for its
 * parent (for a daemon, init) to reap it.
 */
export async function processGone(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch (err) {
    // ESRCH: the process was reaped between opening its stat file and reading it.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return true;
    throw err;
  }
}
