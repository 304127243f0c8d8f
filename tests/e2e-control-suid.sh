#!/bin/sh
# setuid and setgid in control/ behave as on a local disk: a write, a
# truncate or an O_TRUNC open by a writer without CAP_FSETID drops them
# (setgid only where group execute is on), a chown drops them for anyone,
# root's writes keep them, and the backup holds the modes the files were
# left with.  The kernel leaves the kill to the daemon (FUSE_HANDLE_KILLPRIV_V2,
# negotiated under libfuse 3.14 by fuse/wire.c) and in exchange stops
# asking for security.capability before every write: the daemon's
# request log (-d) shows none for 64 MiB written in 256 KiB writes.
. "$TESTLIB"

[ "$(id -u)" = 0 ] || { echo "needs root (FUSE)"; exit 77; }
keyed_repo repo
m="$T/m"
mount_repo "$r" "$m" -d
c="$m/control/privs"
mkdir -p "$c/g"
g="$c/g"
# root without CAP_FSETID: the writer the kernel flags.
unpriv() { setpriv --bounding-set=-fsetid --inh-caps=-fsetid -- "$@"; }
mode() { stat -c %a "$1"; }
for f in write trunc otrunc sgid-nogx chown root; do
	echo data >"$g/$f"
done
chmod 6755 "$g/write" "$g/trunc" "$g/otrunc" "$g/root" "$g/chown"
chmod 2764 "$g/sgid-nogx"

say "a write, truncate and O_TRUNC open without CAP_FSETID drop setuid and setgid"
unpriv sh -c "echo more >>'$g/write'" || fail "cannot append"
unpriv truncate -s 1 "$g/trunc" || fail "cannot truncate"
unpriv sh -c ": >'$g/otrunc'" || fail "cannot open O_TRUNC"
unpriv sh -c "echo more >>'$g/sgid-nogx'" || fail "cannot append"
[ "$(mode "$g/write")" = 755 ] || fail "write left mode $(mode "$g/write")"
[ "$(mode "$g/trunc")" = 755 ] || fail "truncate left mode $(mode "$g/trunc")"
[ "$(mode "$g/otrunc")" = 755 ] || fail "O_TRUNC open left mode $(mode "$g/otrunc")"
[ "$(mode "$g/sgid-nogx")" = 2764 ] || fail "setgid without group execute: mode $(mode "$g/sgid-nogx")"
[ "$(cat "$g/write")" = "data
more" ] || fail "the append: $(cat "$g/write")"
[ "$(cat "$g/trunc")" = "d" ] || fail "the truncate: $(cat "$g/trunc")"

say "a chown drops them, also root's; root's writes keep them"
chown nobody "$g/chown"
[ "$(mode "$g/chown")" = 755 ] || fail "chown left mode $(mode "$g/chown")"
echo more >>"$g/root"
[ "$(mode "$g/root")" = 6755 ] || fail "root's write left mode $(mode "$g/root")"
chmod 4755 "$g/chown"
[ "$(mode "$g/chown")" = 4755 ] || fail "chmod after chown: mode $(mode "$g/chown")"

say "the backup holds the modes"
touch "$c/.snapfs/commit" || fail "commit"
s="$m/series/$(ls "$m/series")/1/g"
for f in write:755 trunc:755 otrunc:755 sgid-nogx:2764 chown:4755 root:6755; do
	[ "$(mode "$s/${f%%:*}")" = "${f#*:}" ] ||
		fail "backup: ${f%%:*} has mode $(mode "$s/${f%%:*}"), not ${f#*:}"
done

say "64 MiB in 256 KiB writes: no security.capability asked"
mkdir -p "$m/control/big/g"
head -c $((64 << 20)) /dev/urandom >"$T/big"
before=$(grep -c 'opcode: GETXATTR' "$T/snapfs.log" || true)
dd if="$T/big" of="$m/control/big/g/f" bs=256k status=none
cmp "$T/big" "$m/control/big/g/f" || fail "64 MiB file reads back wrong"
n=$(($(grep -c 'opcode: GETXATTR' "$T/snapfs.log" || true) - before))
[ "$n" -le 1 ] || fail "$n GETXATTR requests for 256 writes (is killpriv_v2 off?)"
touch "$m/control/big/.snapfs/abort"
unmount_repo "$m" "$MOUNT_PID"
say "suid: all checks passed"
