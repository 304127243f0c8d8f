#!/bin/sh
# Streaming at scale: rsync -a of GIB x 1 GiB files into control/ + commit,
# sampling the daemon's memory and the stage's local disk while it runs,
# against snapctl backup of the same files, in one run.
#
# usage: contrib/bench/bench-stream.sh [WORKDIR]   (as root, from a build
#        tree; GIB defaults to 10; WORKDIR to /var/tmp, which needs room
#        for the files and two copies of them in repositories)
# Targets (issue 15): daemon peak RSS <= 256 MB; the stage holds a window
# of each file, not the files.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/contrib/bench/control-lib.sh"
[ -x /usr/bin/time ] || { echo "bench: needs /usr/bin/time"; exit 1; }
gib=${GIB:-10}
W=${1:-$(mktemp -d /var/tmp/snapfs-sbench.XXXXXX)}
mkdir -p "$W"
C="$W/src"
if [ "$(find "$C" -type f 2>/dev/null | wc -l)" != "$gib" ]; then
	echo "writing $gib x 1 GiB of random data to $C"
	rm -rf "$C"
	mkdir -p "$C"
	for i in $(seq 1 "$gib"); do
		head -c $((1 << 30)) /dev/urandom >"$C/f$i"
	done
fi
S="$W/mnt"
snpid=""
cleanup() {
	fusermount3 -u "$S" 2>/dev/null || umount -l "$S" 2>/dev/null || true
	[ -n "$snpid" ] && wait "$snpid" 2>/dev/null || true
	return 0
}
trap cleanup EXIT INT TERM
rm -rf "$W/repo" "$W/repo2" "$W/cache" "$W/stage"
mkdir -p "$S"
"$snapctl" -r "$W/repo" init --no-encryption -q
"$snapfs" -f -o cache_dir="$W/cache",stage_dir="$W/stage"${SNAPFS_OPTS:+,$SNAPFS_OPTS} \
	"$W/repo" "$S" 2>"$W/snapfs.log" &
snpid=$!
for _ in $(seq 1 100); do
	grep -q " $S fuse" /proc/mounts && break
	sleep 0.1
done
mkdir "$S/control/stream"
cold
rss0=$(awk '/^VmRSS/ {print $2}' /proc/$snpid/status)
t0=$(date +%s.%N)
rsync -a "$C/" "$S/control/stream/g/" &
rs=$!
peak_stage=0
while kill -0 $rs 2>/dev/null; do
	k=$(du -sk "$W/stage/stream/data" 2>/dev/null | cut -f1)
	[ "${k:-0}" -gt "$peak_stage" ] && peak_stage=$k
	sleep 0.5
done
wait $rs || { echo "bench: rsync failed"; exit 1; }
t1=$(date +%s.%N)
touch "$S/control/stream/.snapfs/commit"
t2=$(date +%s.%N)
hwm=$(awk '/^VmHWM/ {print $2}' /proc/$snpid/status)
cleanup
snpid=""
"$snapctl" -r "$W/repo2" init --no-encryption -q
cold
t3=$(date +%s.%N)
/usr/bin/time -f %M -o "$W/rss" "$snapctl" -r "$W/repo2" backup --label stream -q "$C"
t4=$(date +%s.%N)

echo
echo "$gib GiB in $gib files (WORKDIR $W, $(df -T "$W" | awk 'NR==2{print $2}'))"
printf 'rsync into control/ %8.1fs + commit %6.1fs   %6.0f MiB/s\n' \
	"$(calc "$t1 - $t0")" "$(calc "$t2 - $t1")" "$(calc "$gib * 1024 / ($t2 - $t0)")"
printf 'snapctl backup      %8.1fs                  %6.0f MiB/s   ratio %.2fx\n' \
	"$(calc "$t4 - $t3")" "$(calc "$gib * 1024 / ($t4 - $t3)")" "$(calc "($t4 - $t3) / ($t2 - $t0)")"
printf 'daemon peak RSS     %8.0f MB (at mount: %.0f MB); snapctl backup %.0f MB\n' \
	"$(calc "$hwm / 1000")" "$(calc "$rss0 / 1000")" "$(calc "$(cat "$W/rss") / 1000")"
printf 'stage local disk    %8.0f MB at most (files of 1024 MiB)\n' "$(calc "$peak_stage / 1000")"
