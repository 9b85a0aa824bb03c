#!/usr/bin/env node
// Stand-in for bin/voldfs.js with the same mkfs / mount [-f] / umount contract, serving the
// bench's in-memory reference filesystem (bench/memory-fs.cjs, on vendor/fuse-native). It lets
// the mount helper's own tests exercise mounting, daemon mode and every cleanup path without
// voldfs itself.
//
// Env: FAKE_VOLDFS_FAIL  'mkfs' | 'mount' | 'umount-noop' | 'exit-1-on-stop': misbehave on purpose
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const repo = resolve(dirname(self), '..', '..');
const memoryFs = join(repo, 'bench', 'memory-fs.cjs');
const fail = process.env.FAKE_VOLDFS_FAIL ?? '';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function isMounted(dir) {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').some((line) => {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    return sep > 0 && f[4] === dir && f[sep + 1].startsWith('fuse');
  });
}

async function servers(dir) {
  const pids = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let argv;
    try {
      argv = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
    } catch {
      continue; // the process ended while we looked
    }
    if (argv.includes(self) && argv.includes('-f') && argv.includes(dir)) pids.push(Number(name));
  }
  return pids;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function foreground(dir) {
  if (fail === 'mount') {
    console.error('fake voldfs: refusing to mount (FAKE_VOLDFS_FAIL=mount)');
    process.exit(3);
  }
  const child = spawn(process.execPath, [memoryFs, dir], { stdio: 'inherit' });
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code, signal) => {
    if (fail === 'exit-1-on-stop') process.exit(1);
    process.exit(code ?? (signal ? 1 : 0));
  });
}

async function background(dir) {
  const child = spawn(process.execPath, [self, 'mount', '-f', dir], { detached: true, stdio: 'ignore' });
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  child.unref();
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await isMounted(dir)) process.exit(0);
    if (exited) break;
    await sleep(50);
  }
  console.error(`fake voldfs: mount of ${dir} did not appear`);
  process.exit(1);
}

async function umount(dir) {
  if (!(await isMounted(dir))) {
    console.error(`fake voldfs: ${dir} is not mounted`);
    process.exit(1);
  }
  if (fail === 'umount-noop') process.exit(0);
  const pids = await servers(dir);
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (!(await isMounted(dir)) && !pids.some(alive)) process.exit(0);
    await sleep(50);
  }
  console.error(`fake voldfs: ${dir} still busy`);
  process.exit(1);
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === 'mkfs') {
  if (fail === 'mkfs') {
    console.error('fake voldfs: store unreachable (FAKE_VOLDFS_FAIL=mkfs)');
    process.exit(2);
  }
  process.exit(0);
} else if (cmd === 'mount' && rest[0] === '-f' && rest.length === 2) {
  await foreground(resolve(rest[1]));
} else if (cmd === 'mount' && rest.length === 1) {
  await background(resolve(rest[0]));
} else if (cmd === 'umount' && rest.length === 1) {
  await umount(resolve(rest[0]));
} else {
  console.error('usage: fake-voldfs-cli.mjs mkfs | mount [-f] DIR | umount DIR');
  process.exit(2);
}
