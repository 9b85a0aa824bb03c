/**
 * What a tree holds, read by child processes (safe on a mount served by the test process):
 * every entry's type and path, every regular file's SHA-256, every symlink's target.
 */
import { run } from '../../helpers/run.js';

/** path -> `file <sha256>` | `link <target>` | `dir` | `other`; or an error string per path. */
export type TreeDigest = Map<string, string>;

const SCRIPT = `
set -u
cd "$1" || exit 3
find . -mindepth 1 -printf '%y %p\\0' | sort -z | while IFS= read -r -d '' entry; do
  type=\${entry%% *}; path=\${entry#* }
  case "$type" in
    f) sum=$(sha256sum -- "$path" 2>&1) && printf 'file %s\\t%s\\n' "\${sum%% *}" "$path" || printf 'ERROR %s\\t%s\\n' "$(echo "$sum" | tr '\\n\\t' '  ')" "$path" ;;
    l) printf 'link %s\\t%s\\n' "$(readlink -- "$path")" "$path" ;;
    d) printf 'dir\\t%s\\n' "$path" ;;
    *) printf 'other\\t%s\\n' "$path" ;;
  esac
done
`;

/**
 * Digest of the tree under `dir`. Unreadable files show as `ERROR <message>` entries rather
 * than failing the whole digest, so a comparison names every file that went wrong.
 * @throws Error if the walk itself fails (the directory cannot be entered or listed)
 */
export async function digestTree(dir: string, timeoutMs = 300_000): Promise<TreeDigest> {
  const r = await run('bash', ['-c', SCRIPT, 'digest', dir], { timeoutMs });
  if (r.code !== 0 || r.timedOut) {
    throw new Error(`digest of ${dir} failed (exit ${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.slice(0, 1000)}`);
  }
  const out: TreeDigest = new Map();
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    const tab = line.lastIndexOf('\t');
    out.set(line.slice(tab + 1), line.slice(0, tab));
  }
  return out;
}

/** Human-readable differences between two digests (at most `max`), empty when identical. */
export function digestDiff(expected: TreeDigest, actual: TreeDigest, max = 20): string[] {
  const diffs: string[] = [];
  for (const [path, want] of expected) {
    const got = actual.get(path);
    if (got !== want) diffs.push(`${path}: expected ${want}, got ${got ?? 'nothing'}`);
  }
  for (const path of actual.keys()) if (!expected.has(path)) diffs.push(`${path}: unexpected ${actual.get(path)}`);
  return diffs.slice(0, max);
}
