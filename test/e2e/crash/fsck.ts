/**
 * `voldfs fsck` as the crash and stress tests use it: `--repair --offline` (no mount is
 * running), then a plain check that must find no damage. Until the command exists in the
 * build (`voldfs fsck --help` fails), {@link runFsck} answers undefined and the tests rely on
 * their own store checks (volume-check.ts).
 */
import { defaultVoldfsCommand } from '../../helpers/mount.js';
import { run, type RunResult } from '../../helpers/run.js';

interface FsckJson {
  readonly summary?: { readonly damageLeft?: number; readonly problems?: number };
  readonly problems?: readonly { kind: string; severity: string; action: string; what: string; path?: string; key?: string }[];
}

/** What the two fsck runs said: their output, and the damage left or repairs that failed. */
export interface FsckRuns {
  readonly output: string;
  readonly problems: string[];
}

/** Whether this build has `voldfs fsck` (its help lists the command). */
export async function fsckAvailable(env: Record<string, string>): Promise<boolean> {
  const [node, ...cli] = await defaultVoldfsCommand();
  const r = await run(node, [...cli, '--help'], { env: { ...process.env, ...env }, timeoutMs: 30_000 });
  return r.code === 0 && /^\s+fsck\b/m.test(r.stdout);
}

/**
 * `voldfs fsck --repair --offline --json`, then `voldfs fsck --offline --json`; undefined when
 * the build has no fsck command yet.
 */
export async function runFsck(env: Record<string, string>): Promise<FsckRuns | undefined> {
  if (!(await fsckAvailable(env))) return undefined;
  const [node, ...cli] = await defaultVoldfsCommand();
  const fsck = (args: string[]) => run(node, [...cli, 'fsck', ...args], { env: { ...process.env, ...env }, timeoutMs: 300_000 });
  const repair = await fsck(['--repair', '--offline', '--json']);
  const check = await fsck(['--offline', '--json']);
  const problems: string[] = [];
  const repaired = parse('fsck --repair', repair, problems);
  const checked = parse('fsck', check, problems);
  for (const p of repaired?.problems ?? []) {
    if (p.action === 'failed' || p.action === 'not-repairable') problems.push(`fsck --repair: ${p.kind} ${p.path ?? p.key ?? ''}: ${p.what} (${p.action})`);
  }
  for (const p of checked?.problems ?? []) {
    if (p.severity === 'damage') problems.push(`fsck after repair: ${p.kind} ${p.path ?? p.key ?? ''}: ${p.what}`);
  }
  if (check.code !== 0) problems.push(`fsck after repair exited with ${check.code}`);
  const count = (j: FsckJson | undefined) => `${j?.summary?.problems ?? '?'} problems, ${j?.summary?.damageLeft ?? '?'} damage left`;
  const kinds = (j: FsckJson | undefined) => [...new Set((j?.problems ?? []).map((p) => `${p.kind}/${p.action}`))].join(', ') || 'none';
  return {
    output: `  --repair: exit ${repair.code}, ${count(repaired)} (${kinds(repaired)})\n  check: exit ${check.code}, ${count(checked)} (${kinds(checked)})`,
    problems,
  };
}

function parse(what: string, r: RunResult, problems: string[]): FsckJson | undefined {
  try {
    return JSON.parse(r.stdout) as FsckJson;
  } catch {
    problems.push(`${what}: exit ${r.code}, no JSON report: ${(r.stdout + r.stderr).slice(-800)}`);
    return undefined;
  }
}
