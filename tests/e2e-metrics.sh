#!/bin/sh
# Metrics the way operators collect them: snapctl --metrics-file and the
# mount's -o metrics_file= read by a real node_exporter (Debian's
# prometheus-node-exporter, textfile collector), started here on a free
# port: it must parse every file without a scrape error and show the
# figures of what the mount did.
. "$TESTLIB"
. "$TESTS_DIR/servers/common.sh"

NE=$(command -v prometheus-node-exporter || true)
[ -n "$NE" ] || { echo "SKIP: prometheus-node-exporter not installed"; exit 77; }
r=$(repo_url metrics)
repo_init "$r" --no-encryption
D="$T/textfiles"
mkdir -p "$D" "$T/src"
head -c 3000000 /dev/urandom >"$T/src/f"
snapctl -r "$r" backup --label met -q --metrics-file "$D/snapctl.prom" "$T/src"
snapctl -r "$r" check -q --metrics-file "$D/snapctl.prom"

port=$(free_port)
"$NE" --web.listen-address="127.0.0.1:$port" --collector.disable-defaults \
	--collector.textfile --collector.textfile.directory="$D" \
	>"$T/ne.log" 2>&1 &
echo $! >"$T/ne.pid"
on_exit "kill \$(cat '$T/ne.pid') 2>/dev/null"
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break
	sleep 0.1
done
scrape() { curl -sf "http://127.0.0.1:$port/metrics" >"$T/scrape" || fail "node_exporter does not answer"; }
# value NAME LABEL-SUBSTRING[;SUBSTRING]: the value of the first sample
# matching them all (node_exporter sorts the labels).
value() {
	grep "^$1{" "$T/scrape" | grep -F "${2%%;*}" | grep -F "${2#*;}" |
		head -n 1 | awk '{print $2}'
}
# at_least NAME LABEL-SUBSTRING N (node_exporter writes 3.00046e+06).
at_least() { awk -v v="$(value "$1" "$2")" -v n="$3" 'BEGIN { exit !(v != "" && v + 0 >= n) }'; }
# equals NAME LABEL-SUBSTRING N
equals() { awk -v v="$(value "$1" "$2")" -v n="$3" 'BEGIN { exit !(v != "" && v + 0 == n) }'; }
no_scrape_error() {
	grep -q '^node_textfile_scrape_error 0$' "$T/scrape" || {
		grep textfile "$T/scrape" >&2; cat "$T/ne.log" >&2
		fail "node_exporter could not parse a textfile"
	}
}

say "snapctl's textfile, as node_exporter reads it"
scrape
no_scrape_error
equals snapfs_last_exit_status 'command="backup";label="met"' 0 || fail "backup exit status"
at_least snapfs_bytes_added 'command="backup"' 3000000 || fail "bytes added"

say "the mount's textfile: caches and control/ labels, rewritten every second"
mount_repo "$r" "$T/mnt" -o metrics_file="$D/mount.prom",metrics_interval=1
cmp "$T/src/f" "$T/mnt/labels/met/latest/src/f"
mkdir "$T/mnt/control/met2"
cp -a "$T/src" "$T/mnt/control/met2/"
sleep 1.5
scrape
no_scrape_error
equals snapfs_mount_up "mountpoint=\"$T/mnt\"" 1 || fail "mount_up"
at_least snapfs_mount_cache_fetched_bytes_total '' 3000000 || fail "fetched bytes"
equals snapfs_control_state 'label="met2";state="STATUS_STAGING"' 1 || fail "staging state"
equals snapfs_control_staged_bytes 'label="met2"' 3000000 || fail "staged bytes"
touch "$T/mnt/control/met2/.snapfs/commit"
sleep 1.5
scrape
no_scrape_error
equals snapfs_control_state 'label="met2";state="STATUS_READY"' 1 || fail "ready after the commit"
at_least snapfs_control_last_commit_bytes_added 'label="met2"' 3000000 || fail "commit bytes"
equals snapfs_control_last_commit_files 'label="met2"' 1 || fail "commit files"
end=$(value snapfs_control_last_commit_timestamp_seconds 'label="met2"')
python3 -c "import sys, time; sys.exit(0 if abs(time.time() - float('$end')) < 60 else 1)" ||
	fail "commit time $end"
grep '^snapfs_control' "$T/scrape" | sed 's/^/   /'

say "after unmount the file says so"
unmount_repo "$T/mnt" "$MOUNT_PID"
scrape
equals snapfs_mount_up "mountpoint=\"$T/mnt\"" 0 || fail "mount_up after unmount"

say "a metrics file that cannot be written fails the mount, with its name"
mkdir -p "$T/mnt2"
set +e
"$SNAPFS" -f -o metrics_file="$T/no/such/dir/m.prom" "$r" "$T/mnt2" 2>"$T/err"
rc=$?
set -e
[ "$rc" != 0 ] && grep -q "metrics file $T/no/such/dir/m.prom" "$T/err" ||
	{ cat "$T/err" >&2; fail "a bad metrics_file did not fail the mount (rc $rc)"; }
is_mounted "$T/mnt2" && fail "mounted with a bad metrics_file"
echo "   $(cat "$T/err")"
echo "metrics: all passed"
