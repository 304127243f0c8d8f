#!/bin/sh
# The write side when things go wrong: the daemon killed (kill -9) while
# rsync writes into control/ and while a commit runs, a store that refuses
# writes during a commit, a second daemon on the same stage, an unmount
# with changes staged.  After each: the stage is resumed as status says,
# files open at the kill are back to their base (or gone), never mixed,
# check --read-data is clean and every committed backup is intact.
#
# SNAPFS_CRASH_TRIALS=N runs N seeded kill trials of each kind (default 2;
# contrib/torture-control.sh runs many).
. "$TESTLIB"

[ "$(id -u)" = 0 ] || { echo "needs root (FUSE)"; exit 77; }
trials=${SNAPFS_CRASH_TRIALS:-2}
python3 "$TESTS_DIR/mkcorpus.py" "$T/src/g" --small 600 >/dev/null
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
export SNAPFS_KEY_FILE="$T/key"
r=$(repo_url repo)
repo_init "$r" --encryption-key-file "$T/key"
m="$T/mnt"
c="$m/control/crash"
status() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$c/.snapfs/status" "$1"; }

# kill_daemon: SIGKILL, then the dead mount goes (as an operator would).
kill_daemon() {
	kill -9 "$MOUNT_PID" 2>/dev/null || true
	wait "$MOUNT_PID" 2>/dev/null || true
	fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
}
# remount: a new daemon on the same cache (and so the same stages).
remount() {
	mount_repo "$r" "$m"
}
# never_mixed: every file in control/ is the source's version, the one
# staged before (the source before this trial's change) or the committed
# one, never a mix.
never_mixed() {
	python3 - "$T/src/g" "$T/prev/g" "$T/committed/g" "$c/g" <<'PY'
import hashlib, os, re, stat, sys
src, prev, old, ctl = sys.argv[1:5]
def digest(p):
    try:
        with open(p, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
bad = 0
for d, _, files in os.walk(ctl):
    for n in files:
        p = os.path.join(d, n)
        # Only regular files have contents (opening a FIFO would wait).
        if not stat.S_ISREG(os.lstat(p).st_mode):
            continue
        rel = os.path.relpath(p, ctl)
        got = digest(p)
        # An rsync temp file closed before the kill and not yet renamed
        # is kept, whole: it holds a version of the file it stands for.
        m = re.fullmatch(r"\.(.+)\.[A-Za-z0-9]{6}", n)
        if m:
            rel = os.path.join(os.path.relpath(d, ctl), m.group(1))
        if got not in (digest(os.path.join(src, rel)),
                       digest(os.path.join(prev, rel)),
                       digest(os.path.join(old, rel))):
            print("mixed or torn: %s" % rel)
            bad += 1
sys.exit(1 if bad else 0)
PY
}

mount_repo "$r" "$m"
mkdir "$c"
rsync -aHAXS --delete "$T/src/" "$c/" || fail "first rsync"
touch "$c/.snapfs/commit" || fail "first commit"
cp -a "$T/src" "$T/committed"
S=$(ls "$m/series")

say "kill -9 while rsync writes into control/ ($trials seeded trials)"
for trial in $(seq 1 "$trials"); do
	rm -rf "$T/prev"
	cp -a "$T/src" "$T/prev"
	# A change large enough that the kill lands mid-transfer.
	python3 - "$T/src/g" "$trial" <<'PY'
import os, random, sys
rng = random.Random(int(sys.argv[2]))
root = sys.argv[1]
bulk = os.path.join(root, "bulk")
os.makedirs(bulk, exist_ok=True)
# New names each trial (the last trial's go): the kill below counts
# this trial's files as they arrive.
for n in os.listdir(bulk):
    os.unlink(os.path.join(bulk, n))
for i in range(24):
    with open(os.path.join(bulk, "t%s-f%02d" % (sys.argv[2], i)), "wb") as f:
        f.write(os.urandom(rng.randrange(1, 4) << 20))
for d, _, files in os.walk(os.path.join(root, "small")):
    for n in files:
        if rng.random() < 0.05:
            with open(os.path.join(d, n), "ab") as f:
                f.write(b"trial %d\n" % int(sys.argv[2]))
PY
	retime_dirs "$T/src"
	# Throttled: the kernel's write cache makes rsync faster than this
	# loop looks, and the kill must land mid-transfer.
	rsync -aHAXS --delete --bwlimit=20000 "$T/src/" "$c/" 2>/dev/null &
	rs=$!
	# Kill once a seeded number of bulk files has reached the stage.
	want=$((3 + trial * 7 % 15))
	for _ in $(seq 1 600); do
		n=$(find "$c/g/bulk" -name "t$trial-f*" 2>/dev/null | wc -l)
		[ "$n" -ge "$want" ] && break
		kill -0 $rs 2>/dev/null || break
		sleep 0.02
	done
	kill_daemon
	wait $rs 2>/dev/null || true
	remount
	[ "$(status stage)" = resumed ] || fail "trial $trial: stage $(status stage) ($(status stage_reason))"
	echo "   rsync trial $trial: killed after $n files, $(status dropped_count) open file(s) put back"
	never_mixed || fail "trial $trial: a file holds a mix of old and new bytes"
	same_tree "$T/committed/g" "$m/series/$S/1/g"
	rsync -aHAXS --delete "$T/src/" "$c/" || fail "trial $trial: rsync after the kill"
	same_tree "$T/src" "$c"
done
snapctl -r "$r" check --read-data -q || fail "check after the rsync kills"
touch "$c/.snapfs/commit" || fail "commit after the kills"
same_tree "$T/src/g" "$m/series/$S/2/g"
rm -rf "$T/committed"
cp -a "$T/src" "$T/committed"

say "kill -9 during a commit ($trials seeded trials)"
for trial in $(seq 1 "$trials"); do
	head -c $(((40 + trial) << 20)) /dev/urandom >"$T/src/g/bulk/big-$trial"
	retime_dirs "$T/src"
	rsync -aHAXS --delete "$T/src/" "$c/" || fail "rsync before commit $trial"
	n0=$(ls "$m/series/$S" | grep -c '^[0-9]')
	touch "$c/.snapfs/commit" 2>/dev/null &
	tc=$!
	for _ in $(seq 1 500); do
		[ "$(status state)" = STATUS_BACKING_UP ] && break
		kill -0 $tc 2>/dev/null || break # over already
		sleep 0.01
	done
	# Seeded: at once, or a little into the uploads.
	sleep "0.$((trial % 3 * 5))"
	kill_daemon
	wait $tc 2>/dev/null || true
	remount
	n1=$(ls "$m/series/$S" | grep -c '^[0-9]')
	st=$(status state)
	if [ "$n1" -gt "$n0" ]; then
		echo "   commit trial $trial: the commit had landed"
		# It landed before the kill: the stage knows (by its token).
		[ "$st" = STATUS_READY ] || fail "trial $trial: landed but $st"
		[ "$(status staged_files)" = 0 ] || fail "trial $trial: stage kept after landing"
	else
		echo "   commit trial $trial: killed before it landed; stage kept"
		[ "$st" = STATUS_ERROR ] || fail "trial $trial: not landed and $st"
		grep -q "during a commit" "$c/.snapfs/status" || fail "trial $trial: status says nothing"
		touch "$c/.snapfs/commit" || fail "trial $trial: commit again"
	fi
	snapctl -r "$r" check --read-data -q || fail "trial $trial: check"
	last=$(ls "$m/series/$S" | grep '^[0-9]' | sort -n | tail -n 1)
	same_tree "$T/src/g" "$m/series/$S/$last/g"
	same_tree "$T/committed/g" "$m/series/$S/2/g"
done

say "a store that refuses writes during a commit: EIO, then a later commit lands"
echo more >"$T/src/g/after-eio"
retime_dirs "$T/src"
rsync -aHAXS --delete "$T/src/" "$c/"
data=$(ls -d "$r"/data/* 2>/dev/null | head -n 1)
if [ "$STORE" = file ] && chattr +i "$data" 2>/dev/null; then
	on_exit "chattr -i '$data' 2>/dev/null"
	expect_fail 1 "Input/output error" touch "$c/.snapfs/commit"
	[ "$(status state)" = STATUS_ERROR ] || fail "after a failed commit: $(status state)"
	[ -n "$(status last_error)" ] || fail "no last_error"
	[ -e "$c/g/after-eio" ] || fail "the failed commit lost the stage"
	chattr -i "$data"
	touch "$c/.snapfs/commit" || fail "the commit after the store came back"
	[ "$(status state)" = STATUS_READY ] || fail "state after recovery: $(status state)"
else
	echo "   (chattr +i unavailable here: skipped)"
fi

say "a commit that fails after uploading: abort deletes its packs"
man=$(ls -d "$r"/manifests/* 2>/dev/null | head -n 1)
if [ "$STORE" = file ] && chattr +i "$man" 2>/dev/null; then
	on_exit "chattr -i '$man' 2>/dev/null"
	npacks() { find "$r/data" -type f | wc -l; }
	p0=$(npacks)
	head -c $((5 << 20)) /dev/urandom >"$T/src/g/to-abort"
	retime_dirs "$T/src"
	rsync -aHAXS --delete "$T/src/" "$c/"
	expect_fail 1 "Input/output error" touch "$c/.snapfs/commit"
	[ "$(npacks)" -gt "$p0" ] || fail "the failed commit uploaded nothing"
	chattr -i "$man"
	touch "$c/.snapfs/abort" || fail "abort"
	[ "$(npacks)" = "$p0" ] || fail "abort left $(($(npacks) - p0)) pack(s) of the failed commit"
	[ ! -e "$c/g/to-abort" ] || fail "abort kept the file"
	rm "$T/src/g/to-abort"
else
	echo "   (chattr +i unavailable here: skipped)"
fi

say "changes wait while a commit runs; SIGTERM during a commit waits for it"
head -c $((40 << 20)) /dev/urandom >"$T/src/g/big-last"
retime_dirs "$T/src"
rsync -aHAXS --delete "$T/src/" "$c/"
n0=$(ls "$m/series/$S" | grep -c '^[0-9]')
# bg NAME CMD...: CMD in the background, its exit status in $T/NAME.rc
# (a shell's wait can lose a job that ended while others ran).
bg() {
	n=$1
	shift
	rm -f "$T/$n.rc"
	( "$@"; echo $? >"$T/$n.rc" ) &
}
# bg_wait NAME: the status of what bg started, once it is there.
bg_wait() {
	for _ in $(seq 1 3000); do
		[ -s "$T/$1.rc" ] && return "$(cat "$T/$1.rc")"
		sleep 0.05
	done
	fail "$1 did not end in 150 s"
}
bg commit touch "$c/.snapfs/commit"
for _ in $(seq 1 500); do
	[ "$(status state)" = STATUS_BACKING_UP ] && break
	# A commit over before a poll saw it must not cost 500 polls.
	[ -s "$T/commit.rc" ] && break
	sleep 0.01
done
bg during sh -c "echo during >'$c/g/written-during'"
sleep 0.2
if [ "$(status state)" = STATUS_BACKING_UP ]; then
	[ ! -s "$T/during.rc" ] || fail "a change went through during the commit"
fi
bg_wait commit || fail "the commit failed"
bg_wait during || fail "the change after the commit failed"
last=$(ls "$m/series/$S" | grep '^[0-9]' | sort -n | tail -n 1)
[ ! -e "$m/series/$S/$last/g/written-during" ] || fail "a change made during the commit is in it"
[ "$(cat "$c/g/written-during")" = during ] || fail "the change made during the commit is lost"
rm "$c/g/written-during"
head -c $((40 << 20)) /dev/urandom >"$T/src/g/big-last"
rsync -aHAXS --delete "$T/src/" "$c/"
bg commit touch "$c/.snapfs/commit"
for _ in $(seq 1 500); do
	[ "$(status state)" = STATUS_BACKING_UP ] && break
	# A commit over before a poll saw it must not cost 500 polls.
	[ -s "$T/commit.rc" ] && break
	sleep 0.01
done
# SIGTERM, as systemd stops it: the daemon ends the commit, then exits.
kill -TERM "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
bg_wait commit || fail "the commit running at SIGTERM failed"
! is_mounted "$m" || fail "still mounted after SIGTERM"
remount
n1=$(ls "$m/series/$S" | grep -c '^[0-9]')
[ "$n1" = $((n0 + 2)) ] || fail "the commit an unmount interrupted did not land ($n0 -> $n1)"
[ "$(status state)" = STATUS_READY ] || fail "after the unmount: $(status state)"
same_tree "$T/src/g" "$m/series/$S/$((n0 + 2))/g"

say "unmount with changes staged keeps them; a second daemon on the stage is read-only"
echo staged >"$c/g/kept-over-unmount"
unmount_repo "$m" "$MOUNT_PID"
remount
[ "$(cat "$c/g/kept-over-unmount")" = staged ] || fail "the stage did not survive an unmount"
[ "$(status stage)" = resumed ] || fail "stage after a clean unmount: $(status stage)"
m2="$T/mnt2"
mkdir -p "$m2"
"$SNAPFS" -f -o "cache_dir=$T/cache" "$r" "$m2" 2>"$T/second.log" &
second=$!
on_exit "kill $second 2>/dev/null; fusermount3 -uz '$m2' 2>/dev/null"
for _ in $(seq 1 100); do is_mounted "$m2" && break; sleep 0.1; done
expect_fail 1 "Read-only file system" touch "$m2/control/crash/g/second"
grep -q "in use by another snapfs" "$T/second.log" || { cat "$T/second.log"; fail "no log line for the busy stage"; }
kill "$second"
wait "$second" 2>/dev/null || true
touch "$c/.snapfs/commit" || fail "commit of the kept stage"
snapctl -r "$r" check --read-data -q || fail "final check"

say "a full stage disk: ENOSPC at the write, the stage stays usable"
if [ "$STORE" = file ]; then
	sm="$T/stagefs"
	mkdir -p "$sm"
	mount -t tmpfs -o size=24m tmpfs "$sm"
	on_exit "umount -l '$sm' 2>/dev/null"
	unmount_repo "$m" "$MOUNT_PID"
	mount_repo "$r" "$m" -o "stage_dir=$sm"
	cs="$m/control/fullstage"
	mkdir "$cs" "$cs/g"
	head -c $((40 << 20)) /dev/urandom >"$T/too-big"
	# Thrice: a batch SQLite could not commit on the full disk used to
	# be lost whole, and the close said EIO (1 time in 6 under load).
	for _ in 1 2 3; do
		expect_fail 1 "No space left on device" cp "$T/too-big" "$cs/g/too-big"
		rm -f "$cs/g/too-big"
	done
	echo fits >"$cs/g/small" || fail "the stage is unusable after ENOSPC"
	touch "$cs/.snapfs/commit" || fail "commit after ENOSPC"
	[ "$(cat "$m/labels/fullstage/1/g/small" 2>/dev/null || cat "$m"/series/fullstage-*/1/g/small)" = fits ] ||
		fail "the commit after ENOSPC lost the file"
	unmount_repo "$m" "$MOUNT_PID"
	umount "$sm"
	remount
fi

say "a stage disk that fails for a moment: the undone changes fail the next close and the next commit"
if [ -x "${SYSFILTER:-}" ]; then
	unmount_repo "$m" "$MOUNT_PID"
	# Every pwrite of the daemon fails with EIO while $T/eio exists.
	printf '#!/bin/sh\nexec "%s" -f pwrite64=EIO:%s -- "%s" "$@"\n' \
		"$SYSFILTER" "$T/eio" "$SNAPFS" >"$T/snapfs-eio"
	chmod +x "$T/snapfs-eio"
	real=$SNAPFS
	SNAPFS="$T/snapfs-eio"
	remount
	SNAPFS=$real
	echo before >"$c/g/before" || fail "a file before the failure"
	touch "$T/eio"
	# Namespace changes wait for the batch, which cannot be written.
	mkdir "$c/g/undone" && ln -s before "$c/g/undone-link" ||
		fail "mkdir and symlink (they return before the batch)"
	sleep 1
	rm -f "$T/eio"
	echo after >"$T/after"
	expect_fail 1 "failed to close.*Input/output error" cp "$T/after" "$c/g/after"
	grep -q "did not reach the stage and are undone" "$T/snapfs.log" || fail "no log line for the undone changes"
	expect_fail 1 "Input/output error" touch "$c/.snapfs/commit"
	grep -q "undone" "$c/.snapfs/status" || fail "status does not say the changes were undone"
	[ ! -e "$c/g/undone" ] || fail "an undone mkdir still shows"
	# Copied again, the commit takes everything.
	mkdir -p "$c/g/undone"
	ln -sf before "$c/g/undone-link"
	touch "$c/.snapfs/commit" || fail "the commit after copying again"
	n=$(ls "$m/series/$S" | sort -n | tail -1)
	for f in before after undone undone-link; do
		[ -e "$m/series/$S/$n/g/$f" ] || [ -L "$m/series/$S/$n/g/$f" ] || fail "$f missing from backup $n"
	done
	[ "$(cat "$m/series/$S/$n/g/after")" = after ] || fail "after in the backup"
	fusermount3 -u "$m"
	wait "$MOUNT_PID" 2>/dev/null || true
	remount
fi

say "a stage whose base is gone, or whose repository changed, is discarded"
echo orphaned >"$c/g/orphaned"
unmount_repo "$m" "$MOUNT_PID"
snapctl -r "$r" delete "$S" -q
remount
[ "$(status stage)" = discarded ] || fail "stage with a deleted base: $(status stage)"
grep -q "no longer exists" "$c/.snapfs/status" || fail "status does not say why"
[ ! -e "$c/g/orphaned" ] || fail "a discarded stage still shows"
unmount_repo "$m" "$MOUNT_PID"
if [ "$STORE" = file ]; then
	sd="$T/stages"
	r2="$T/repo2"
	snapctl -r "$r2" init --no-encryption -q
	mount_repo "$r2" "$m" -o "stage_dir=$sd"
	mkdir "$m/control/samedir" "$m/control/samedir/g"
	echo one >"$m/control/samedir/g/f"
	unmount_repo "$m" "$MOUNT_PID"
	rm -rf "$r2"
	snapctl -r "$r2" init --no-encryption -q
	mount_repo "$r2" "$m" -o "stage_dir=$sd"
	[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stage"])' "$m/control/samedir/.snapfs/status")" = discarded ] ||
		fail "a stage of another repository was kept"
	grep -q "keys or configuration changed" "$m/control/samedir/.snapfs/status" || fail "why not said"
	unmount_repo "$m" "$MOUNT_PID"
fi
say "control crash: all checks passed"
