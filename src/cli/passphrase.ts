import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import type { Env } from '../backends/backend.js';
import { ConfigError } from '../backends/errors.js';

/**
 * Where a passphrase comes from, in this order: VOLDFS_PASSPHRASE_FILE (a file holding it; one
 * trailing newline is dropped), VOLDFS_PASSPHRASE (for tests and scripts: the environment of a
 * process is readable by its user), an interactive prompt when stdin is a terminal.
 * @param prefix variable prefix: `VOLDFS_PASSPHRASE` or `VOLDFS_NEW_PASSPHRASE` (voldfs passwd)
 */
export function passphraseSource(env: Env, prefix = 'VOLDFS_PASSPHRASE', prompt = 'Passphrase: '): (() => Promise<string>) | undefined {
  const file = env[`${prefix}_FILE`]?.trim();
  if (file) {
    return async () => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new ConfigError(`${prefix}_FILE=${file} cannot be read: ${(err as Error).message}`);
      }
      const pass = text.replace(/\r?\n$/, '');
      if (!pass) throw new ConfigError(`${prefix}_FILE=${file} is empty: put the passphrase in it`);
      return pass;
    };
  }
  const direct = env[prefix];
  if (direct) return async () => direct;
  if (process.stdin.isTTY) return () => ask(prompt);
  return undefined;
}

/** Reads a line from the terminal without echoing it. */
async function ask(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const silent = new Writable({ write: (_chunk, _enc, done) => done() });
  const rl = createInterface({ input: process.stdin, output: silent, terminal: true });
  try {
    const answer = await rl.question('');
    process.stderr.write('\n');
    if (!answer) throw new ConfigError('an empty passphrase was given');
    return answer;
  } finally {
    rl.close();
  }
}
