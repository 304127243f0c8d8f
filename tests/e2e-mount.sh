#!/bin/sh
# The read-side mount: every backup of several series is browsable and
# identical to its source (content and metadata); reads at random offsets;
# concurrent readers; laziness (what a listing and a read fetch); new
# backups appear after the refresh interval; read-only; a corrupt pack is
# EIO for its file only; wrong key; unmount with a reader active; the
# mount(8) / fstab invocation.
. "$TESTLIB"

python3 "$TESTS_DIR/mkcorpus.py" "$T/src/d" --small 1500 >/dev/null
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	"$T/src/d/special/sock"
head -c $((24 << 20)) /dev/urandom >"$T/src/d/big.bin"
mkdir -p "$T/src2/g1" "$T/src2/g2"
echo one >"$T/src2/g1/f"
echo two >"$T/src2/g2/f"
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
export SNAPFS_KEY_FILE="$T/key"
r=$(repo_url repo)
repo_init "$r" --encryption-key-file "$T/key"

say "three backups of alpha, one of beta (two groups), a new alpha series"
for i in 1 2 3; do
	snapctl -r "$r" backup --label alpha -q "$T/src/d"
	cp -a "$T/src/d" "$T/state$i"
	echo "change $i" >>"$T/src/d/names/with space"
	echo "new $i" >"$T/src/d/new-$i"
	rm -f "$T/src/d/small/d01/e1/f0000$i.dat"
done
snapctl -r "$r" backup --label beta -q "$T/src2/g1" "$T/src2/g2"
head -c $((16 << 20)) /dev/urandom >"$T/src/d/big2.bin"
snapctl -r "$r" backup --label alpha --full -q "$T/src/d"
cp -a "$T/src/d" "$T/state4"
snapctl -r "$r" list --json >"$T/list.json"
series() {
	python3 - "$T/list.json" "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
s = sorted({b["series"] for b in v if b["label"] == sys.argv[2]},
           key=lambda s: min(b["created"] for b in v if b["series"] == s))
print(s[int(sys.argv[3])])
PY
}
A=$(series alpha 0)
A2=$(series alpha 1)
B=$(series beta 0)

m="$T/mnt"
mount_repo "$r" "$m" -o refresh=1

say "laziness: a listing costs one directory object, a small read one chunk"
ls "$m/series/$A/3/d/small" >/dev/null
stat "$m/series/$A2/1/d/big2.bin" >/dev/null
f0=$(mount_stat "$m" fetches)
ls -l "$m/series/$A/3/d/small/d02" >/dev/null
f1=$(mount_stat "$m" fetches)
[ $((f1 - f0)) = 1 ] || fail "listing one directory fetched $((f1 - f0)) objects"
# Chunk boundaries are random per repository, and one inside the window
# would make it two chunks: read 4 KiB at the start of the largest chunk
# beyond 4 MiB (a random reader to the daemon, so nothing is read ahead),
# which holds the page and whatever the kernel reads around it.
off=$("$CHUNKMAP" "$r" "$A2/1/d/big2.bin" | python3 -c '
import sys
v = [int(x) for x in sys.stdin.read().split()]
spans = [(b - a, a) for a, b in zip(v, v[1:]) if a >= (4 << 20) + 4096]
size, start = max(spans)
assert size >= 256 << 10, spans
print((start + 4095) // 4096 * 4096)')
dd if="$m/series/$A2/1/d/big2.bin" of=/dev/null bs=4k skip=$((off / 4096)) count=1 2>/dev/null
f2=$(mount_stat "$m" fetches)
[ $((f2 - f1)) = 1 ] || fail "a 4 KiB read inside one chunk fetched $((f2 - f1)) objects"
p0=$(mount_stat "$m" prefetches)
cat "$m/series/$A2/1/d/zk/version-2/log.100000001" "$m/series/$A2/1/d/big2.bin" >/dev/null
[ "$(mount_stat "$m" prefetches)" -gt "$p0" ] || fail "no read-ahead for a sequential reader"

say "layout: series, latest, labels, manifest.json, control"
[ "$(ls "$m")" = "$(printf 'control\nlabels\nseries')" ] || fail "top level: $(ls "$m")"
[ "$(ls "$m/series/$A")" = "$(printf '1\n2\n3\nlatest')" ] || fail "series dir: $(ls "$m/series/$A")"
[ "$(readlink "$m/series/$A/latest")" = 3 ] || fail "latest"
[ "$(readlink "$m/labels/alpha")" = "../series/$A2" ] || fail "labels/alpha: $(readlink "$m/labels/alpha")"
[ "$(readlink "$m/labels/beta")" = "../series/$B" ] || fail "labels/beta"
[ "$(ls "$m/labels/beta/1")" = "$(printf 'g1\ng2\nmanifest.json')" ] || fail "beta groups"
python3 -c 'import json,sys; m = json.load(open(sys.argv[1])); assert m["backup_num"] == 2, m' \
	"$m/series/$A/2/manifest.json"
[ "$(ls -A "$m/control")" = "$(printf 'alpha\nbeta')" ] || fail "control/: $(ls -A "$m/control")"
[ ! -e "$m/series/$A/4" ] && [ ! -e "$m/series/nope" ] && [ ! -e "$m/labels/nope" ] ||
	fail "absent names exist"

say "every backup equals its source: content, metadata, sparseness, hardlinks"
for i in 1 2 3; do
	same_tree "$T/state$i" "$m/series/$A/$i/d"
	# diff cannot compare FIFOs and sockets (same_tree does the specials).
	diff -r --no-dereference -x special "$T/state$i" "$m/series/$A/$i/d" >/dev/null ||
		fail "diff -r backup $i"
done
same_tree "$T/state4" "$m/labels/alpha/latest/d"
same_tree "$T/src2/g1" "$m/series/$B/1/g1"
alloc=$(du -sk "$m/series/$A/1/d/zk/version-2/log.100000001" | cut -f1)
[ "$alloc" -le 64 ] || fail "sparse log shows ${alloc} KiB allocated"
i1=$(stat -c %i "$m/series/$A/1/d/links/target")
[ "$(stat -c %i "$m/series/$A/1/d/links/hard1")" = "$i1" ] || fail "hardlinks differ in inode"
[ "$(stat -c %i "$m/series/$A/1/d/small/hard2")" = "$i1" ] || fail "inode numbers not stable"

say "FIFOs and devices: type, mode, owner, mtime and rdev; inert"
sp="$m/series/$A/1/d/special"
st() { stat -c '%F %a %u:%g %Y %t:%T' "$1"; }
for n in fifo null loop; do
	[ -e "$T/state1/special/$n" ] || continue
	[ "$(st "$sp/$n")" = "$(st "$T/state1/special/$n")" ] ||
		fail "$n: $(st "$sp/$n") in the mount, $(st "$T/state1/special/$n") backed up"
done
[ "$(find "$sp" -type p)" = "$sp/fifo" ] || fail "readdir: the FIFO's type"
[ ! -e "$sp/sock" ] || fail "a socket in the mount"
if [ -c "$sp/null" ]; then
	[ "$(find "$sp" -type c)" = "$sp/null" ] && [ "$(find "$sp" -type b)" = "$sp/loop" ] ||
		fail "readdir: the devices' types"
	if head -c1 "$sp/null" 2>"$T/err"; then fail "a device opened through the mount"; fi
	grep -q "Permission denied" "$T/err" || { cat "$T/err"; fail "device: not EACCES"; }
fi

say "random reads (across chunk boundaries, past EOF) equal the source"
python3 - "$T/state1/big.bin" "$m/series/$A/1/d/big.bin" <<'PY'
import os, random, sys
src, mnt = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(src).st_size
rnd = random.Random(7)
offs = [rnd.randrange(size) for _ in range(200)]
offs += [size - 1, size, size + 10, 0, (1 << 20) - 1, (4 << 20) - 3]
for off in offs:
    n = rnd.choice([1, 100, 4096, 65536, 300000, 1 << 20, 3 << 20])
    a, b = os.pread(src, n, off), os.pread(mnt, n, off)
    assert a == b, "mismatch at %d+%d (%d vs %d bytes)" % (off, n, len(a), len(b))
print("   %d random reads equal" % len(offs))
PY

say "concurrent readers"
pids=""
for i in 1 2 3 4 5 6; do
	cmp "$T/state$((i % 3 + 1))/big.bin" "$m/series/$A/$((i % 3 + 1))/d/big.bin" &
	pids="$pids $!"
done
for j in $pids; do wait "$j" || fail "a concurrent reader failed"; done

say "read-only: writes fail with EROFS"
for cmd in "touch $m/series/$A/1/d/x" "mkdir $m/series/$A/1/d/y" \
	"rm $m/series/$A/1/d/big.bin" "mv $m/series/$A/1/d/big.bin $m/series/$A/1/d/z" \
	"chmod 600 $m/series/$A/1/d/big.bin" "setfattr -n user.a -v b $m/series/$A/1/d/big.bin"; do
	if $cmd 2>"$T/err"; then fail "'$cmd' succeeded"; fi
	grep -q "Read-only file system" "$T/err" || { cat "$T/err"; fail "'$cmd' not EROFS"; }
done
if (echo x >>"$m/series/$A/1/d/big.bin") 2>"$T/err"; then fail "append succeeded"; fi

say "attributes: a namespace the backup never uses is 'not supported'"
# ls -l asks every file for security.selinux and system.posix_acl_access;
# EOPNOTSUPP (not ENODATA) is what makes it stop asking.
xf="$m/series/$A/1/d/xattrs/file"
if getfattr -n user.one "$T/state1/xattrs/file" >/dev/null 2>&1; then
	[ "$(getfattr --only-values -n user.one "$xf")" = 1 ] || fail "user.one lost"
	getfattr -n user.nope "$xf" 2>"$T/err" && fail "user.nope exists"
	grep -q "No such attribute" "$T/err" || { cat "$T/err"; fail "user.nope: not ENODATA"; }
fi
for name in security.selinux system.posix_acl_access; do
	getfattr -n $name "$xf" 2>"$T/err" && fail "$name exists"
	grep -q "Operation not supported" "$T/err" || { cat "$T/err"; fail "$name: not EOPNOTSUPP"; }
done
getfattr -n user.x "$m/series/$B/1/g1/f" 2>"$T/err" && fail "user.x exists"
grep -q "Operation not supported" "$T/err" || { cat "$T/err"; fail "beta has no user attributes"; }
ls -l "$m/series/$A/1/d/xattrs" >/dev/null || fail "ls -l"

say "a new backup and a new label appear after the refresh interval"
snapctl -r "$r" backup --label alpha -q "$T/src/d"
snapctl -r "$r" backup --label gamma -q "$T/src2/g1"
# refresh=1: a lookup a second after the last refresh rebuilds the
# catalog, and the kernel forgets the old names a second later.  Poll
# rather than sleep, with a deadline generous for a loaded machine.
for _ in $(seq 1 300); do
	ls "$m/series" "$m/labels" >/dev/null
	[ "$(readlink "$m/series/$A2/latest")" = 2 ] && [ -L "$m/labels/gamma" ] && break
	sleep 0.1
done
[ "$(readlink "$m/series/$A2/latest")" = 2 ] || fail "new backup not shown after 30 s: $(ls "$m/series/$A2")"
[ -d "$m/series/$A2/2/d" ] || fail "series/$A2/2 missing"
[ -L "$m/labels/gamma" ] || fail "labels/gamma missing: $(ls "$m/labels")"
same_tree "$T/src2/g1" "$m/labels/gamma/1/g1"

say "wrong key: the mount fails at start, with a message, nothing mounted"
head -c 32 /dev/urandom >"$T/badkey"; chmod 600 "$T/badkey"
mkdir -p "$T/m2"
expect_fail 1 "wrong encryption key" "$SNAPFS" -o key_file="$T/badkey" "$r" "$T/m2"
expect_fail 1 "not a snapfs repository|no snapfs repository" "$SNAPFS" "$T/nothing" "$T/m2"
! is_mounted "$T/m2" || fail "mounted with a wrong key"

if [ "$(id -u)" = 0 ] && [ -x /sbin/mount.fuse3 ]; then
	# mount(8) runs mount.fuse3 with a fixed PATH, so an fstab line
	# needs snapfs installed; the helper itself is what we exercise.
	say "mount.fuse3 (what mount -t fuse.snapfs and fstab run), daemonised"
	mkdir -p "$T/bin" "$T/m3"
	ln -s "$SNAPFS" "$T/bin/snapfs"
	PATH="$T/bin:$PATH" /sbin/mount.fuse3 "$r" "$T/m3" -t fuse.snapfs \
		-o "rw,nodev,nosuid,key_file=$T/key,refresh=5,cache_dir=$T/cache3"
	on_exit "umount -l '$T/m3' 2>/dev/null"
	same_tree "$T/state2" "$T/m3/series/$A/2/d"
	umount "$T/m3"
	! is_mounted "$T/m3" || fail "still mounted after umount"
fi

if [ "$(id -u)" = 0 ] && [ "$STORE" = file ] && command -v setfacl >/dev/null &&
	unshare -m true 2>/dev/null; then
	# fstab's way: mount(8) runs mount.fuse3, which passes "dev,suid"
	# and finds snapfs only in the system path, so a private mount
	# namespace puts it there.  Another user must not gain root from a
	# backed-up setuid binary, nor read what modes or ACLs deny.
	say "mount -t fuse.snapfs, allow_other: nosuid, nodev, modes and ACLs"
	p="$T/priv"
	mkdir -p "$p/src" "$p/sbin" "$p/m"
	cp /usr/bin/id "$p/src/suid-id"
	chmod 4755 "$p/src/suid-id"
	echo secret >"$p/src/secret"
	chmod 600 "$p/src/secret"
	echo denied >"$p/src/acl"
	chmod 644 "$p/src/acl"
	setfacl -m u:nobody:--- "$p/src/acl"
	echo open >"$p/src/open"
	chmod 644 "$p/src/open"
	snapctl -r "$r" backup --label priv -q "$p/src"
	ln -s "$SNAPFS" "$p/sbin/snapfs"
	chmod 755 "$T" "$p"
	unshare -m sh -s "$p" "$r" "$T/key" >"$p/out" 2>&1 <<'SH' || { cat "$p/out"; fail "fstab-style mount"; }
set -eu
p=$1
mount --bind "$p/sbin" /usr/local/sbin
mount -t fuse.snapfs "$2" "$p/m" -o "allow_other,key_file=$3,cache_dir=$p/cache"
trap 'umount "$p/m"' EXIT
grep " $p/m fuse.snapfs " /proc/self/mounts
b=$(echo "$p"/m/labels/priv/1/src)
runuser -u nobody -- "$b/suid-id" -u >"$p/euid"
for f in secret acl open; do
	if runuser -u nobody -- cat "$b/$f" >"$p/$f.out" 2>&1; then
		echo "$f: read"
	else
		echo "$f: refused: $(cat "$p/$f.out")"
	fi
done
SH
	grep -q "nosuid,nodev" "$p/out" || { cat "$p/out"; fail "mounted without nosuid,nodev"; }
	[ "$(cat "$p/euid")" = "$(id -u nobody)" ] ||
		fail "a setuid binary from a backup ran with euid $(cat "$p/euid")"
	grep -q "^secret: refused: .*Permission denied" "$p/out" || { cat "$p/out"; fail "a 0600 file was readable by another uid"; }
	grep -q "^acl: refused: .*Permission denied" "$p/out" || { cat "$p/out"; fail "an ACL that denies nobody was not enforced"; }
	grep -q "^open: read" "$p/out" || { cat "$p/out"; fail "a 0644 file was not readable"; }
	chmod 700 "$T"
fi

unmount_repo "$m" "$MOUNT_PID"

say "a remount reads from the disk cache"
mount_repo "$r" "$m"
cmp "$T/state3/big.bin" "$m/series/$A/3/d/big.bin" || fail "read after remount"
[ "$(mount_stat "$m" disk_hits)" -gt 0 ] || fail "no disk cache hits after a remount"
[ "$(mount_stat "$m" fetches)" -le 3 ] || fail "$(mount_stat "$m" fetches) fetches despite the disk cache"
unmount_repo "$m" "$MOUNT_PID"

say "a damaged manifest in the disk cache is replaced from the store"
c2=$(find "$T/cache" -path "*/manifests/$A/2.json")
c3=$(find "$T/cache" -path "*/manifests/$A/3.json")
[ -f "$c2" ] && [ -f "$c3" ] || fail "manifests of $A not in the disk cache"
truncate -s 100 "$c3" # a torn write
python3 - "$c2" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
# one hex digit of the MAC, changed: valid JSON that fails authentication
t = re.sub(r'("mac": ")(.)', lambda m: m.group(1) + ("1" if m.group(2) != "1" else "2"), t, 1)
open(sys.argv[1], "w").write(t)
PY
mount_repo "$r" "$m"
cmp "$T/state3/big.bin" "$m/series/$A/3/d/big.bin" || fail "backup 3 unreadable with a torn cached manifest"
cmp "$T/state2/big.bin" "$m/series/$A/2/d/big.bin" || fail "backup 2 unreadable with a tampered cached manifest"
cmp "$c3" "$m/series/$A/3/manifest.json" || fail "the torn copy was not replaced"
cmp "$c2" "$m/series/$A/2/manifest.json" || fail "the tampered copy was not replaced"
unmount_repo "$m" "$MOUNT_PID"

if [ "$STORE" = file ]; then
	say "a corrupt pack: EIO for the files it holds, the rest still reads"
	c=$(repo_url corrupt)
	repo_init "$c" --encryption-key-file "$T/key"
	mkdir -p "$T/cs"
	head -c $((6 << 20)) /dev/urandom >"$T/cs/a"
	snapctl -r "$c" backup --label corr -q "$T/cs"
	ls "$c"/data/*/ | sort >"$T/packs1"
	head -c $((6 << 20)) /dev/urandom >"$T/cs/b"
	snapctl -r "$c" backup --label corr -q "$T/cs"
	ls "$c"/data/*/ | sort >"$T/packs2"
	new=$(comm -13 "$T/packs1" "$T/packs2" | while read -r p; do
		echo "$(stat -c %s "$c"/data/*/"$p") $p"; done | sort -n | tail -n 1 | cut -d' ' -f2)
	pack=$(ls "$c"/data/*/"$new")
	flip_byte "$pack" $((3 << 20))
	cm="$T/cm"
	mount_repo "$c" "$cm"
	cs=$(ls "$cm/series")
	if cat "$cm/series/$cs/2/cs/b" >/dev/null 2>"$T/err"; then fail "corrupt file read"; fi
	grep -q "Input/output error" "$T/err" || { cat "$T/err"; fail "not EIO"; }
	cmp "$T/cs/a" "$cm/series/$cs/2/cs/a" || fail "an intact file failed to read"
	ls "$cm/series/$cs/2/cs" >/dev/null || fail "listing failed after the EIO"
	grep -q "fails authentication" "$T/snapfs.log" || { cat "$T/snapfs.log"; fail "no log line naming the object"; }
	grep -q "$new" "$T/snapfs.log" || fail "the log line does not name the pack"

	say "unmount (SIGTERM) while a reader is active"
	python3 - "$cm/series/$cs/2/cs/a" "$T/reader.out" "$T/reader.ready" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
# The file was read before: drop its cached pages so reads reach the daemon.
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
out = open(sys.argv[2], "w")
try:
    os.read(fd, 65536)
    open(sys.argv[3], "w").write("reading\n")
    while os.read(fd, 65536):
        time.sleep(0.05)
    out.write("eof\n")
except OSError as e:
    out.write("error %s\n" % e.errno)
PY
	reader=$!
	# SIGTERM once the reader is inside the file, however long a loaded
	# machine takes to start it (a fixed sleep raced the open).
	for _ in $(seq 1 300); do
		[ -s "$T/reader.ready" ] || ! kill -0 "$reader" 2>/dev/null && break
		sleep 0.1
	done
	[ -s "$T/reader.ready" ] || fail "the reader did not start reading: $(cat "$T/reader.out")"
	kill -TERM "$MOUNT_PID"
	for _ in $(seq 1 100); do kill -0 "$MOUNT_PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$MOUNT_PID" 2>/dev/null && fail "daemon still running 10 s after SIGTERM"
	wait "$MOUNT_PID" || fail "daemon exited non-zero after SIGTERM"
	! is_mounted "$cm" || fail "still mounted after SIGTERM"
	for _ in $(seq 1 50); do [ -s "$T/reader.out" ] && break; sleep 0.1; done
	kill "$reader" 2>/dev/null || true
	grep -q "^error" "$T/reader.out" || fail "the reader saw no error after the unmount"
fi
daemon_log_clean
say "mount: all checks passed"
