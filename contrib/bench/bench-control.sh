#!/bin/sh
# The write side: rsync into a snapfs mount's control/ against the same
# rsync into libfuse's passthrough_ll example (the FUSE floor: what any
# FUSE filesystem costs per file on this machine), one run, same data.
#
# usage: contrib/bench/bench-control.sh [WORKDIR]   (as root; needs rsync, cc)
#        SNAPFS_OPTS=no_writeback ...   (more -o options for snapfs)
#
# Data: FILES small files (default 20000, 1-30 KB) and a few 64 MiB files.
# Everything (sources, passthrough's backing directory, snapfs's stage and
# repository) lives in WORKDIR, so put it on the disk to measure (default
# /var/tmp: a real disk, not tmpfs).  For each of ROUNDS rounds (default 3),
# alternating the two: rsync -a of the tree into a fresh directory of each
# (snapfs: a fresh label, then the commit, timed apart), then a no-change
# rsync -a --delete.  Prints medians, per-file costs and the snapfs /
# passthrough ratios (< 1.5 is the target for the per-file cost).  With
# restic installed, also a no-change backup: rsync --delete + commit
# against restic backup of the same unchanged tree (at FILES=100000, the
# scale of the target: no slower than restic).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/contrib/bench/control-lib.sh"
files=${FILES:-20000}
rounds=${ROUNDS:-3}
ex=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
[ -f "$ex" ] || { echo "bench: needs $ex (apt-get install libfuse3-dev)"; exit 1; }
W=${1:-$(mktemp -d /var/tmp/snapfs-cbench.XXXXXX)}
mkdir -p "$W"
C="$W/corpus"

make_corpus "$C" "$files" 4
nfiles=$(find "$C" -type f | wc -l)

# libfuse's example, built from Debian's copy (nothing of it is ours).
pt="$W/passthrough_ll"
[ -x "$pt" ] || cc -O2 -o "$pt" "$ex" $(pkg-config --cflags --libs fuse3)

P="$W/pt-mnt" S="$W/snap-mnt"
# Every run starts from nothing but the corpus.
rm -rf "$W/pt-back" "$W/repo" "$W/cache"
mkdir -p "$P" "$S" "$W/pt-back"
"$snapctl" -r "$W/repo" init --no-encryption >/dev/null
ptpid="" snpid=""
stop() {
	for m in "$P" "$S"; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	[ -n "$ptpid" ] && wait "$ptpid" 2>/dev/null || true
	[ -n "$snpid" ] && wait "$snpid" 2>/dev/null || true
}
trap stop EXIT INT TERM
# passthrough_ll holds a descriptor per inode it has looked up: 100k
# files need more than a default limit (where it may be raised; a
# sandbox that caps it at 20000 fails past ~50k files).
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$pt" -f -o source="$W/pt-back" "$P" 2>"$W/pt.log" &
ptpid=$!
"$snapfs" -f -o cache_dir="$W/cache"${SNAPFS_OPTS:+,$SNAPFS_OPTS} "$W/repo" "$S" 2>"$W/snapfs.log" &
snpid=$!
for _ in $(seq 1 100); do
	grep -q " $P fuse" /proc/mounts && grep -q " $S fuse" /proc/mounts && break
	sleep 0.1
done

pa="" sa="" sc="" pn="" sn=""
for r in $(seq 1 "$rounds"); do
	settle_deletes
	cold
	t=$(secs rsync -a "$C/" "$P/r$r/")
	pa="$pa $t"
	mkdir "$S/control/bench$r"
	cold
	t=$(secs rsync -a "$C/" "$S/control/bench$r/g/")
	sa="$sa $t"
	t=$(secs touch "$S/control/bench$r/.snapfs/commit")
	sc="$sc $t"
	t=$(secs rsync -a --delete "$C/" "$P/r$r/")
	pn="$pn $t"
	t=$(secs rsync -a --delete "$C/" "$S/control/bench$r/g/")
	sn="$sn $t"
	echo "round $r: passthrough rsync$(echo "$pa" | awk '{print $NF}') s, snapfs rsync$(echo "$sa" | awk '{print $NF}') s + commit$(echo "$sc" | awk '{print $NF}') s; no-change$(echo "$pn" | awk '{print $NF}') /$(echo "$sn" | awk '{print $NF}') s"
done
# Putting old files back: cp(1) of the big files from a backup into the
# next one (copy_file_range by reference) against cp on passthrough.
ser=$(ls "$S/series" | grep '^bench1-' | head -n 1)
mkdir -p "$P/r1/restored" "$S/control/bench1/g/restored"
sync
echo 3 >/proc/sys/vm/drop_caches
pcp=$(secs cp "$C/big/"* "$P/r1/restored/")
scp=$(secs cp "$S/series/$ser/1/g/big/"* "$S/control/bench1/g/restored/")
scm=$(secs touch "$S/control/bench1/.snapfs/commit")
stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_commit"]["bytes_new"])' "$S/control/bench1/.snapfs/status")
bigmb=$(du -sm "$C/big" | awk '{print $1}')
# Large files into a new series: rsync into control/ + commit against
# snapctl backup of the same files (both store every byte).
sync
echo 3 >/proc/sys/vm/drop_caches
mkdir "$S/control/bigc"
lrs=$(secs rsync -a "$C/big/" "$S/control/bigc/g/")
lcm=$(secs touch "$S/control/bigc/.snapfs/commit")
sync
echo 3 >/proc/sys/vm/drop_caches
lsb=$(secs "$snapctl" -r "$W/repo" backup --label bigs -q "$C/big")

# The no-change backup a scheduler runs: rsync --delete + commit of the
# unchanged tree into control/ (its last commit holds it) against restic
# backup of it (after a first, untimed one), both from a cold cache.
rnc="" snc=""
if command -v restic >/dev/null; then
	export RESTIC_PASSWORD=bench RESTIC_REPOSITORY="$W/restic"
	rm -rf "$W/restic"
	restic init -q >/dev/null
	restic backup -q "$C" >/dev/null
	nochange() {
		rsync -a --delete "$C/" "$S/control/bench2/g/"
		touch "$S/control/bench2/.snapfs/commit"
	}
	for r in $(seq 1 "$rounds"); do
		cold
		t=$(secs restic backup -q "$C")
		rnc="$rnc $t"
		cold
		t=$(secs nochange)
		snc="$snc $t"
	done
fi

mpa=$(echo "$pa" | median) msa=$(echo "$sa" | median) msc=$(echo "$sc" | median)
mpn=$(echo "$pn" | median) msn=$(echo "$sn" | median)
echo
echo "$nfiles files, medians of $rounds rounds (WORKDIR $W, $(df -T "$W" | awk 'NR==2{print $2}'))"
printf '%-32s %10s %10s %8s\n' "" passthrough snapfs ratio
printf '%-32s %9.2fs %9.2fs %7.2fx\n' "rsync -a into an empty tree" "$mpa" "$msa" "$(calc "$msa / $mpa")"
printf '%-32s %8.3fms %8.3fms\n' "  per file" "$(calc "$mpa * 1000 / $nfiles")" "$(calc "$msa * 1000 / $nfiles")"
printf '%-32s %10s %9.2fs\n' "commit (snapfs only)" "" "$msc"
printf '%-32s %9.2fs %9.2fs %7.2fx\n' "no-change rsync -a --delete" "$mpn" "$msn" "$(calc "$msn / $mpn")"
[ -n "$rnc" ] && printf '%-32s %9.2fs %9.2fs %7.2fx  (restic backup vs rsync --delete + commit)\n' \
	"no-change backup" "$(echo "$rnc" | median)" "$(echo "$snc" | median)" \
	"$(calc "$(echo "$snc" | median) / $(echo "$rnc" | median)")"
printf '%-32s %9.2fs %9.2fs %7.2fx\n' "cp ${bigmb} MiB back from a backup" "$pcp" "$scp" "$(calc "$scp / $pcp")"
printf '%-32s %10s %9.2fs  (%s bytes stored)\n' "  its commit (snapfs only)" "" "$scm" "$stored"
printf '%-32s %9.2fs %9.2fs %7.2fx\n' "${bigmb} MiB new: backup vs rsync+commit" "$lsb" "$(calc "$lrs + $lcm")" "$(calc "$lsb / ($lrs + $lcm)")"
printf '%-32s %10s  (rsync %.2fs + commit %.2fs; the ratio is throughput, >= 0.8 is the target)\n' "" "" "$lrs" "$lcm"
