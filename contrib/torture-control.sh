#!/bin/sh
# Crash torture of the mount's write side: tests/e2e-control-crash.sh with
# many seeded trials of each kill (during rsync into control/, during a
# commit), on a local repository and, with S3=1, on a RADOS Gateway that
# the run starts.  CI runs the same test with two trials of each.
#
# usage: contrib/torture-control.sh [TRIALS]     (as root, from a build
#        tree: SNAPCTL, SNAPFS default to ./snapctl, ./snapfs)
# Prints one line per store with the outcome; the test's log is kept in
# /tmp/torture-control.*.log.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
trials=${1:-20}
export SNAPCTL=${SNAPCTL:-$PWD/snapctl} SNAPFS=${SNAPFS:-$PWD/snapfs}
export MKHOSTILE=${MKHOSTILE:-$PWD/tests/mkhostile}
export TESTLIB="$top/tests/lib.sh" TOP_SRCDIR="$top"
export SNAPFS_CRASH_TRIALS="$trials"
[ -x "$SNAPCTL" ] && [ -x "$SNAPFS" ] || { echo "run from a build tree (or set SNAPCTL, SNAPFS)"; exit 2; }

run() { # run NAME: the crash test on the store the environment names
	log=/tmp/torture-control.$1.log
	t0=$(date +%s)
	if sh "$top/tests/e2e-control-crash.sh" >"$log" 2>&1; then
		echo "$1: $trials + $trials kill trials passed in $(($(date +%s) - t0)) s ($log)"
	else
		echo "$1: FAILED after $(($(date +%s) - t0)) s; see $log"
		tail -n 20 "$log"
		return 1
	fi
}

rc=0
run file || rc=1
if [ "${S3:-0}" = 1 ]; then
	# The gateway comes from the test harness; it is stopped on exit.
	sh -c '
		. "$TESTLIB"
		. "$TESTS_DIR/remote.sh"
		start_rgw
		export SNAPFS_TEST_STORE=s3 S3_BUCKET=torture
		snapctl -r "s3://127.0.0.1:$S3_PORT/torture/probe?secure=false" init --no-encryption --create-bucket -q
		sh "$TOP_SRCDIR/tests/e2e-control-crash.sh"
	' >/tmp/torture-control.s3.log 2>&1 && echo "s3: $trials + $trials kill trials passed" ||
		{ echo "s3: FAILED; see /tmp/torture-control.s3.log"; rc=1; }
fi
exit $rc
