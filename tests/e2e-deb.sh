#!/bin/sh
# The Debian package: dpkg-buildpackage -us -uc -b builds it from a copy
# of the tracked tree (DEB_BUILD_OPTIONS=nocheck: this suite is the
# check), lintian passes it (--fail-on warning, no overrides needed),
# dpkg installs it, and the installed files work: a backup and a
# restore with /usr/bin/snapctl, a mount with /usr/bin/snapfs, the manual
# pages, the bash completion and the systemd units where they belong.
# Removed again at the end; skipped where the package is installed
# already (it is not ours to replace).
. "$TESTLIB"

command -v dpkg-buildpackage >/dev/null && command -v lintian >/dev/null ||
	{ echo "SKIP: dpkg-buildpackage or lintian missing (contrib/install-deps.sh)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: installing the package needs root"; exit 77; }
if dpkg-query -W -f='${Status}' snapfs 2>/dev/null | grep -q "install ok installed"; then
	echo "SKIP: a snapfs package is installed on this machine"
	exit 77
fi

say "dpkg-buildpackage -us -uc -b in a copy of the tree"
mkdir -p "$T/deb/snapfs"
top=$(cd "$TOP_SRCDIR" && pwd -P)
if [ "$(git -C "$top" rev-parse --show-toplevel 2>/dev/null)" = "$top" ]; then
	# A checkout: what git tracks or would, as it is in the work tree;
	# products of an in-place build stay out.
	git -C "$top" ls-files -z -c -o --exclude-standard |
		(cd "$top" && rsync -a --from0 --files-from=- . "$T/deb/snapfs/")
elif [ ! -e "$top/config.status" ]; then
	# A clean source copy (CI's _build/src, a distribution tree).
	rsync -a --exclude autom4te.cache --exclude _build "$top/" "$T/deb/snapfs/"
else
	echo "SKIP: a source tree configured in place and not a git checkout"
	exit 77
fi
(cd "$T/deb/snapfs" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
	dpkg-buildpackage -us -uc -b >"$T/build.log" 2>&1) ||
	{ tail -n 30 "$T/build.log" >&2; fail "dpkg-buildpackage failed"; }
deb=$(ls "$T"/deb/snapfs_*_*.deb)
echo "   $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"

say "lintian: clean (errors and warnings fail it)"
lintian --fail-on error,warning "$T"/deb/snapfs_*.changes >"$T/lintian.log" 2>&1 ||
	{ cat "$T/lintian.log" >&2; fail "lintian"; }
# (Its note that it runs as root is no finding.)
grep -v "running with root privileges" "$T/lintian.log" | sed "s/^/   /"

say "dpkg -i, and the installed files work"
on_exit "dpkg -r snapfs >/dev/null 2>&1"
dpkg -i "$deb" >"$T/dpkg.log" 2>&1 || { cat "$T/dpkg.log" >&2; fail "dpkg -i"; }
for f in /usr/bin/snapctl /usr/bin/snapfs /usr/share/man/man1/snapctl.1.gz \
	/usr/share/man/man1/snapfs.1.gz /usr/share/man/man5/snapfs.5.gz \
	/usr/share/bash-completion/completions/snapctl \
	/lib/systemd/system/snapctl-backup@.service /lib/systemd/system/snapctl-backup@.timer \
	/usr/share/doc/snapfs/copyright /usr/share/doc/snapfs/examples/example.env; do
	[ -e "$f" ] || fail "the package lacks $f"
done
grep -q '^ExecStart=/usr/bin/snapctl backup' /lib/systemd/system/snapctl-backup@.service ||
	fail "the installed unit does not run /usr/bin/snapctl"
/usr/bin/snapctl --version
mkdir -p "$T/src"
head -c 500000 /dev/urandom >"$T/src/f"
/usr/bin/snapctl -r "$T/repo" init -q --no-encryption
/usr/bin/snapctl -r "$T/repo" backup -q --label pkg "$T/src"
/usr/bin/snapctl -r "$T/repo" restore pkg -q --target "$T/out"
cmp "$T/src/f" "$T/out/src/f" || fail "restore with the installed snapctl"
SNAPFS=/usr/bin/snapfs
mount_repo "$T/repo" "$T/mnt"
cmp "$T/src/f" "$T/mnt/labels/pkg/latest/src/f" || fail "read through the installed snapfs"
unmount_repo "$T/mnt" "$MOUNT_PID"
if command -v man >/dev/null; then
	man -w snapctl | grep -q '^/usr/share/man/man1/snapctl.1.gz$' || fail "man -w snapctl"
fi
bash -c '. /usr/share/bash-completion/completions/snapctl && complete -p snapctl' |
	grep -q '_snapctl' || fail "the completion does not load"

say "dpkg -r leaves nothing behind"
dpkg -r snapfs >/dev/null
for f in /usr/bin/snapctl /usr/bin/snapfs /lib/systemd/system/snapctl-backup@.service; do
	[ ! -e "$f" ] || fail "$f stayed after dpkg -r"
done
echo "deb: all passed"
