#!/bin/sh
# Three backups in a row upload only what changed (counted in the
# repository), an insertion early in a big file re-uploads a chunk or two,
# every backupNum restores to its own state, and --full starts a series.
. "$TESTLIB"

python3 "$TESTS_DIR/mkcorpus.py" "$T/src/d" --small 2000 >/dev/null
head -c $((24 << 20)) /dev/urandom >"$T/src/d/big.bin"
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
export SNAPFS_KEY_FILE="$T/key"
r=$(repo_url repo)
repo_init "$r"

backup() {
	snapctl -r "$r" backup --label inc --json "$@" "$T/src/d" >"$T/res.json" ||
		fail "backup failed"
	cat "$T/res.json" | json_get bytes_added
}

say "backup 1 (full)"
backup >/dev/null
cp -a "$T/src/d" "$T/state1"
b1=$(repo_bytes "$r")
json_get type <"$T/res.json" | grep -qx full

say "backup 2: three small files changed, one 24 MiB file with 100 bytes inserted"
echo "one more line" >>"$T/src/d/small/d01/e1/f00001.dat"
echo "changed" >"$T/src/d/names/with space"
echo "new file" >"$T/src/d/new-file"
python3 - "$T/src/d/big.bin" <<'PY'
import sys
p = sys.argv[1]
data = open(p, "rb").read()
open(p, "wb").write(data[:1000] + b"X" * 100 + data[1000:])
PY
added=$(backup)
cp -a "$T/src/d" "$T/state2"
b2=$(repo_bytes "$r")
json_get type <"$T/res.json" | grep -qx incremental
json_get backup_num <"$T/res.json" | grep -qx 2
grew=$((b2 - b1))
echo "   repository grew by $grew bytes (engine says $added)"
# The insertion re-chunks at most the chunks around it (max 4 MiB each).
[ "$grew" -lt $((9 << 20)) ] || fail "backup 2 uploaded $grew bytes"
[ "$(json_get files_reused <"$T/res.json")" -gt 2000 ] || fail "quick check did not reuse"

say "backup 3: nothing changed"
added=$(backup)
b3=$(repo_bytes "$r")
grew=$((b3 - b2))
echo "   repository grew by $grew bytes"
[ "$added" = 0 ] || fail "no-change backup added $added bytes of packs"
[ "$grew" -lt 65536 ] || fail "no-change backup grew repository by $grew"
[ "$(json_get files_new <"$T/res.json")" = 0 ] || fail "no-change backup read files"

say "backup 4: mtimes touched only: files are read again but dedup stores no data"
find "$T/src/d/small" -type f -exec touch {} +
cp -a "$T/src/d" "$T/state4"
backup >/dev/null
b4=$(repo_bytes "$r")
[ $((b4 - b3)) -lt $((1 << 20)) ] || fail "touch-only backup grew by $((b4 - b3))"

say "every backupNum restores its own state"
for n in 1 2 4; do
	snapctl -r "$r" restore "inc/$n" --target "$T/out$n" -q
	same_tree "$T/state$n" "$T/out$n/d"
done
snapctl -r "$r" restore "inc/3" --target "$T/out3" -q
same_tree "$T/state2" "$T/out3/d"

say "--full starts a new series; the label follows it"
snapctl -r "$r" backup --label inc --full -q "$T/src/d"
[ "$(snapctl -r "$r" list inc --json | python3 -c 'import json,sys; print(len({b["series"] for b in json.load(sys.stdin)}))')" = 2 ] ||
	fail "expected two series"
snapctl -r "$r" show inc --json | grep -q '"backup_num": 1'
old=$(snapctl -r "$r" list inc --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
print(min(v, key=lambda b: b["created"])["series"])')
snapctl -r "$r" restore "$old/1" --target "$T/old1" -q
same_tree "$T/state1" "$T/old1/d"
snapctl -r "$r" check --read-data -q
echo "e2e-incremental: all good"
