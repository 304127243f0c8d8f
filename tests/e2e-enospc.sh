#!/bin/sh
# A full disk during restore: ENOSPC is reported (exit 9), the file being
# written is removed, the repository is untouched.  Needs root for a small
# tmpfs; skipped (77) otherwise.
. "$TESTLIB"

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root to mount a small tmpfs"
	exit 77
fi
mkdir -p "$T/src/g" "$T/small"
head -c $((1 << 20)) /dev/urandom >"$T/src/g/a-small"
head -c $((40 << 20)) /dev/urandom >"$T/src/g/b-big"
r="$T/repo"
snapctl -r "$r" init --no-encryption >/dev/null
snapctl -r "$r" backup --label space -q "$T/src/g"
before=$(find "$r" -type f -exec sha256sum {} + | sort | sha256sum)

mount -t tmpfs -o size=16m tmpfs "$T/small"
on_exit "umount '$T/small'"
say "restore 41 MiB into a 16 MiB filesystem"
# Workers write both files at once: which one meets the full disk depends
# on scheduling.  Whichever it is, no partial file may stay behind.
expect_fail 9 "writing g/(a-small|b-big): No space left on device" \
	snapctl -r "$r" restore space --target "$T/small/out"
for f in a-small b-big; do
	[ ! -e "$T/small/out/g/$f" ] || cmp -s "$T/src/g/$f" "$T/small/out/g/$f" ||
		fail "partial $f left behind"
done
[ ! -e "$T/small/out/g/b-big" ] || fail "41 MiB restored into 16 MiB"
[ "$(find "$r" -type f -exec sha256sum {} + | sort | sha256sum)" = "$before" ] ||
	fail "repository changed"
echo "e2e-enospc: all good"
