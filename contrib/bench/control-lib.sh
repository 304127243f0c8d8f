# Shared by the write-side benchmarks (bench-control.sh,
# bench-writemount.sh, bench-stream.sh): the binaries, the corpus and the
# timing helpers.  Sourced first; W (the work directory) is set before
# the helpers run.

# The binaries of the build tree the bench runs from (or SNAPCTL,
# SNAPFS); FUSE needs root.
snapctl=${SNAPCTL:-$PWD/snapctl}
snapfs=${SNAPFS:-$PWD/snapfs}
[ -x "$snapctl" ] && [ -x "$snapfs" ] || { echo "bench: run from a build tree (or set SNAPCTL, SNAPFS)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (FUSE)"; exit 1; }

# make_corpus DIR FILES BIG: FILES small files (1-30 KB, 200 directories)
# and BIG files of 64 MiB, random (nothing compresses or dedups), made
# once and kept.
make_corpus() {
	[ -d "$1" ] && return 0
	echo "building $2 small files and $3 x 64 MiB in $1"
	python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
root, n, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(1)
for i in range(n):
    d = os.path.join(root, "small", "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(rnd.randrange(1000, 30000)))
os.makedirs(os.path.join(root, "big"), exist_ok=True)
for i in range(big):
    with open(os.path.join(root, "big", "b%d" % i), "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
PY
}

secs() { # secs CMD...: wall seconds of CMD
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>"$W/err" || { echo "bench: '$*' failed:" >&2; cat "$W/err" >&2; exit 1; }
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'
}
calc() { awk "BEGIN {printf \"%.4f\", $1}"; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# Before a measure that creates many files: ext4 does not reuse an inode
# freed less than 30 s ago and scans past every such one, so creates
# right after mass deletes (a commit empties its stage, a run starts by
# removing the last one's trees) cost up to ten times their usual (seen
# here: 300-600 us instead of 50).  Neither side may pay for the other's
# deletes.
settle_deletes() {
	sync
	sleep "${SETTLE_S:-35}"
}
# A cold start for each measure: nothing of the corpus in the page cache.
cold() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
