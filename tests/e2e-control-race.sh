#!/bin/sh
# Two writers on one label: two mounts of one repository, each with its
# own stage, and a mount beside snapctl backup.  The create-only manifest
# put decides; the loser keeps its stage and says "conflict", or with
# on_conflict=next becomes the next backupNum.  The series is never
# broken (check passes, every backup holds exactly what its writer
# wrote).  Then commit_idle: a quiet label commits itself, not while a
# file is open for writing.
. "$TESTLIB"

[ "$(id -u)" = 0 ] || { echo "needs root (FUSE)"; exit 77; }
keyed_repo repo
a="$T/a" b="$T/b"
# refresh=0: each mount sees the other's backups at once.
mount_repo "$r" "$a" -o refresh=0
A_PID=$MOUNT_PID
mount_repo "$r" "$b" -o refresh=0,cache_dir="$T/cache-b",on_conflict=next
B_PID=$MOUNT_PID

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1/control/lab/.snapfs/status" "$2"; }
nums() { ls "$1/series/$S" | grep '^[0-9]' | sort -n | tr '\n' ' '; }
# has MNT NUM FILE...: backup NUM holds exactly these files in g/.
has() {
	mnt=$1 num=$2
	shift 2
	got=$(ls "$mnt/series/$S/$num/g" | tr '\n' ' ')
	[ "$got" = "$* " ] || fail "backup $num holds '$got', not '$* '"
}

say "a base backup; both mounts stage on it"
mkdir -p "$a/control/lab"
mkdir "$a/control/lab/g"
echo base >"$a/control/lab/g/base"
touch "$a/control/lab/.snapfs/commit" || fail "first commit"
S=$(ls "$a/series")
[ "$(field "$b" making)" = 2 ] || fail "mount b does not build on backup 1"

say "b loses the race with on_conflict=next: it becomes backup 3"
echo from-a >"$a/control/lab/g/a1"
echo from-b >"$b/control/lab/g/b1"
touch "$a/control/lab/.snapfs/commit" || fail "a's commit"
touch "$b/control/lab/.snapfs/commit" || fail "b's commit with on_conflict=next"
[ "$(nums "$a")" = "1 2 3 " ] || fail "backups after the race: $(nums "$a")"
has "$a" 2 a1 base
has "$a" 3 b1 base
grep -q "lab: committed $S/3" "$T/snapfs.log" || fail "no log line for backup 3"
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"]["backup_num"])' "$b/control/lab/.snapfs/status")" = 3 ] ||
	fail "b's next base is not backup 3"

say "a loses to snapctl backup: conflict, stage kept, abort starts afresh"
echo kept >"$a/control/lab/g/a2"
mkdir -p "$T/walk/g"
echo walked >"$T/walk/g/w"
snapctl -r "$r" backup --label lab -q "$T/walk/g"
[ "$(nums "$a")" = "1 2 3 4 " ] || fail "snapctl backup is not backup 4"
expect_fail 1 "Input/output error" touch "$a/control/lab/.snapfs/commit"
[ "$(field "$a" state)" = STATUS_ERROR ] || fail "state after a lost race: $(field "$a" state)"
field "$a" last_error | grep -q conflict || fail "last_error: $(field "$a" last_error)"
[ "$(cat "$a/control/lab/g/a2")" = kept ] || fail "the loser's stage was not kept"
[ "$(field "$a" staged_files)" -ge 1 ] || fail "staged_files after the conflict"
[ "$(nums "$a")" = "1 2 3 4 " ] || fail "the losing commit left a backup"
touch "$a/control/lab/.snapfs/abort" || fail "abort after the conflict"
[ "$(field "$a" making)" = 5 ] || fail "after abort a does not build on backup 4"
has "$a" 4 w

say "both commit at once, three times"
for t in 1 2 3; do
	echo "a$t" >"$a/control/lab/g/ra$t"
	echo "b$t" >"$b/control/lab/g/rb$t"
	before=$(ls "$a/series/$S" | grep -c '^[0-9]')
	touch "$a/control/lab/.snapfs/commit" 2>"$T/a.err" &
	pa=$!
	touch "$b/control/lab/.snapfs/commit" || fail "b's commit (trial $t)"
	if wait $pa; then
		made=2
	else
		grep -q "Input/output error" "$T/a.err" || fail "a: $(cat "$T/a.err")"
		field "$a" last_error | grep -q conflict ||
			fail "a failed without a conflict: $(field "$a" last_error)"
		touch "$a/control/lab/.snapfs/abort" || fail "abort (trial $t)"
		made=1
	fi
	after=$(ls "$a/series/$S" | grep -c '^[0-9]')
	[ "$after" = $((before + made)) ] || fail "trial $t: $before -> $after backups, $made expected"
	say "trial $t: $made new backup(s)"
done
snapctl -r "$r" check "$S" >"$T/check.out" 2>&1 || { cat "$T/check.out"; fail "check after the races"; }
unmount_repo "$b" "$B_PID"

say "commit_idle: a quiet label commits itself, a writer holds it off"
unmount_repo "$a" "$A_PID"
mount_repo "$r" "$a" -o refresh=0,commit_idle=1
n0=$(ls "$a/series/$S" | grep -c '^[0-9]')
exec 7>"$a/control/lab/g/idle"
echo written >&7
sleep 2.5
[ "$(ls "$a/series/$S" | grep -c '^[0-9]')" = "$n0" ] || fail "an idle commit ran while a file was open for writing"
exec 7>&-
for _ in $(seq 1 50); do
	[ "$(ls "$a/series/$S" | grep -c '^[0-9]')" -gt "$n0" ] && break
	sleep 0.2
done
n=$(ls "$a/series/$S" | grep '^[0-9]' | sort -n | tail -n 1)
[ "$n" -gt "$n0" ] || fail "no idle commit 10 s after the last change"
[ "$(cat "$a/series/$S/$n/g/idle")" = written ] || fail "the idle commit lost the file"
grep -q "lab: no change for" "$T/snapfs.log" || fail "no log line for the idle commit"
sleep 2
[ "$(ls "$a/series/$S" | grep '^[0-9]' | sort -n | tail -n 1)" = "$n" ] ||
	fail "an idle commit ran with nothing staged"
unmount_repo "$a" "$MOUNT_PID"
say "control race: all checks passed"
