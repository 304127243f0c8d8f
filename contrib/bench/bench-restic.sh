#!/bin/sh
# snapctl vs restic on the same corpus, same machine, one run.
#
# usage: contrib/bench/bench-restic.sh [WORKDIR]     (needs: restic, time)
#
# Corpus (>= 1 GiB): text from /usr/share, random binaries, 20k small files.
# Both tools use a local, encrypted repository and see the page cache in the
# same state.  Measures first backup, no-change backup, backup after 10 % of
# the files changed, full restore, repository size and peak RSS, and prints a
# table with snapfs/restic ratios (throughput: higher is better for snapfs;
# time, size, RSS: lower is better).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
snapctl=${SNAPCTL:-$top/snapctl}
command -v restic >/dev/null || { echo "bench: needs restic (contrib/install-deps.sh --bench)"; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time"; exit 1; }
W=${1:-$(mktemp -d /tmp/snapfs-bench.XXXXXX)}
mkdir -p "$W"
C="$W/corpus"

if [ ! -d "$C" ]; then
	echo "building corpus in $C"
	mkdir -p "$C/text" "$C/bin"
	for d in /usr/share/doc /usr/share/man /usr/share/perl /usr/share/X11 \
		/usr/share/zoneinfo /usr/share/i18n /usr/share/locale /usr/share/common-licenses; do
		[ -d "$d" ] && cp -a "$d" "$C/text/" 2>/dev/null || true
	done
	# Random binaries: incompressible, 768 MiB in 12 files.
	for i in $(seq 1 12); do
		head -c $((64 << 20)) /dev/urandom >"$C/bin/blob$i.bin"
	done
	python3 "$top/tests/mkcorpus.py" "$C/small" --small 20000 >/dev/null
fi
total=$(du -sb --apparent-size "$C" | cut -f1)
nfiles=$(find "$C" -type f | wc -l)
echo "corpus: $nfiles files, $((total >> 20)) MiB"

head -c 32 /dev/urandom >"$W/key"; chmod 600 "$W/key"
echo "bench password" >"$W/pass"; chmod 600 "$W/pass"
export SNAPFS_KEY_FILE="$W/key" RESTIC_PASSWORD_FILE="$W/pass"

# measure NAME CMD...: appends "NAME seconds maxrss_kib" to $W/results
measure() {
	name=$1
	shift
	sync
	/usr/bin/time -f "%e %M" -o "$W/t" "$@" >"$W/$name.out" 2>&1 || {
		cat "$W/$name.out"
		echo "bench: $name failed"
		exit 1
	}
	echo "$name $(cat "$W/t")" >>"$W/results"
}

# fresh_fs DIR: a new ext4 filesystem mounted on DIR (as root), so that
# each restore starts from the same empty disk state: an ext4 that just saw
# 50k files deleted allocates inodes several times slower.
fresh_fs() {
	if [ "$(id -u)" != 0 ]; then
		mkdir -p "$1"
		return
	fi
	rm -f "$1.img"
	truncate -s 4G "$1.img"
	mkfs.ext4 -q -F "$1.img"
	mkdir -p "$1"
	mount -o loop "$1.img" "$1"
	mounts="$mounts $1"
}
mounts=""
trap 'for m in $mounts; do umount "$m" 2>/dev/null; rm -f "$m.img"; done' EXIT

change_10pct() {
	find "$C" -type f | sort | awk 'NR % 10 == 0' | while read -r f; do
		printf 'changed by the benchmark\n' >>"$f"
	done
}

: >"$W/results"
rm -rf "$W/snap-repo" "$W/restic-repo" "$W/snap-out" "$W/restic-out"
fresh_fs "$W/snap-out"
fresh_fs "$W/restic-out"
"$snapctl" -r "$W/snap-repo" init -q
restic init -q --repo "$W/restic-repo" >/dev/null

# Warm the page cache once so both first backups read from memory.
cat $(find "$C" -type f) >/dev/null 2>&1 || true
measure snap_first "$snapctl" -r "$W/snap-repo" backup --label bench -q "$C"
measure restic_first restic -q --repo "$W/restic-repo" backup "$C"
measure snap_nochange "$snapctl" -r "$W/snap-repo" backup --label bench -q "$C"
measure restic_nochange restic -q --repo "$W/restic-repo" backup "$C"
change_10pct
measure snap_changed "$snapctl" -r "$W/snap-repo" backup --label bench -q "$C"
measure restic_changed restic -q --repo "$W/restic-repo" backup "$C"
measure snap_restore "$snapctl" -r "$W/snap-repo" restore bench -q --target "$W/snap-out/t"
measure restic_restore restic -q --repo "$W/restic-repo" restore latest --target "$W/restic-out/t"
snap_size=$(du -sb "$W/snap-repo" | cut -f1)
restic_size=$(du -sb "$W/restic-repo" | cut -f1)

python3 - "$W/results" "$total" "$snap_size" "$restic_size" <<'PY'
import sys
res = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.split()
    res[name] = (float(secs), int(rss))
total, ss, rs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
mib = total / 2**20
print()
print("%-22s %14s %14s %9s" % ("measure", "snapfs", "restic", "ratio"))
def row(label, a, b, unit, better_high):
    r = (a / b if better_high else b / a) if a and b else float("nan")
    print("%-22s %12.1f%s %12.1f%s %8.2fx" % (label, a, unit, b, unit, r))
for step, label in (("first", "first backup"), ("nochange", "no-change backup"),
                    ("changed", "10% changed backup"), ("restore", "full restore")):
    s, r = res["snap_" + step][0], res["restic_" + step][0]
    if step in ("first", "restore"):
        row(label + " MiB/s", mib / s, mib / r, "  ", True)
    else:
        row(label + " s", s, r, " s", False)
row("repository MiB", ss / 2**20, rs / 2**20, "  ", False)
peak_s = max(v[1] for k, v in res.items() if k.startswith("snap_")) / 1024
peak_r = max(v[1] for k, v in res.items() if k.startswith("restic_")) / 1024
row("peak RSS MiB", peak_s, peak_r, "  ", False)
print("(ratio > 1 means snapfs is better: faster, smaller or leaner)")
PY
