/** The CLI's exit: a long report to a parent's pipe arrives whole. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const exitModule = fileURLToPath(new URL('../../../src/cli/exit.ts', import.meta.url));

function outputOf(code: string): Promise<{ bytes: number; status: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let bytes = 0;
    child.stdout.on('data', (b: Buffer) => (bytes += b.length));
    child.on('error', reject);
    child.on('close', (status) => resolve({ bytes, status }));
  });
}

describe('exitAfterOutput', () => {
  it('lets 4 MiB written to a pipe arrive before the process ends, with the code given', async () => {
    const size = 4 << 20;
    const kept = await outputOf(
      `import { exitAfterOutput } from ${JSON.stringify(exitModule)}; setInterval(() => {}, 1000); process.stdout.write('x'.repeat(${size})); exitAfterOutput(3);`,
    );
    expect(kept).toEqual({ bytes: size, status: 3 });
    // What it replaces: process.exit() right after the write loses most of it.
    const cut = await outputOf(`process.stdout.write('x'.repeat(${size})); process.exit(0);`);
    expect(cut.bytes).toBeLessThan(size);
  });
});
