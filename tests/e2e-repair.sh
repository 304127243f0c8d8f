#!/bin/sh
# check --repair: a no-op on an undamaged repository; after kill -9 of a
# first backup and of a later one, it keeps their packs while their
# leases are fresh and then removes exactly them; a running backup is
# left alone; a backup stopped past the grace commits nothing instead of
# pointing at packs repair removed; a damaged index object is reported
# and costs no dedup; a mount's stage keeps its streamed
# packs through a repair while the daemon holds it, and says what was
# lost when the daemon was away.  Leases are refreshed every second here
# (SNAPFS_LEASE_PERIOD=1), so the shortest grace is 6 s.
. "$TESTLIB"

export SNAPFS_LEASE_PERIOD=1
G=8s
r="$T/repo"
repo_init "$r" --no-encryption
mkdir -p "$T/a" "$T/big"
echo 1 >"$T/a/f"
snapctl -r "$r" backup -q --label one "$T/a"
echo 2 >"$T/a/f"
snapctl -r "$r" backup -q --label one "$T/a"
snapctl -r "$r" backup -q --label gone "$T/a"
snapctl -r "$r" delete "$(ls "$r/manifests" | grep '^gone-')" >/dev/null
S1=$(ls "$r/manifests" | grep '^one-')
head -c 40000000 /dev/urandom >"$T/big/f"
# Objects, without the temporary files of puts a kill cut short (the file
# store's own, swept after an hour: e2e-filestore).
objs() { (cd "$r" && find . -type f ! -name '.snapfs-tmp-*' | sort); }
repair() { snapctl -r "$r" check --repair --grace "$G" "$@" >"$T/rep.out" 2>"$T/rep.err"; }

say "an undamaged repository: repair deletes nothing"
objs >"$T/before"
repair
cat "$T/rep.out"
grep -q "^repair: removed 0 object(s) (0 series without a backup), 0 stale lease(s); 0 series kept" "$T/rep.out" ||
	fail "repair of an undamaged repository: $(cat "$T/rep.out" "$T/rep.err")"
objs | cmp -s - "$T/before" || fail "repair changed an undamaged repository"

# started LABEL DIR: a slow backup of DIR in the background (pid in bpid),
# returned once its first pack is in the store.
started() {
	n0=$(objs | grep -c '^./data/')
	"$SNAPCTL" -r "$r" backup -q --label "$1" --limit-upload 10M "$2" \
		>"$T/b.out" 2>"$T/b.err" &
	bpid=$!
	for _ in $(seq 1 100); do
		[ "$(objs | grep -c '^./data/')" -gt "$n0" ] && return 0
		sleep 0.1
	done
	fail "no pack of the backup of $1 appeared"
}

say "kill -9 of a first backup and of a later one"
started one "$T/big"
kill -9 "$bpid"
wait "$bpid" 2>/dev/null || true
started new "$T/big"
kill -9 "$bpid"
wait "$bpid" 2>/dev/null || true
left=$(($(objs | wc -l) - $(wc -l <"$T/before")))
echo "the killed backups left $left objects (packs and leases)"
snapctl -r "$r" check | grep -q "pack(s) not listed by any backup" || fail "check does not report them"
repair
grep -q "kept: a writer holds a lease" "$T/rep.err" || fail "fresh leases did not keep the packs"
[ "$(objs | wc -l)" = "$(($(wc -l <"$T/before") + left))" ] || fail "repair removed packs under a fresh lease"
sleep 9
repair
cat "$T/rep.err" "$T/rep.out"
grep -q "removed [1-9][0-9]* object(s) (1 series without a backup), 2 stale lease(s)" "$T/rep.out" ||
	fail "repair after the grace"
objs | cmp -s - "$T/before" || { objs | diff - "$T/before" >&2; fail "repair did not restore the pre-kill objects exactly"; }
snapctl -r "$r" check --read-data | grep -q "no problems" || fail "check after repair"
snapctl -r "$r" cat "$S1/2/a/f" | grep -qx 2 || fail "backup 2 after repair"

say "a running backup is left alone"
started one "$T/big"
repair
grep -q "series $S1: unreferenced packs kept: a writer holds a lease" "$T/rep.err" ||
	fail "repair during a backup: $(cat "$T/rep.err")"
wait "$bpid" || fail "the backup during repair failed: $(cat "$T/b.err")"
snapctl -r "$r" check --read-data | grep -q "no problems" || fail "check after a backup beside repair"

say "a backup stopped past the grace commits nothing"
head -c 30000000 /dev/urandom >"$T/big/g"
objs >"$T/before"
started one "$T/big"
kill -STOP "$bpid"
sleep 9
repair
grep -q "removed [1-9]" "$T/rep.out" || fail "repair kept the packs of a stopped writer"
cont_fails "$bpid" "$T/b.err" "lease on series $S1 went [0-9]* s without a refresh"
repair
objs | cmp -s - "$T/before" || fail "what the stopped backup left"
snapctl -r "$r" check --read-data | grep -q "no problems" || fail "check after the stopped backup"

say "bad --grace"
expect_fail 2 "shorter than 6 s" snapctl -r "$r" check --repair --grace 2s
expect_fail 2 "goes with --repair" snapctl -r "$r" check --grace 1h
expect_fail 2 "not a time span" snapctl -r "$r" check --repair --grace soon

if [ "$(id -u)" = 0 ]; then
	say "a mount's stage: its packs stay while the daemon holds them"
	m="$T/m"
	mount_repo "$r" "$m" -o stage_dir="$T/stage"
	L="$m/control/mnt"
	mkdir -p "$L/g"
	cp "$T/big/f" "$L/g/streamed"
	sleep 9
	repair
	grep -q "kept: a writer holds a lease" "$T/rep.err" || fail "repair beside the mount"
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	fusermount3 -uz "$m" 2>/dev/null || true
	mount_repo "$r" "$m" -o stage_dir="$T/stage"
	cmp "$T/big/f" "$L/g/streamed" || fail "the streamed file after a restart"
	touch "$L/.snapfs/commit" || fail "commit after repair"
	snapctl -r "$r" check --read-data | grep -q "no problems" || fail "check after the commit"

	say "... and a repair while no daemon held them is reported, not committed"
	# A first write after a commit stages whole until the series' index
	# is loaded (overlay.h); then it streams.
	sleep 2
	n0=$(objs | grep -c '^./data/')
	head -c 60000000 /dev/urandom >"$T/big2"
	cp "$T/big2" "$L/g/streamed2"
	for _ in $(seq 1 50); do
		[ "$(objs | grep -c '^./data/')" -gt "$n0" ] && break
		sleep 0.2
	done
	[ "$(objs | grep -c '^./data/')" -gt "$n0" ] || fail "streamed2 did not stream"
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	fusermount3 -uz "$m" 2>/dev/null || true
	sleep 9
	repair
	grep -q "removed [1-9]" "$T/rep.out" || fail "repair kept the packs of a dead daemon: $(cat "$T/rep.err" "$T/rep.out")"
	mount_repo "$r" "$m" -o stage_dir="$T/stage"
	grep -q "were removed from the store" "$L/.snapfs/status" ||
		fail "the stage does not say its packs were removed: $(cat "$L/.snapfs/status")"
	[ ! -e "$L/g/streamed2" ] || fail "a file whose packs are gone is still shown"
	snapctl -r "$r" check --read-data | grep -q "no problems" || fail "check at the end"
fi
say "a damaged index object: check names it, the next backup dedups from the trailers"
for I in "$r/index/$S1"/*; do
	printf 'XXXX' | dd of="$I" bs=1 seek=60 conv=notrunc status=none
done
expect_fail 6 "index/$S1/[0-9]*: does not authenticate" snapctl -r "$r" check
cp "$T/big/f" "$T/a/copy"
snapctl -r "$r" backup --json --label one "$T/a" >"$T/b.json"
added=$(json_get bytes_added <"$T/b.json")
echo "a copy of a 40 MB file already in the series added $added bytes"
[ "$added" -lt 1000000 ] || fail "no dedup past a damaged index object"
say "ok"
