import type { FsckReport } from './fsck.js';
import type { Problem, ProblemAction } from './problems.js';

/** Problems listed per kind in the text report before the rest is summed up (JSON has all). */
const LIST_PER_KIND = 50;

const ACTION_TEXT: Record<ProblemAction, string> = {
  repaired: 'repaired',
  gone: 'no longer there when repairing',
  left: 'left (--repair fixes it)',
  'needs-offline': 'left (needs --repair --offline, with no mount active)',
  'not-repairable': 'NOT REPAIRABLE',
  failed: 'REPAIR FAILED',
};

/** The report as people read it: summary, problems (capped per kind), notes, verdict. */
export function formatReport(report: FsckReport, volume: string): string {
  const s = report.summary;
  const lines: string[] = [];
  const mode = `${s.repairAsked ? 'check and repair' : 'check only'}, ${s.offline ? 'offline' : 'online'}`;
  lines.push(`voldfs fsck of volume ${volume} (${mode})`);
  lines.push(
    `  ${s.directories} directories, ${s.files} files (${formatBytes(s.bytes)}), ${s.symlinks} symlinks, ${s.others} other inodes`,
  );
  lines.push(`  ${s.chunkMaps} chunk maps, ${s.blocksChecked} blocks checked, ${s.fragmentsRewritten} block records rewritten`);
  if (s.metadataCopiesRewritten > 0) lines.push(`  ${s.metadataCopiesRewritten} metadata copies rewritten`);
  lines.push(`  garbage records: ${s.garbagePending} not yet due, ${s.garbageCollected} collected`);
  const kinds = Object.entries(s.byKind).map(([k, n]) => `${k} ${n}`);
  lines.push(`  problems: ${s.problems}${kinds.length > 0 ? ` (${kinds.join(', ')})` : ''}`);
  const actions = Object.entries(s.byAction).map(([a, n]) => `${a} ${n}`);
  if (actions.length > 0) lines.push(`  outcome: ${actions.join(', ')}`);
  if (report.problems.length > 0) {
    lines.push('', 'problems:');
    const shown = new Map<string, number>();
    for (const p of report.problems) {
      const n = (shown.get(p.kind) ?? 0) + 1;
      shown.set(p.kind, n);
      if (n <= LIST_PER_KIND) lines.push(`  ${formatProblem(p)}`);
    }
    for (const [kind, n] of shown) {
      if (n > LIST_PER_KIND) lines.push(`  ... and ${n - LIST_PER_KIND} more ${kind} (--json lists all)`);
    }
  }
  if (report.notes.length > 0) lines.push('', 'notes:', ...report.notes.map((n) => `  ${n}`));
  lines.push('', verdict(report));
  return lines.join('\n') + '\n';
}

export function formatProblem(p: Problem): string {
  const where = [p.path !== undefined ? JSON.stringify(p.path) : '', p.ino !== undefined ? `inode ${p.ino}` : '', p.path === undefined && p.ino === undefined && p.key ? p.key : '']
    .filter(Boolean)
    .join(', ');
  const action = ACTION_TEXT[p.action] + (p.done && p.action !== 'needs-offline' ? `: ${p.done}` : '');
  return `[${p.severity}] ${p.kind}${where ? ` (${where})` : ''}: ${p.what} -> ${action}`;
}

function verdict(report: FsckReport): string {
  const s = report.summary;
  if (s.damageLeft > 0) return `result: DAMAGE LEFT (${s.damageLeft} problems): exit code 1`;
  const leftovers = report.problems.filter((p) => p.action !== 'repaired' && p.action !== 'gone').length;
  if (s.problems === 0) return 'result: clean';
  if (leftovers === 0) return 'result: everything found was repaired';
  return `result: no damage; ${leftovers} leftovers remain (garbage only: see above)`;
}

function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
