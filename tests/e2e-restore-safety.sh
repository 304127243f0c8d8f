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

say "a directory swapped for a symlink during the restore"
# a/f has two more names, z/l1 and z/l2, linked after a/f is created.
# When the restore enters the first linkat, the hostile owner of the
# target moves a/ away and puts a symlink to a directory of its choice in
# its place, holding a file f of the same name.
mkdir -p "$T/hsrc/a" "$T/hsrc/z" "$T/outside"
echo restored >"$T/hsrc/a/f"
ln "$T/hsrc/a/f" "$T/hsrc/z/l1"
ln "$T/hsrc/a/f" "$T/hsrc/z/l2"
chmod 700 "$T/hsrc/a"
snapctl backup -q --label links g="$T/hsrc"
echo secret >"$T/outside/f"
chmod 755 "$T/outside"
# swapped_restore TARGET [sysfilter options]: the restore, with the swap
swapped_restore() {
	tgt=$1
	shift
	expect_fail 10 "g/z/l2: link: g/a/f: refusing to restore through a symlink" \
		"$SYSFILTER" "$@" -x "linkat@1=mv '$tgt/g/a' '$tgt/g/a.moved' &&
			ln -s '$T/outside' '$tgt/g/a'" \
		-- "$SNAPCTL" restore links --target "$tgt"
	# l1: its directory was open before the swap; the link is to the
	# file restored.  l2: refused.  Nothing outside changed.
	[ "$(stat -c %i "$tgt/g/z/l1")" = "$(stat -c %i "$tgt/g/a.moved/f")" ] ||
		fail "z/l1 is not the restored a/f"
	[ ! -e "$tgt/g/z/l2" ] || fail "z/l2 linked through the symlink"
	[ "$(stat -c %h "$T/outside/f")" = 1 ] || fail "a file outside the target was linked"
	[ "$(stat -c %a "$T/outside")" = 755 ] || fail "chmod went through the symlink"
	[ "$(cat "$T/outside/f")" = secret ] || fail "outside file changed"
}
swapped_restore "$T/ht"

say "openat2 denied (EPERM) or missing (ENOSYS): the fallback refuses the same"
for err in EPERM ENOSYS; do
	"$SYSFILTER" -e openat2=$err -- "$SNAPCTL" restore links --target "$T/o2-$err" -q
	same_tree "$T/hsrc" "$T/o2-$err/g"
	swapped_restore "$T/ht-$err" -e openat2=$err
done

echo "e2e-restore-safety: all good"
