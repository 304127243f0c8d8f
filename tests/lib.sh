# Shared helpers for the end-to-end tests (sourced, POSIX sh + bash-isms
# avoided).  Every test gets a private scratch directory that is removed on
# exit, whatever happened; tests register extra cleanup with on_exit.
set -eu

: "${SNAPCTL:?run through make check}"
TESTS_DIR=${TOP_SRCDIR:-.}/tests
T=$(mktemp -d "${TMPDIR:-/tmp}/snapfs-test.XXXXXX")
CLEANUP=""

on_exit() { CLEANUP="$1; $CLEANUP"; }

cleanup() {
	rc=$?
	set +e
	eval "$CLEANUP"
	chmod -R u+rwX "$T" 2>/dev/null
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# snapctl, under valgrind when SNAPFS_VALGRIND=1 (make check-valgrind).
snapctl() {
	if [ "${SNAPFS_VALGRIND:-0}" = 1 ]; then
		valgrind -q --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite "$SNAPCTL" "$@"
	else
		"$SNAPCTL" "$@"
	fi
}

# expect_fail CODE PATTERN CMD...: CMD must exit with CODE and print a
# one-line error matching PATTERN (grep -E) on stderr.
expect_fail() {
	want=$1 pat=$2
	shift 2
	set +e
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	set -e
	if [ "$got" != "$want" ]; then
		cat "$T/err" >&2
		fail "'$*' exited $got, wanted $want"
	fi
	grep -Eq "$pat" "$T/err" || {
		cat "$T/err" >&2
		fail "'$*': stderr does not match /$pat/"
	}
	if grep -Eq 'Sanitizer|runtime error|definitely lost' "$T/err"; then
		cat "$T/err" >&2
		fail "'$*': sanitizer or valgrind report"
	fi
	printf '   ok (exit %s): %s\n' "$got" "$(grep -Em1 "$pat" "$T/err")"
}

# flip_byte FILE OFFSET: inverts one byte (appends one past the end), so
# the file surely changes (writing a fixed byte is a no-op 1 time in 256).
flip_byte() {
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xFF]) if b else b"X")
' "$1" "$2"
}

# zk_force: "--force" where this user cannot inspect every process (not
# root, or root short of a capability that some process holds), which the
# ZooKeeper helper refuses without; "" where it sees them all.
zk_force() {
	for p in /proc/[0-9]*; do
		readlink "$p/cwd" >/dev/null 2>&1 && continue
		# Gone meanwhile, or a zombie (no cwd): nothing to inspect.
		grep -qs '^State:[[:space:]]*[^Z]' "$p/status" || continue
		echo --force
		return
	done
}

# same_tree A B: content and every kept piece of metadata are identical.
same_tree() {
	python3 "$TESTS_DIR/treesum.py" "$1" >"$T/sum.a"
	python3 "$TESTS_DIR/treesum.py" "$2" >"$T/sum.b"
	if ! cmp -s "$T/sum.a" "$T/sum.b"; then
		diff "$T/sum.a" "$T/sum.b" | head -n 20 >&2
		fail "trees differ: $1 vs $2"
	fi
}

# The store under test: file (default), s3 or azure.  The remote drivers
# (e2e-s3.sh, e2e-azure.sh) start the servers and export what these need.
STORE=${SNAPFS_TEST_STORE:-file}

# cont_fails PID ERR PATTERN: resumes the stopped background command PID,
# which must then fail, saying PATTERN (grep) in its stderr file ERR.
cont_fails() {
	kill -CONT "$1"
	set +e
	wait "$1"
	cf_rc=$?
	set -e
	[ "$cf_rc" != 0 ] || fail "the stopped command succeeded once resumed"
	grep -q "$3" "$2" || { cat "$2" >&2; fail "its message is not '$3'"; }
	echo "exited $cf_rc: $(tail -n 1 "$2")"
}

# repo_url NAME: a fresh repository location on the store under test.
repo_url() {
	case "$STORE" in
	file) echo "$T/$1" ;;
	s3) echo "s3://127.0.0.1:$S3_PORT/$S3_BUCKET/$(basename "$T")-$1?secure=false" ;;
	azure) echo "azure://devstoreaccount1/$AZ_CONTAINER/$(basename "$T")-$1?endpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1" ;;
	esac
}

# repo_init URL [init options]: init, creating the bucket when remote.
repo_init() {
	url=$1
	shift
	if [ "$STORE" = file ]; then
		snapctl -r "$url" init "$@" >/dev/null
	else
		snapctl -r "$url" init --create-bucket "$@" >/dev/null
	fi
}

# keyed_repo NAME: a repository encrypted with a fresh key file (exported
# as SNAPFS_KEY_FILE for snapctl and the daemon); its URL in $r.
keyed_repo() {
	head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
	export SNAPFS_KEY_FILE="$T/key"
	r=$(repo_url "$1")
	repo_init "$r" --encryption-key-file "$T/key"
}

# Bytes stored in a repository, whatever the store (all objects).
repo_bytes() { snapctl -r "$1" stats --json | json_get bytes; }

json_get() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# mount_repo REPO MNT [snapfs options]: runs the daemon in the foreground
# (the test owns its pid, in $MOUNT_PID), waits until the mount answers and
# registers the unmount, which happens whatever the outcome.  The daemon's
# stderr goes to $T/snapfs.log; SNAPFS_VALGRIND=1 runs it under valgrind.
mount_repo() {
	repo=$1 mnt=$2
	shift 2
	[ -n "${SNAPFS:-}" ] && [ -x "$SNAPFS" ] || {
		echo "snapfs not built (configure --disable-fuse?): skipped"
		exit 77
	}
	mkdir -p "$mnt"
	# A disk cache of the test's own (also on local stores, to cover it).
	set -- -o "cache_dir=$T/cache" "$@"
	if [ "${SNAPFS_VALGRIND:-0}" = 1 ]; then
		valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
			"$SNAPFS" -f "$@" "$repo" "$mnt" 2>>"$T/snapfs.log" &
	else
		"$SNAPFS" -f "$@" "$repo" "$mnt" 2>>"$T/snapfs.log" &
	fi
	MOUNT_PID=$!
	on_exit "unmount_repo '$mnt' $MOUNT_PID"
	for _ in $(seq 1 300); do
		is_mounted "$mnt" && return 0
		kill -0 "$MOUNT_PID" 2>/dev/null || {
			cat "$T/snapfs.log" >&2
			fail "snapfs exited before mounting $mnt"
		}
		sleep 0.1
	done
	fail "$mnt not mounted after 30 s"
}

is_mounted() { grep -q " $1 fuse.snapfs " /proc/self/mounts; }

# unmount_repo MNT PID: SIGTERM (the daemon unmounts itself), then force.
unmount_repo() {
	kill -TERM "$2" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$2" 2>/dev/null || true
	! is_mounted "$1" || fusermount3 -uz "$1" 2>/dev/null
	daemon_log_clean
}

# The daemon's log must hold no sanitizer, valgrind or crash report.
daemon_log_clean() {
	if [ -f "$T/snapfs.log" ] && grep -Eq 'Sanitizer|runtime error|definitely lost|Invalid (read|write)|uninitialised|Segmentation' "$T/snapfs.log"; then
		cat "$T/snapfs.log" >&2
		fail "snapfs daemon: sanitizer, valgrind or crash report"
	fi
}

# mount_stat MNT NAME: a counter of the mount's caches (see snapfs(1)).
mount_stat() {
	getfattr --absolute-names --only-values -n user.snapfs.stats "$1" | awk -v k="$2" '$1 == k { print $2 }'
}

# retime_dirs DIR: past times (with nanoseconds) on DIR's directories.
# rsync compares times to the second: a directory that rsync changes on
# the destination in the same second as its source changed keeps a time
# that differs in its nanoseconds only (on any filesystem).
retime_dirs() {
	python3 - "$1" <<'PY'
import os, random, sys
rng = random.Random(7)
for d, _, _ in os.walk(sys.argv[1], topdown=False):
    t = 1_650_000_000_000_000_000 + rng.randrange(10**17)
    os.utime(d, ns=(t, t))
PY
}
