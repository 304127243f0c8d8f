#!/bin/sh
# Format compatibility: a repository written by snapfs 0.1 (format 1,
# tests/fixtures/repo-v1, made by tests/fixtures/mk-repo-v1.sh) is read,
# checked and written by this snapfs; it stays format 1 until a backup
# stores a FIFO or a device, which upgrades it to format 2 first (once,
# saying so), after which everything still reads.  File store only: the
# fixture is a directory.
. "$TESTLIB"

[ "$(id -u)" = 0 ] || { echo "SKIP: the fixture holds files of other owners"; exit 77; }
F=$TESTS_DIR/fixtures/repo-v1
# git keeps no mode but x: a private copy, as a key file should be (one
# others can read warns).
cp "$F/key.bin" "$T/key.bin"
chmod 600 "$T/key.bin"
export SNAPFS_KEY_FILE="$T/key.bin"
# fresh DIR: a copy of the fixture's repository at DIR.
fresh() { mkdir -p "$1" && tar -xzf "$F/repo.tgz" -C "$1" --strip-components=1; }
fresh "$T/pristine"
fresh "$T/repo"
r=$T/repo
cfg_version() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$1/snapfs.json"
}
[ "$(cfg_version "$r")" = 1 ] || fail "the fixture is not format 1"

# restored_as N SUM: backup N of the fixture restores to the tree SUM
# describes (tests/treesum.py of the source at backup time).
restored_as() {
	rm -rf "$T/restored"
	snapctl -r "$r" restore "fixture/$1" --target "$T/restored" -q
	python3 "$TESTS_DIR/treesum.py" "$T/restored/data" >"$T/sum"
	diff "$2" "$T/sum" >&2 || fail "backup $1 does not restore as $2"
}

say "format 1 reads: list, ls, cat, restore both backups, check --read-data"
snapctl -r "$r" list --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert [(b["label"], b["backup_num"]) for b in v] == [("fixture", 1), ("fixture", 2)], v'
snapctl -r "$r" ls fixture/2/data/sub | grep -q ' link -> ../hello.txt$' || fail "ls"
[ "$(snapctl -r "$r" cat fixture/1/data/hello.txt)" = "hello snapfs" ] || fail "cat"
restored_as 1 "$F/src-1.sum"
restored_as 2 "$F/src-2.sum"
snapctl -r "$r" check --read-data -q
cmp -s "$T/pristine/snapfs.json" "$r/snapfs.json" || fail "reading changed snapfs.json"

say "format 1 stays format 1 while no backup needs more"
cp -a "$T/restored/data" "$T/plain"
snapctl -r "$r" backup --label fixture -q "data=$T/plain" 2>"$T/err"
[ ! -s "$T/err" ] || { cat "$T/err" >&2; fail "a plain backup said something"; }
cmp -s "$T/pristine/snapfs.json" "$r/snapfs.json" || fail "upgraded without need"
restored_as 3 "$F/src-2.sum"

say "a backup with FIFOs and devices upgrades it to format 2, once"
cp -a "$T/restored/data" "$T/sp"
mkfifo "$T/sp/fifo" "$T/sp/sub/fifo2"
mknod "$T/sp/sub/null" c 1 3
mknod "$T/sp/sub/deeper/loop" b 7 0
snapctl -r "$r" backup --label fixture -q "data=$T/sp" 2>"$T/err"
[ "$(cat "$T/err")" = "snapctl: repository upgraded to format 2: older snapfs cannot read FIFOs/devices" ] ||
	{ cat "$T/err" >&2; fail "no (single) upgrade line"; }
[ "$(cfg_version "$r")" = 2 ] || fail "snapfs.json not at version 2"
# Nothing but the version changed: same keys, same id, same key check.
python3 - "$T/pristine/snapfs.json" "$r/snapfs.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a.pop("version") == 1 and b.pop("version") == 2
assert a == b, (a, b)
PY
snapctl -r "$r" backup --label fixture -q "data=$T/sp" 2>"$T/err"
[ ! -s "$T/err" ] || { cat "$T/err" >&2; fail "upgraded twice"; }

say "format 2 reads every backup, old and new"
restored_as 1 "$F/src-1.sum"
restored_as 2 "$F/src-2.sum"
snapctl -r "$r" restore fixture --target "$T/sp-out" -q
same_tree "$T/sp" "$T/sp-out/data"
snapctl -r "$r" check --read-data -q

say "two writers upgrading at once both succeed"
fresh "$T/race"
snapctl -r "$T/race" backup --label racea -q "$T/sp" 2>"$T/err.a" &
a=$!
snapctl -r "$T/race" backup --label raceb -q "$T/sp" 2>"$T/err.b" &
b=$!
wait $a || fail "writer a failed: $(cat "$T/err.a")"
wait $b || fail "writer b failed: $(cat "$T/err.b")"
[ "$(cfg_version "$T/race")" = 2 ] || fail "race: not format 2"
snapctl -r "$T/race" check --read-data -q

say "a format newer than this snapfs is refused, by its version"
fresh "$T/v4"
sed -i 's/"version": 1/"version": 4/' "$T/v4/snapfs.json"
expect_fail 1 'repository format version 4 is not supported \(this snapfs reads 1 to 3\)' \
	snapctl -r "$T/v4" list
echo "e2e-format: all good"
