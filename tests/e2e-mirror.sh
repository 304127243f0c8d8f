#!/bin/sh
# snapctl mirror between real stores: a local repository to the RADOS
# Gateway, the gateway to Azurite; killed in the middle and run again
# (DST only ever holds whole backups, and the rerun copies the rest);
# --remove; key slots follow; another repository is refused.
. "$TESTLIB"
. "$TESTS_DIR/remote.sh"

start_rgw
start_azurite
head -c 32 /dev/urandom >"$T/key"
chmod 600 "$T/key"
export SNAPFS_KEY_FILE="$T/key"
src="$T/src-repo"
s3="s3://127.0.0.1:$S3_PORT/mirror/repo?secure=false"
az="azure://devstoreaccount1/mirror/repo?endpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1"
snapctl -r "$src" init -q --encryption-key-file "$T/key"
mkdir -p "$T/d1/sub" "$T/d2"
head -c 4000000 /dev/urandom >"$T/d1/a"
echo one >"$T/d1/sub/b"
echo two >"$T/d2/c"
snapctl -r "$src" backup --label alpha -q "$T/d1"
echo more >>"$T/d1/sub/b"
snapctl -r "$src" backup --label alpha -q "$T/d1"
snapctl -r "$src" backup --label beta -q "$T/d2"
# list_of REPO: the backups it lists (series and number).
list_of() { snapctl -r "$1" list --json | python3 -c 'import json,sys; [print(b["series"], b["backup_num"]) for b in json.load(sys.stdin)]' | sort; }

say "a local repository into an empty bucket: every backup, readable, checked"
# The bucket must exist (a throwaway repository beside repo/ makes it);
# repo/ itself is empty.
snapctl -r "s3://127.0.0.1:$S3_PORT/mirror/scratch?secure=false" init --create-bucket --no-encryption -q
snapctl mirror "$src" "$s3" >"$T/m1.out"
cat "$T/m1.out"
grep -q "snapfs.json written" "$T/m1.out" || fail "snapfs.json not copied"
[ "$(list_of "$src")" = "$(list_of "$s3")" ] || fail "the mirror lists other backups"
snapctl -r "$s3" check --read-data -q || fail "check of the mirror"
snapctl -r "$s3" restore alpha -q --target "$T/r1"
same_tree "$T/d1" "$T/r1/d1"

say "a second run copies nothing"
snapctl mirror "$src" "$s3" --json >"$T/m2.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["packs"] == 0 and d["manifests"] == 0 and d["present"] > 0, d' "$T/m2.json" ||
	fail "the second run copied again"

say "killed while copying: DST holds only whole backups; the rerun copies the rest"
head -c $((48 << 20)) /dev/urandom >"$T/d1/big"
snapctl -r "$src" backup --label alpha -q "$T/d1"
snapctl mirror "$src" "$s3" --limit-upload 8M >"$T/m3.out" 2>&1 &
pid=$!
sleep 2.5
kill -9 $pid 2>/dev/null || fail "the mirror ended before it could be killed"
wait $pid 2>/dev/null || true
# Every backup the mirror lists is whole.
snapctl -r "$s3" check --read-data -q || fail "an interrupted mirror left a broken backup"
list_of "$s3" | grep -q "alpha.* 3$" && echo "   (the third backup made it before the kill)"
snapctl mirror "$src" "$s3" --json >"$T/m4.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["packs"] > 0 and d["present"] > 0, d; print("   rerun: %d packs copied, %d objects there already" % (d["packs"], d["present"]))' "$T/m4.json"
[ "$(list_of "$src")" = "$(list_of "$s3")" ] || fail "the rerun did not complete the mirror"
snapctl -r "$s3" check --read-data -q

say "bucket to Azure: remote to remote"
snapctl -r "azure://devstoreaccount1/mirror/scratch?endpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1" \
	init --create-bucket --no-encryption -q
snapctl mirror "$s3" "$az" -q
[ "$(list_of "$s3")" = "$(list_of "$az")" ] || fail "the Azure mirror differs"
snapctl -r "$az" restore alpha/3 -q --target "$T/r2"
same_tree "$T/d1" "$T/r2/d1"

say "--remove: a series deleted at SRC goes from DST, after the copy"
beta=$(list_of "$src" | awk '/^beta-/ {print $1; exit}')
snapctl -r "$src" delete "$beta" -q
snapctl mirror "$src" "$az" --remove --json >"$T/m5.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["removed"] == 1, d' "$T/m5.json"
list_of "$az" | grep -q "^$beta " && fail "--remove kept $beta"
[ "$(list_of "$src")" = "$(list_of "$az")" ] || fail "after --remove"

say "a key slot added at SRC opens the mirror too"
printf 'mirror pass\n' >"$T/pass"
chmod 600 "$T/pass"
snapctl -r "$src" key add -q --new-password-file "$T/pass"
snapctl mirror "$src" "$s3" >"$T/m6.out"
grep -q "snapfs.json written" "$T/m6.out" || fail "the changed snapfs.json was not mirrored"
env -u SNAPFS_KEY_FILE "$SNAPCTL" -r "$s3" list -q --password-file "$T/pass" >/dev/null ||
	fail "the mirror does not open with the new passphrase"

say "another repository at DST is refused, and nothing is written"
other="$T/other"
snapctl -r "$other" init -q --no-encryption
n0=$(objects "$s3")
expect_fail 2 "holds another repository \\(id " snapctl mirror "$other" "$s3"
[ "$(objects "$s3")" = "$n0" ] || fail "a refused mirror wrote"
say "a key slot only the mirror has is never dropped; an empty source never empties it"
printf 'mirror team\n' >"$T/pass2"
chmod 600 "$T/pass2"
own=$(snapctl -r "$s3" key add --json --new-password-file "$T/pass2" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["slot"])')
n0=$(objects "$s3")
expect_fail 2 "has key slot $own, which .* does not" snapctl mirror "$src" "$s3"
snapctl -r "$s3" key remove -q "$own"
snapctl mirror "$src" "$s3" -q
mkdir -p "$T/emptied"
cp "$src/snapfs.json" "$T/emptied/"
expect_fail 2 "lists no backups: --remove would delete every series" \
	snapctl mirror "$T/emptied" "$s3" --remove
[ "$(objects "$s3")" = "$n0" ] || fail "a refused mirror changed the objects"
expect_fail 2 "give SRC and DST" snapctl mirror "$src"
expect_fail 4 "is not a snapfs repository" snapctl mirror "$T/nothing" "$T/dst2"
echo "mirror: all passed"
