#!/bin/bash
# workload.sh DIR [LABEL] -- the fixed filesystem workload of `npm run bench`, run inside DIR.
#
# Prints one line per figure on stdout:  LABEL metric value unit
# (a verification prints `LABEL metric ok` or `LABEL metric FAIL detail`; a phase that fails
# prints `LABEL metric error detail`). Progress and tool errors go to stderr.
#
# Phases, sizes from the environment (defaults in brackets):
#   seq_write     dd of a random file (kept in RAM, under BENCH_REF_DIR) in 1 MiB blocks,
#                 conv=fsync, after drop_caches                                  [BENCH_SEQ_MB=1024]
#   seq_read      drop_caches, dd the file back to /dev/null; seq_verify = cmp with the source
#   small_create  N files of S bytes in one directory, open/write/close each
#                                                      [BENCH_SMALL_N=5000, BENCH_SMALL_SIZE=4096]
#   stat_first    stat of all N right after the create
#   stat          a second pass (warm kernel caches)
#   stat_cold     a third pass after drop_caches (every lookup goes to the filesystem)
#   small_read    read all N back; small_verify = content check
#   small_rm      rm -rf of the small-file directory (files/s)
#   untar         drop_caches, tar -xf of a tarball of a real tree, made once per BENCH_REF_DIR
#                 from the directories BENCH_TREE_DIRS (relative to /)     [usr/share/doc]
#                 untar = regular files/s, untar_mb = MB/s of regular-file bytes
#   tree_read     drop_caches, read and SHA-256 every regular file of the tree (files/s);
#                 untar_verify = every checksum matches, untar_symlinks = every symlink is there
#                 with the same target
#   rm            rm -rf of the extracted tree (regular files/s)
#   total_elapsed seconds for the whole workload
# MB = 10^6 bytes (as dd prints). The tree's shape is printed first (tree_files, tree_dirs,
# tree_symlinks, tree_mb, tree_tar_mb).
#
# BENCH_REF_DIR (default /dev/shm/voldfs-bench-ref-$UID) holds the reference data: the random
# source file, the tarball, its checksums and symlink list. It should be on tmpfs, so dropping
# caches does not send the source back to a disk. It is made when missing and reused; scripts/bench
# gives each run its own and removes it.
#
# Needs root for drop_caches (without it: one `warning drop_caches_unavailable` line and warm
# figures where cold ones are meant). Exit status 0 when every phase ran and verified, 1 otherwise.
set -u

DIR=${1:?usage: workload.sh DIR [LABEL]}
LABEL=${2:-$(basename "$DIR")}
SEQ_MB=${BENCH_SEQ_MB:-1024}
SMALL_N=${BENCH_SMALL_N:-5000}
SMALL_SIZE=${BENCH_SMALL_SIZE:-4096}
TREE_DIRS=${BENCH_TREE_DIRS:-usr/share/doc}
REF=${BENCH_REF_DIR:-/dev/shm/voldfs-bench-ref-$(id -u)}
SRC=$REF/seq-src
TAR=$REF/tree.tar
SUMS=$REF/tree.sha256
LINKS=$REF/tree.links
INFO=$REF/tree.info
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

emit() { echo "$LABEL $*"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 1e-9; printf "%.1f", n / s }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 1e-9; printf "%.1f", b / 1e6 / s }'; }
isnum() { case $1 in ''|*[!0-9]*) return 1;; esac; }

for v in SEQ_MB SMALL_N SMALL_SIZE; do
  isnum "${!v}" && [ "${!v}" -gt 0 ] || { echo "workload.sh: BENCH_$v must be a positive integer" >&2; exit 2; }
done

FAILED=0
DROP_OK=1
drop_caches() {
  sync
  [ "$DROP_OK" = 1 ] || return 0
  if ! { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
    emit warning drop_caches_unavailable
    DROP_OK=0
  fi
}

T_START=$(now)
mkdir -p "$DIR" 2>/dev/null
if ! [ -d "$DIR" ] || ! touch "$DIR/.workload-probe" 2>/dev/null; then
  emit error cannot_write_dir
  exit 1
fi
rm -f "$DIR/.workload-probe"
W=$DIR
rm -rf "$W/big" "$W/small" "$W/tree" 2>/dev/null
ERRLOG=$(mktemp "${TMPDIR:-/tmp}/voldfs-workload-err.XXXXXX")
trap 'rm -f "$ERRLOG" "$ERRLOG.links"' EXIT

# ---------- reference data (once per BENCH_REF_DIR) ----------
mkdir -p "$REF" || { emit error cannot_make_ref_dir; exit 1; }
SEQ_BYTES=$((SEQ_MB * 1048576))
if [ ! -f "$SRC" ] || [ "$(stat -c %s "$SRC")" != "$SEQ_BYTES" ]; then
  head -c "$SEQ_BYTES" /dev/urandom > "$SRC.tmp" && mv "$SRC.tmp" "$SRC"
fi
if [ ! -s "$TAR" ] || [ ! -s "$SUMS" ] || [ ! -f "$LINKS" ] || [ ! -s "$INFO" ] \
   || [ "$(sed -n 1p "$INFO")" != "$TREE_DIRS" ]; then
  ref=$(mktemp -d "$REF/tree-ref.XXXXXX")
  # shellcheck disable=SC2086 # TREE_DIRS is a list
  if ! tar -C / -cf "$TAR.tmp" $TREE_DIRS 2>"$ERRLOG"; then
    emit error cannot_make_tarball "$(head -c 200 "$ERRLOG" | tr '\n' ' ')"
    rm -rf "$ref" "$TAR.tmp"
    exit 1
  fi
  mv "$TAR.tmp" "$TAR"
  tar -xf "$TAR" -C "$ref"
  (cd "$ref" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) > "$SUMS"
  (cd "$ref" && find . -type l -printf '%p\t%l\n' | LC_ALL=C sort) > "$LINKS"
  {
    echo "$TREE_DIRS"
    (cd "$ref" && find . -type f | wc -l)
    (cd "$ref" && find . -mindepth 1 -type d | wc -l)
    (cd "$ref" && find . -type l | wc -l)
    (cd "$ref" && find . -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d\n", s }')
    stat -c %s "$TAR"
  } > "$INFO"
  rm -rf "$ref"
fi
TREE_FILES=$(sed -n 2p "$INFO"); TREE_DIRS_N=$(sed -n 3p "$INFO")
TREE_LINKS=$(sed -n 4p "$INFO"); TREE_BYTES=$(sed -n 5p "$INFO"); TAR_BYTES=$(sed -n 6p "$INFO")

emit tree_files "$TREE_FILES" files
emit tree_dirs "$TREE_DIRS_N" dirs
emit tree_symlinks "$TREE_LINKS" symlinks
emit tree_mb "$(awk -v b="$TREE_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')" MB
emit tree_tar_mb "$(awk -v b="$TAR_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')" MB

# ---------- sequential ----------
echo "workload: $LABEL: sequential write and read of $SEQ_MB MiB" >&2
drop_caches
t0=$(now)
if dd if="$SRC" of="$W/big" bs=1M conv=fsync status=none 2>"$ERRLOG"; then
  emit seq_write "$(mbps "$SEQ_BYTES" "$(secs "$t0" "$(now)")")" MB/s
else
  emit seq_write error "$(head -c 200 "$ERRLOG" | tr '\n' ' ')"; FAILED=1
fi
drop_caches
t0=$(now)
if dd if="$W/big" of=/dev/null bs=1M status=none 2>"$ERRLOG"; then
  emit seq_read "$(mbps "$SEQ_BYTES" "$(secs "$t0" "$(now)")")" MB/s
else
  emit seq_read error "$(head -c 200 "$ERRLOG" | tr '\n' ' ')"; FAILED=1
fi
if cmp -s "$SRC" "$W/big"; then emit seq_verify ok; else emit seq_verify FAIL; FAILED=1; fi
rm -f "$W/big"

# ---------- small files ----------
echo "workload: $LABEL: $SMALL_N small files of $SMALL_SIZE bytes" >&2
"$PY" - "$W/small" "$SMALL_N" "$SMALL_SIZE" "$LABEL" "$DROP_OK" <<'PYEOF' || FAILED=1
import os, random, sys, time
d, n, size, label, drop_ok = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
failed = False
def emit(*a): print(label, *a, flush=True)
def drop():
    os.sync()
    if drop_ok:
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f: f.write("3\n")
        except OSError:
            pass
data = random.Random(4242).randbytes(size)
os.makedirs(d, exist_ok=True)
names = [os.path.join(d, "f%06d" % i) for i in range(n)]
t = time.perf_counter
try:
    t0 = t()
    for p in names:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if os.write(fd, data) != size: raise OSError("short write on " + p)
        finally:
            os.close(fd)
    emit("small_create", "%.1f" % (n / (t() - t0)), "files/s")
except OSError as e:
    emit("small_create", "error", str(e)[:200].replace(" ", "_")); sys.exit(1)
def stat_pass(metric):
    t0 = t()
    for p in names: os.stat(p)
    emit(metric, "%.1f" % (n / (t() - t0)), "stats/s")
try:
    stat_pass("stat_first")
    stat_pass("stat")
    drop()
    stat_pass("stat_cold")
except OSError as e:
    emit("stat", "error", str(e)[:200].replace(" ", "_")); failed = True
bad = 0
t0 = t()
for p in names:
    try:
        with open(p, "rb", buffering=0) as f:
            got = f.read(size + 1)
        if got != data: bad += 1
    except OSError:
        bad += 1
emit("small_read", "%.1f" % (n / (t() - t0)), "files/s")
if bad == 0: emit("small_verify", "ok")
else: emit("small_verify", "FAIL", "%d_bad" % bad); failed = True
sys.exit(1 if failed else 0)
PYEOF
if [ -d "$W/small" ]; then
  t0=$(now)
  if rm -rf "$W/small" 2>"$ERRLOG"; then
    emit small_rm "$(rate "$SMALL_N" "$(secs "$t0" "$(now)")")" files/s
  else
    emit small_rm error "$(head -c 200 "$ERRLOG" | tr '\n' ' ')"; FAILED=1
  fi
fi

# ---------- untar a real tree ----------
echo "workload: $LABEL: untar of $TREE_FILES files ($TREE_DIRS)" >&2
mkdir -p "$W/tree"
drop_caches
t0=$(now)
tar -xf "$TAR" -C "$W/tree" 2>"$ERRLOG"
rc=$?
s=$(secs "$t0" "$(now)")
if [ "$rc" = 0 ]; then
  emit untar "$(rate "$TREE_FILES" "$s")" files/s
  emit untar_mb "$(mbps "$TREE_BYTES" "$s")" MB/s
else
  emit untar error "tar_exit_$rc"; FAILED=1
  head -n 3 "$ERRLOG" | sed "s/^/workload: $LABEL: tar: /" >&2
fi
drop_caches
# Read every regular file of the list and check its SHA-256 in one pass, timed as tree_read
# (hashlib: coreutils sha256sum is CPU-bound at ~330 MB/s here and would cap fast targets).
"$PY" - "$W/tree" "$SUMS" "$LABEL" <<'PYEOF' || FAILED=1
import hashlib, os, re, sys, time
root, sums, label = sys.argv[1], sys.argv[2], sys.argv[3]
entries = []
with open(sums, encoding="utf-8", errors="surrogateescape") as f:
    for line in f:
        line = line.rstrip("\n")
        esc = line.startswith("\\")
        if esc: line = line[1:]
        h, name = line[:64], line[66:]
        if esc: name = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name)
        entries.append((h, name))
bad, first = 0, []
t0 = time.perf_counter()
for h, name in entries:
    try:
        d = hashlib.sha256()
        with open(os.path.join(root, name), "rb", buffering=0) as f:
            while True:
                b = f.read(1 << 20)
                if not b: break
                d.update(b)
        ok = d.hexdigest() == h
    except OSError:
        ok = False
    if not ok:
        bad += 1
        if len(first) < 3: first.append(name)
dt = time.perf_counter() - t0
print(label, "tree_read", "%.1f" % (len(entries) / max(dt, 1e-9)), "files/s", flush=True)
if bad == 0:
    print(label, "untar_verify", "ok", flush=True)
else:
    print(label, "untar_verify", "FAIL", "%d_bad" % bad, flush=True)
    for n in first: print("workload:", label, "bad checksum:", n, file=sys.stderr)
    sys.exit(1)
PYEOF
nl=$( (cd "$W/tree" && find . -type l -printf '%p\t%l\n' | LC_ALL=C sort) | tee "$ERRLOG.links" | wc -l)
if cmp -s "$ERRLOG.links" "$LINKS"; then
  emit untar_symlinks ok
else
  emit untar_symlinks FAIL "${nl}_of_$TREE_LINKS"; FAILED=1
fi

# ---------- rm of everything ----------
t0=$(now)
if rm -rf "$W/tree" 2>"$ERRLOG"; then
  emit rm "$(rate "$TREE_FILES" "$(secs "$t0" "$(now)")")" files/s
else
  emit rm error "$(head -c 200 "$ERRLOG" | tr '\n' ' ')"; FAILED=1
fi
left=$(find "$W" -mindepth 1 -maxdepth 1 ! -name lost+found | wc -l)
[ "$left" = 0 ] || { emit rm_left "$left" entries; FAILED=1; }

emit total_elapsed "$(secs "$T_START" "$(now)")" s
exit $FAILED
