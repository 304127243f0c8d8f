#!/bin/sh
# The snapfs mount vs `restic mount` on the same data, same machine, one run.
#
# usage: contrib/bench/bench-mount.sh [WORKDIR]   (as root; needs restic, time)
#
# Data: one 1 GiB random file and a tree of 100,000 small files, backed up
# by both tools into local encrypted repositories.  For each tool, on a fresh
# mount after dropping the page cache: `ls -lR`, `find`, `du -s` over the
# 100k-file tree, the daemon's peak RSS after browsing, then a cold and a
# warm sequential read of the 1 GiB file (dd, 1 MiB blocks), and the peak
# RSS after reading.  Times are medians of ROUNDS runs (default 3), RSS
# the highest seen.  Prints a table with snapfs/restic ratios (> 1 favours
# snapfs) next to the issue's targets.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
snapctl=${SNAPCTL:-$top/snapctl}
snapfs=${SNAPFS:-$top/snapfs}
command -v restic >/dev/null || { echo "bench: needs restic (contrib/install-deps.sh --bench)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (drops the page cache between runs)"; exit 1; }
W=${1:-$(mktemp -d /tmp/snapfs-mbench.XXXXXX)}
mkdir -p "$W"
C="$W/corpus"

if [ ! -d "$C" ]; then
	echo "building data in $C"
	mkdir -p "$C/big"
	head -c $((1 << 30)) /dev/urandom >"$C/big/file1g"
	python3 - "$C/many" <<'PY'
import os, random, sys
root, rnd = sys.argv[1], random.Random(1)
for d in range(200):
    p = os.path.join(root, "d%03d" % d, "sub")
    os.makedirs(p)
    for f in range(500):
        with open(os.path.join(p, "f%04d.txt" % f), "w") as fh:
            fh.write("%d %d\n" % (d, f) * rnd.randrange(10, 300))
PY
fi
echo "data: $(find "$C/many" -type f | wc -l) small files, 1 GiB file"

head -c 32 /dev/urandom >"$W/key"; chmod 600 "$W/key"
echo "bench password" >"$W/pass"; chmod 600 "$W/pass"
export SNAPFS_KEY_FILE="$W/key" RESTIC_PASSWORD_FILE="$W/pass"
rm -rf "$W/snap-repo" "$W/restic-repo"
"$snapctl" -r "$W/snap-repo" init --encryption-key-file "$W/key" >/dev/null
"$snapctl" -r "$W/snap-repo" backup --label bench -q "$C/big" "$C/many"
restic -r "$W/restic-repo" init -q
(cd "$C" && restic -r "$W/restic-repo" backup -q big many)

M="$W/mnt"
mkdir -p "$M"
pid=""
stop() {
	[ -n "$pid" ] && kill -INT "$pid" 2>/dev/null
	for _ in $(seq 1 100); do
		grep -q " $M fuse" /proc/mounts || break
		sleep 0.1
	done
	umount -l "$M" 2>/dev/null || true
	[ -n "$pid" ] && wait "$pid" 2>/dev/null || true
	pid=""
}
trap stop EXIT

# start TOOL: mounts with a cold page cache; sets $pid and $root (the
# directory holding big/ and many/).
start() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	case $1 in
	snapfs)
		"$snapfs" -f "$W/snap-repo" "$M" 2>"$W/snapfs.log" &
		pid=$!
		root="$M/labels/bench/latest"
		;;
	restic)
		restic -r "$W/restic-repo" mount "$M" >"$W/restic.log" 2>&1 &
		pid=$!
		root="$M/snapshots/latest"
		;;
	esac
	for _ in $(seq 1 300); do
		[ -d "$root/many" ] && return 0
		sleep 0.1
	done
	echo "bench: $1 did not mount"
	exit 1
}

# t CMD...: elapsed seconds of CMD (output discarded)
t() {
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", e - s }'
}

hwm() { awk '/VmHWM/ { print $2 }' "/proc/$pid/status"; }

: >"$W/results"
# Every figure is the median of $ROUNDS runs (default 3), each on a fresh
# mount with a cold page cache: this VM's disk makes single cold reads of
# the same data vary by 2-3x.  The tools alternate run by run.
rounds=${ROUNDS:-3}
for r in $(seq 1 "$rounds"); do
	for tool in snapfs restic; do
		echo "== $tool, run $r"
		start $tool
		echo "$tool lsR $(t ls -lR "$root/many")" >>"$W/results"
		echo "$tool find $(t find "$root/many")" >>"$W/results"
		echo "$tool du $(t du -s "$root/many")" >>"$W/results"
		echo "$tool rss_browse $(hwm)" >>"$W/results"
		stop
		start $tool
		echo "$tool cold $(t dd if="$root/big/file1g" of=/dev/null bs=1M)" >>"$W/results"
		echo "$tool warm $(t dd if="$root/big/file1g" of=/dev/null bs=1M)" >>"$W/results"
		echo "$tool rss_read $(hwm)" >>"$W/results"
		stop
	done
done

python3 - "$W/results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    tool, k, v = line.split()
    runs.setdefault((tool, k), []).append(float(v))
r = {k: (max(v) if k[1].startswith("rss") else statistics.median(v))
     for k, v in runs.items()}
G = 1 << 30
def row(name, k, kind, target):
    s, p = r[("snapfs", k)], r[("restic", k)]
    if kind == "rate":
        print("%-26s %10.0f MB/s %10.0f MB/s %8.2fx   %s" % (name, G / s / 1e6, G / p / 1e6, p / s, target))
    elif kind == "time":
        print("%-26s %12.2f s %12.2f s %8.2fx   %s" % (name, s, p, p / s, target))
    else:
        print("%-26s %10.0f MiB %10.0f MiB %8.2fx   %s" % (name, s / 1024, p / 1024, p / s, target))
print("%-26s %15s %15s %9s   %s" % ("", "snapfs", "restic mount", "ratio", "target"))
row("cold read, 1 GiB", "cold", "rate", ">= 5x")
row("warm read, 1 GiB", "warm", "rate", ">= 1.5 GB/s")
row("ls -lR, 100k files", "lsR", "time", ">= 10x (1/10 of the time)")
row("find, 100k files", "find", "time", "")
row("du -s, 100k files", "du", "time", "")
row("daemon peak RSS browsing", "rss_browse", "mem", "<= 100 MB")
row("daemon peak RSS reading", "rss_read", "mem", "")
print()
print("runs (s): " + "; ".join("%s %s: %s" % (t, k, " ".join("%.2f" % x for x in v))
                              for (t, k), v in sorted(runs.items())
                              if k in ("cold", "lsR")))
PY
