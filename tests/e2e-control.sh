#!/bin/sh
# The write side of the mount: backups made by copying into
# control/<label>/ with real rsync, cp and tar, committed through
# .snapfs/commit, compared exactly with their sources; incremental
# commits send only what changed; every backupNum restores as its source
# was then; the control names' rules and errors.
. "$TESTLIB"

[ "$(id -u)" = 0 ] || { echo "needs root (FUSE)"; exit 77; }
python3 "$TESTS_DIR/mkcorpus.py" "$T/src/g" --small 1500 >/dev/null
# ACLs as rsync -A and cp -a carry them (stored like any xattr).
if command -v setfacl >/dev/null; then
	setfacl -m u:nobody:r--,g:daemon:rw- "$T/src/g/links/target"
	setfacl -d -m u:nobody:rwx "$T/src/g/modes"
	touch -h -d @1650000000.123456789 "$T/src/g/links/target" "$T/src/g/modes"
fi
# The group directories' own attributes (kept in the manifest).
setfattr -n user.group -v "of the group" "$T/src/g"
command -v setfacl >/dev/null && setfacl -m u:nobody:r-x "$T/src/g"
head -c $((3 << 20)) /dev/urandom >"$T/src/g/big.bin"
mkdir -p "$T/src/h"
echo second group >"$T/src/h/file"
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
export SNAPFS_KEY_FILE="$T/key"
r=$(repo_url repo)
repo_init "$r" --encryption-key-file "$T/key"
m="$T/mnt"
mount_repo "$r" "$m"
c="$m/control/alpha"

# state NAME: keeps a copy of the source as it is now.
state() { cp -a "$T/src" "$T/state-$1"; }
status() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$c/.snapfs/status" "$1"; }
latest() { ls "$m/series" | grep "^$1-" | head -n 1; }

say "mkdir control/alpha; rsync -aHAXS --delete into it; commit"
retime_dirs "$T/src"
mkdir "$c"
[ "$(ls "$m/control")" = alpha ] || fail "control/ does not list the new label"
[ "$(status state)" = STATUS_IDLE ] || fail "new label: $(status state)"
rsync -aHAXS --delete "$T/src/" "$c/" || fail "rsync into control/ failed"
[ "$(status state)" = STATUS_STAGING ] || fail "after rsync: $(status state)"
same_tree "$T/src" "$c"
touch "$c/.snapfs/commit" || fail "commit failed"
[ "$(status state)" = STATUS_READY ] || fail "after commit: $(status state)"
state 1
A=$(latest alpha)
[ -n "$A" ] || fail "no series under series/ right after the commit"
[ "$(readlink "$m/labels/alpha")" = "../series/$A" ] || fail "labels/alpha"
same_tree "$T/state-1/g" "$m/series/$A/1/g"
same_tree "$T/state-1/h" "$m/series/$A/1/h"
same_tree "$T/state-1" "$c"
[ -z "$(ls -A "$c" | grep snapfs)" ] || fail ".snapfs is listed"
[ "$(getfattr --only-values -n user.group "$m/series/$A/1/g")" = "of the group" ] ||
	fail "the group directory's attribute is not in the backup"
snapctl -r "$r" backup --label walked -q "$T/src/g"
snapctl -r "$r" restore walked --target "$T/walked" -q
[ "$(getfattr --only-values -n user.group "$T/walked/g")" = "of the group" ] ||
	fail "snapctl backup or restore lost the group directory's attribute"
rm -rf "$T/walked"

say "incremental: 1% of the files change, some go, a tree moves"
f0=$(mount_stat "$m" fetches)
for i in 3 100 407 999 1203; do
	f=$(find "$T/src/g/small" -name "f0*$i.dat" | head -n 1)
	[ -n "$f" ] && echo "changed $i" >>"$f"
done
head -c 100000 /dev/urandom >"$T/src/g/new-file"
rm -rf "$T/src/g/small/d05"
mv "$T/src/g/small/d07" "$T/src/g/moved-d07"
dd if=/dev/urandom of="$T/src/g/big.bin" bs=64k count=1 seek=10 conv=notrunc 2>/dev/null
retime_dirs "$T/src"
rsync -aHAXS --delete "$T/src/" "$c/" || fail "second rsync failed"
f1=$(mount_stat "$m" fetches)
# rsync's quick check skips unchanged files: nothing of them is read
# beyond the directory objects of the directories it walks.
[ $((f1 - f0)) -lt 200 ] || fail "an incremental rsync fetched $((f1 - f0)) objects"
snapctl commit "$c" >"$T/commit.out" || fail "snapctl commit failed"
grep -q "^$A/2: " "$T/commit.out" || { cat "$T/commit.out"; fail "snapctl commit output"; }
state 2
up=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_commit"]["bytes_new"])' "$c/.snapfs/status")
# What changed: ~100 KB new, a 64 KiB region of a 3 MiB file, a few small
# files, directory objects; chunks are ~1 MiB, so a changed chunk of
# big.bin costs up to its size.
[ "$up" -lt $((8 << 20)) ] || fail "the incremental commit uploaded $up bytes"
same_tree "$T/state-2/g" "$m/series/$A/2/g"
same_tree "$T/state-2" "$c"

say "rsync --inplace of a changed file, a commit with no changes"
dd if=/dev/urandom of="$T/src/g/big.bin" bs=4k count=3 seek=100 conv=notrunc 2>/dev/null
truncate -s 2M "$T/src/g/islands.sparse"
retime_dirs "$T/src"
rsync -aHAXS --inplace --delete "$T/src/" "$c/" || fail "rsync --inplace failed"
touch "$c/.snapfs/commit" || fail "commit 3"
state 3
same_tree "$T/state-3/g" "$m/series/$A/3/g"
touch "$c/.snapfs/commit" || fail "an empty commit failed"
[ -d "$m/series/$A/4" ] || fail "a commit with no changes made no backup"
same_tree "$T/state-3/g" "$m/series/$A/4/g"

say "cp -a into an emptied label, tar -x into a new one"
touch "$c/.snapfs/empty" || fail "empty"
[ -z "$(ls -A "$c")" ] || fail "an emptied label still shows its base"
rm -rf "$T/src/h"
retime_dirs "$T/src"
cp -a "$T/src/g" "$c/g" || fail "cp -a failed"
touch "$c/.snapfs/commit" || fail "commit after empty"
state 5
[ ! -e "$m/series/$A/5/h" ] || fail "group h survived an empty label"
same_tree "$T/state-5/g" "$m/series/$A/5/g"
tar --sparse --xattrs --acls -C "$T/src" -cf "$T/src.tar" g
mkdir "$m/control/beta" "$m/control/beta/g"
tar --xattrs --acls --xattrs-include='*' -C "$m/control/beta" -xpf "$T/src.tar" ||
	fail "tar -x into control/ failed"
touch "$m/control/beta/.snapfs/commit" || fail "commit beta"
B=$(latest beta)
same_tree "$T/state-5/g" "$m/series/$B/1/g"

say "every backupNum restores as its source was then"
for n in 1 2 3 5; do
	rm -rf "$T/res"
	snapctl -r "$r" restore "$A/$n" --target "$T/res" -q
	same_tree "$T/state-$n" "$T/res"
done
snapctl -r "$r" check --read-data -q || fail "check --read-data"

say "inode numbers: stable across a commit; a hardlinked base file written through one name"
ino_before=$(stat -c %i "$c/g/links/target" "$c/g/links/hard1" "$c/g/small/hard2" "$c/g/modes" | tr '\n' ' ')
set -- $ino_before
[ "$1" = "$2" ] && [ "$1" = "$3" ] || fail "hardlinked names do not share an inode: $ino_before"
echo "through one name" >>"$c/g/links/hard1"
[ "$(tail -n 1 "$c/g/small/hard2")" = "through one name" ] || fail "a write through one name did not change the others"
touch "$c/.snapfs/commit" || fail "commit of the write through a hardlink"
n=$(ls "$m/series/$A" | grep '^[0-9]' | sort -n | tail -n 1)
[ "$(stat -c %i "$c/g/links/target" "$c/g/links/hard1" "$c/g/small/hard2" "$c/g/modes" | tr '\n' ' ')" = "$ino_before" ] ||
	fail "inode numbers changed across a commit"
for p in links/target links/hard1 small/hard2; do
	[ "$(tail -n 1 "$m/series/$A/$n/g/$p")" = "through one name" ] || fail "$p lost the write in the backup"
done
stat -c %i "$m/series/$A/$n/g/links/target" "$m/series/$A/$n/g/small/hard2" | uniq | wc -l | grep -qx 1 ||
	fail "the backup split the hardlink"
cp -a "$m/series/$A/$n" "$T/state-hl"

say "full: the next commit starts a series, its files stored anew"
touch "$c/.snapfs/full" || fail "arm full"
[ -e "$c/.snapfs/full" ] || fail "full is not shown armed"
[ "$(status full)" = True ] || fail "status.full: $(status full)"
touch "$c/.snapfs/commit" || fail "full commit"
A2=$(ls "$m/series" | grep '^alpha-' | grep -v "^$A\$")
[ -n "$A2" ] || fail "full made no new series"
same_tree "$T/state-hl/g" "$m/series/$A2/1/g"
[ "$(readlink "$m/labels/alpha")" = "../series/$A2" ] || fail "labels/alpha after full"
[ ! -e "$c/.snapfs/full" ] || fail "full stayed armed after its commit"
A=$A2

say "a commit waits for files open for writing, then fails naming them"
umount_and_remount() { unmount_repo "$m" "$MOUNT_PID"; mount_repo "$r" "$m" "$@"; }
umount_and_remount -o commit_wait=1
exec 7>>"$c/g/held-open"
expect_fail 1 "Input/output error" touch "$c/.snapfs/commit"
grep -q "held-open" "$c/.snapfs/status" || fail "status does not name the open file"
exec 7>&-
touch "$c/.snapfs/commit" || fail "commit after closing"
[ -e "$m/series/$A/2/g/held-open" ] || fail "the file held open is not in the next backup"
rm "$c/g/held-open"
touch "$c/.snapfs/commit" || fail "commit dropping held-open"
cp -a "$m/series/$A/3/g" "$T/state-last"

say "fallocate, fsync, statfs; a commit reads only what changed"
python3 - "$c/g/posix-ops" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
os.posix_fallocate(fd, 0, 1 << 20)
assert os.fstat(fd).st_size == 1 << 20
os.pwrite(fd, b"end", (1 << 20) - 3)
os.fsync(fd)
os.ftruncate(fd, 4096)
os.close(fd)
st = os.statvfs(os.path.dirname(sys.argv[1]))
assert st.f_bavail > 0 and st.f_bsize > 0, st
PY
[ "$(stat -c %s "$c/g/posix-ops")" = 4096 ] || fail "ftruncate after fallocate"
f0=$(mount_stat "$m" fetches)
touch "$c/.snapfs/commit" || fail "commit of one new file"
f1=$(mount_stat "$m" fetches)
# One directory changed: its object and the group's are all the commit
# may read of the base (the rest goes by reference).
[ $((f1 - f0)) -le 3 ] || fail "a one-file commit read $((f1 - f0)) objects of the base"
n=$(ls "$m/series/$A" | grep '^[0-9]' | sort -n | tail -n 1)
cmp "$c/g/posix-ops" "$m/series/$A/$n/g/posix-ops" || fail "posix-ops differs in the backup"
rm "$c/g/posix-ops"
touch "$c/.snapfs/commit" || fail "commit dropping posix-ops"

say "copy_file_range from series/ or the base into control/ copies references"
n=$(ls "$m/series/$A" | grep '^[0-9]' | sort -n | tail -n 1)
src="$m/series/$A/$n/g/big.bin"
# cfr SRC DST: one whole-file copy_file_range, as cp(1) makes it.
cfr() {
	python3 - "$1" "$2" <<'PY'
import os, sys
i = os.open(sys.argv[1], os.O_RDONLY)
o = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
size, done = os.fstat(i).st_size, 0
while done < size:
    n = os.copy_file_range(i, o, size - done)
    assert n > 0, n
    done += n
os.close(i)
os.close(o)
PY
}
cfr "$src" "$c/g/restored.bin" || fail "copy_file_range from series/"
cmp "$src" "$c/g/restored.bin" || fail "the copy by reference reads differently"
cfr "$c/g/big.bin" "$c/g/base-copy.bin" || fail "copy_file_range within control/"
cp "$src" "$c/g/by-cp.bin" || fail "cp from series/"
# References: nothing of them is in the stage.
[ "$(status staged_bytes)" = 0 ] || fail "copies by reference staged $(status staged_bytes) bytes"
# A copy from another series is made of bytes, and still exact.
other="$m/series/$(latest walked)/1/g/big.bin"
cfr "$other" "$c/g/other-series.bin" || fail "copy_file_range from another series"
cmp "$other" "$c/g/other-series.bin" || fail "the copy from another series reads differently"
cfr "$src" "$c/g/then-written.bin"
printf 'appended' >>"$c/g/then-written.bin"
{ cat "$src"; printf 'appended'; } | cmp - "$c/g/then-written.bin" ||
	fail "a write after the copy by reference"
touch "$c/.snapfs/commit" || fail "commit of the copies"
up=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["last_commit"]["bytes_new"])' "$c/.snapfs/status")
# Three copies by reference cost nothing; the other series' copy and the
# written one store at most their 3 MiB and a changed chunk.
[ "$up" -lt $((8 << 20)) ] || fail "the copies stored $up bytes"
for f in restored base-copy by-cp; do
	cmp "$src" "$m/series/$A/$((n + 1))/g/$f.bin" || fail "$f.bin differs in the backup"
done
cmp "$other" "$m/series/$A/$((n + 1))/g/other-series.bin" || fail "other-series.bin differs in the backup"
"$CHUNKMAP" "$r" "$A/$n/g/big.bin" >"$T/map.src"
"$CHUNKMAP" "$r" "$A/$((n + 1))/g/restored.bin" >"$T/map.copy"
cmp "$T/map.src" "$T/map.copy" || fail "the copy by reference has chunks of its own"
rm "$c/g/restored.bin" "$c/g/base-copy.bin" "$c/g/by-cp.bin" \
	"$c/g/other-series.bin" "$c/g/then-written.bin"
touch "$c/.snapfs/commit" || fail "commit dropping the copies"

say "a removed base file stays removed, whatever its open handle does"
python3 - "$c/g/big.bin" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.unlink(sys.argv[1])
os.fchmod(fd, 0o600)
os.utime(fd, (1, 1))
os.close(fd)
assert not os.path.exists(sys.argv[1]), "the removed file came back"
PY
[ -z "$(ls "$c/g" | grep -x big.bin)" ] || fail "big.bin is listed again after its removal"
touch "$c/.snapfs/abort" || fail "abort after the removal"
[ -e "$c/g/big.bin" ] || fail "abort did not bring big.bin back"

say "labels side by side: created entries of one never answer for another's"
for l in side1 side2; do
	mkdir "$m/control/$l"
	mkdir -p "$m/control/$l/g/sub"
	echo "$l" >"$m/control/$l/g/sub/file"
	touch "$m/control/$l/.snapfs/commit" || fail "commit of $l"
	mkdir "$m/control/$l/g/new-$l"
	echo "again $l" >"$m/control/$l/g/new-$l/file"
done
sync
echo 3 >/proc/sys/vm/drop_caches
for l in side1 side2; do
	[ "$(cat "$m/control/$l/g/sub/file")" = "$l" ] || fail "control/$l/g/sub/file: $(cat "$m/control/$l/g/sub/file")"
	[ "$(cat "$m/control/$l/g/new-$l/file")" = "again $l" ] || fail "control/$l/g/new-$l/file"
	[ "$(ls "$m/control/$l/g" | tr '\n' ' ')" = "new-$l sub " ] || fail "control/$l/g lists $(ls "$m/control/$l/g")"
done
touch "$m/control/side1/.snapfs/abort" "$m/control/side2/.snapfs/abort"

say "rules: labels, groups, read-only backups, full while staged"
expect_fail 1 "Invalid argument" mkdir "$m/control/x"
grep -q "label" "$T/snapfs.log" || fail "no log line for a bad label"
expect_fail 1 "Operation not permitted" touch "$c/file-at-group-level"
expect_fail 1 "Read-only file system" touch "$m/series/$A/1/g/new"
echo staged >"$c/g/staged-file"
expect_fail 1 "Device or resource busy" touch "$c/.snapfs/full"
touch "$c/.snapfs/abort" || fail "abort"
[ ! -e "$c/g/staged-file" ] || fail "abort kept a staged file"
[ "$(status staged_files)" = 0 ] || fail "abort: staged_files $(status staged_files)"
same_tree "$T/state-last" "$c/g"

unmount_repo "$m" "$MOUNT_PID"
say "control: all checks passed"
