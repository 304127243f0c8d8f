#!/bin/sh
# The whole write workflow against what a user would do instead, on the
# same corpus in one run: rsync -a into snapfs's control/ + commit,
# against
#   - rsync -a to a local directory, then snapctl backup of it (the
#     workflow control/ replaces), and
#   - rsync -a into rclone mount --vfs-cache-mode writes, until rclone has
#     uploaded everything (its close() returns before the upload: the
#     time runs until its rc API reports no upload queued or running),
# first on local directories, then on one S3 bucket (a RADOS Gateway
# started here) for snapfs and rclone.
#
# usage: contrib/bench/bench-writemount.sh [WORKDIR]   (as root, from a
#        build tree; rclone from contrib/install-deps.sh --bench)
#   FILES small files (default 20000) and BIG x 64 MiB (default 8), made
#   once in WORKDIR/corpus; ROUNDS (default 3) rounds of each, medians.
#   S3=0 skips the gateway.  WORKDIR defaults to /var/tmp (a real disk).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/contrib/bench/control-lib.sh"
command -v rclone >/dev/null || { echo "bench: needs rclone (contrib/install-deps.sh --bench)"; exit 1; }
files=${FILES:-20000}
big=${BIG:-8}
rounds=${ROUNDS:-3}
W=${1:-$(mktemp -d /var/tmp/snapfs-wbench.XXXXXX)}
mkdir -p "$W"
C="$W/corpus"
. "$top/tests/servers/common.sh"
make_corpus "$C" "$files" "$big"
mib=$(du -sm "$C" | cut -f1)
nfiles=$(find "$C" -type f | wc -l)

S="$W/snap-mnt" R="$W/rc-mnt"
snpid="" rcpid="" rgw=""
stop_mounts() {
	for m in "$S" "$R"; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	[ -n "$snpid" ] && wait "$snpid" 2>/dev/null || true
	[ -n "$rcpid" ] && wait "$rcpid" 2>/dev/null || true
	snpid="" rcpid=""
}
cleanup() {
	stop_mounts
	[ -n "$rgw" ] && sh "$top/tests/servers/rgw.sh" stop "$W/rgw"
	return 0
}
trap cleanup EXIT INT TERM
mounted() { # mounted DIR...: waits until each is a FUSE mount
	for m in "$@"; do
		for _ in $(seq 1 300); do
			grep -q " $m fuse" /proc/mounts && break
			sleep 0.1
		done
	done
}

# start REPO RCLONE_REMOTE: snapfs on REPO at $S, rclone on the remote at $R.
start() {
	rm -rf "$W/cache" "$W/rc-cache"
	mkdir -p "$S" "$R"
	"$snapfs" -f -o cache_dir="$W/cache"${SNAPFS_OPTS:+,$SNAPFS_OPTS} "$1" "$S" 2>>"$W/snapfs.log" &
	snpid=$!
	rcport=$(free_port)
	rclone mount "$2" "$R" --vfs-cache-mode writes --vfs-write-back 0s \
		--cache-dir "$W/rc-cache" --rc --rc-addr "127.0.0.1:$rcport" \
		--rc-no-auth 2>>"$W/rclone.log" &
	rcpid=$!
	mounted "$S" "$R"
}

# Until rclone's VFS has nothing left to upload.
rclone_drained() {
	while :; do
		st=$(rclone rc --url "http://127.0.0.1:$rcport/" vfs/stats)
		echo "$st" | python3 -c '
import json, sys
d = json.load(sys.stdin)["diskCache"]
sys.exit(0 if d["uploadsInProgress"] + d["uploadsQueued"] == 0 else 1)' && return 0
		sleep 0.2
	done
}
rclone_copy() { rsync -a "$C/" "$R/$1/" && rclone_drained; }
snap_copy() {
	mkdir "$S/control/$1"
	rsync -a "$C/" "$S/control/$1/g/"
	touch "$S/control/$1/.snapfs/commit"
}
disk_backup() {
	rm -rf "$W/disk"
	rsync -a "$C/" "$W/disk/"
	"$snapctl" -r "$2" backup --label "$1" -q "$W/disk"
}

# run WHERE REPO: ROUNDS rounds of the three (disk+backup on REPO too).
run() {
	sa="" da="" ra=""
	for r in $(seq 1 "$rounds"); do
		settle_deletes
		cold
		t=$(secs snap_copy "$1$r")
		sa="$sa $t"
		settle_deletes
		cold
		t=$(secs disk_backup "d$1$r" "$2")
		da="$da $t"
		settle_deletes
		cold
		t=$(secs rclone_copy "$1$r")
		ra="$ra $t"
		echo "$1 round $r: snapfs $(echo "$sa" | awk '{print $NF}') s, disk+backup $(echo "$da" | awk '{print $NF}') s, rclone $(echo "$ra" | awk '{print $NF}') s"
	done
	sm=$(echo "$sa" | median) dm=$(echo "$da" | median) rm_=$(echo "$ra" | median)
	printf '%-10s %12.2fs %12.2fs %12.2fs %9.2fx %9.2fx\n' "$1" "$sm" "$dm" "$rm_" \
		"$(calc "$dm / $sm")" "$(calc "$rm_ / $sm")" >>"$W/summary"
}

: >"$W/summary"
rm -rf "$W/repo" "$W/rc-back"
mkdir -p "$W/rc-back"
"$snapctl" -r "$W/repo" init --no-encryption -q
start "$W/repo" "$W/rc-back"
run local "$W/repo"
stop_mounts

if [ "${S3:-1}" = 1 ]; then
	rm -rf "$W/rgw"
	RGW_MEMSTORE_BYTES=$(( (mib * 4 + 4096) << 20 )) \
		sh "$top/tests/servers/rgw.sh" start "$W/rgw" >"$W/rgw.info"
	rgw=1
	set -- $(cat "$W/rgw.info")
	export AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3
	export RCLONE_CONFIG_RGW_TYPE=s3 RCLONE_CONFIG_RGW_PROVIDER=Ceph \
		RCLONE_CONFIG_RGW_ENDPOINT="http://127.0.0.1:$1" \
		RCLONE_CONFIG_RGW_ACCESS_KEY_ID=$2 RCLONE_CONFIG_RGW_SECRET_ACCESS_KEY=$3
	# The gateway is plain HTTP; rclone's AWS SDK refuses a CA bundle
	# from the environment with its own transport.
	unset AWS_CA_BUNDLE
	s3="s3://127.0.0.1:$1/bench/snap?secure=false"
	"$snapctl" -r "$s3" init --create-bucket --no-encryption -q
	rclone mkdir rgw:rclone
	start "$s3" rgw:rclone
	run s3 "$s3"
	stop_mounts
fi

echo
echo "$nfiles files, $mib MiB (WORKDIR $W, $(stat -f -c %T "$W")), medians of $rounds rounds"
printf '%-10s %13s %13s %13s %10s %10s\n' "" "snapfs" "disk+backup" "rclone" "vs disk" "vs rclone"
cat "$W/summary"
echo "snapfs: rsync into control/ + commit; disk+backup: rsync to local disk + snapctl backup;"
echo "rclone: rsync into rclone mount --vfs-cache-mode writes until uploaded.  Ratios > 1: snapfs faster."
