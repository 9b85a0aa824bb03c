import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/backends/errors.js';
import { MemoryStore } from '../../../src/backends/memory/index.js';
import { FaultStore } from '../../../src/backends/wrappers/fault-store.js';
import { makeStoreFaults, parseFaultEnv } from '../../../src/cli/fault-env.js';
import { makeTempDir } from '../../helpers/temp-dir.js';

describe('VOLDFS_CRASH_AT / VOLDFS_CRASH_TRACE parsing', () => {
  it('is off when neither is set', () => {
    expect(parseFaultEnv({})).toBeUndefined();
    expect(parseFaultEnv({ VOLDFS_CRASH_AT: ' ' })).toBeUndefined();
  });

  it('reads a point, a kind-qualified point, an alias, with and without a count', () => {
    expect(parseFaultEnv({ VOLDFS_CRASH_AT: 'lock.write#3' })?.crashAt).toEqual({ name: 'lock.write', occurrence: 3 });
    expect(parseFaultEnv({ VOLDFS_CRASH_AT: 'apply.write:dir' })?.crashAt).toEqual({ name: 'apply.write:dir', occurrence: 1 });
    expect(parseFaultEnv({ VOLDFS_CRASH_AT: 'block.put#2' })?.crashAt).toEqual({ name: 'block.put', occurrence: 2 });
    expect(parseFaultEnv({ VOLDFS_CRASH_AT: 'store.commit' })?.crashAt).toEqual({ name: 'store.commit', occurrence: 1 });
    expect(parseFaultEnv({ VOLDFS_CRASH_TRACE: '/tmp/t' })).toEqual({ traceFile: '/tmp/t' });
  });

  it.each(['lock.wirte', 'lock.write#0', 'lock.write#x', 'apply.write:file', 'store.rename', 'file.put', '#2'])(
    'refuses %s naming the variable and the accepted form',
    (text) => {
      expect(() => parseFaultEnv({ VOLDFS_CRASH_AT: text })).toThrow(ConfigError);
      expect(() => parseFaultEnv({ VOLDFS_CRASH_AT: text })).toThrow(/VOLDFS_CRASH_AT=.*expected <point>\[#<n>\].*kinds: sb, alloc/);
    },
  );
});

describe('fault hooks', () => {
  it('trace every call with each name it matches and its running count', async () => {
    const dir = await makeTempDir('fault-env');
    const traceFile = join(dir, 'trace');
    const hooks = makeStoreFaults({ traceFile }, 'vol:');
    const store = new FaultStore(new MemoryStore(), hooks.store);
    await store.put('vol:b:abc', Buffer.from('x'));
    await store.put('vol:c:12:0', Buffer.from('x'));
    await store.get('vol:i:12');
    await hooks.intent('lock.write', 'vol:d:1:r');
    await hooks.intent('put', 'vol:i:12');
    await hooks.intent('intent.commit', '_cas/x:abc');
    await store.delete('vol:g:xyz');
    await store.put('vol:b:def', Buffer.from('y'));
    expect((await readFile(traceFile, 'utf8')).trim().split('\n')).toEqual([
      'store.put#1 store.put:block#1 block.put#1',
      'store.put#2 store.put:chunk#1 chunk.put#1',
      'store.get#1 store.get:inode#1',
      'lock.write#1 lock.write:dir#1',
      'put#1 put:inode#1 inode.put#1',
      'intent.commit#1 intent.commit:intent#1',
      'store.delete#1 store.delete:garbage#1 garbage.delete#1',
      'store.put#3 store.put:block#2 block.put#2',
    ]);
  });

  it('kill the process with SIGKILL at exactly the chosen call, after one log line', async () => {
    const script = `
      const { makeStoreFaults } = await import(${JSON.stringify(new URL('../../../src/cli/fault-env.ts', import.meta.url).href)});
      const hooks = makeStoreFaults({ crashAt: { name: 'chunk.put', occurrence: 2 } }, 'vol:');
      for (const [point, key] of [['put', 'vol:c:5:0'], ['put', 'vol:i:5'], ['put', 'vol:c:5:1'], ['put', 'vol:c:5:2']]) {
        await hooks.intent(point, key);
        process.stdout.write(point + ' ' + key + ' passed\\n');
      }`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    expect(stdout.trim().split('\n')).toEqual(['put vol:c:5:0 passed', 'put vol:i:5 passed']);
    expect(stderr).toMatch(/"crashAt":"chunk.put","occurrence":2,"point":"put","kind":"chunk","key":"vol:c:5:1".*VOLDFS_CRASH_AT reached/);
  });
});
