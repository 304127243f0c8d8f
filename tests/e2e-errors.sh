#!/bin/sh
# Bad input gets a clear one-line error, a distinct exit status, and loses
# nothing: wrong and missing keys, corrupt, truncated and missing objects,
# bad labels, locations that are no repository, a second init, hostile
# directory objects, tampered manifests.
. "$TESTLIB"

mkdir -p "$T/src/g"
head -c $((3 << 20)) /dev/urandom >"$T/src/g/file.bin"
echo small >"$T/src/g/small.txt"
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
head -c 32 /dev/urandom >"$T/otherkey"; chmod 600 "$T/otherkey"
head -c 20 /dev/urandom >"$T/badkey"; chmod 600 "$T/badkey"
echo "right passphrase" >"$T/pass"; chmod 600 "$T/pass"
echo "wrong passphrase" >"$T/wrongpass"; chmod 600 "$T/wrongpass"
r="$T/repo"
snapctl -r "$r" init --encryption-key-file "$T/key" >/dev/null
snapctl -r "$r" --encryption-key-file "$T/key" backup --label errs -q "$T/src/g"
K="--encryption-key-file $T/key"

say "keys"
expect_fail 5 'wrong encryption key' snapctl -r "$r" --encryption-key-file "$T/otherkey" list
expect_fail 5 'must hold 16, 24 or 32 bytes' snapctl -r "$r" --encryption-key-file "$T/badkey" list
expect_fail 5 'encrypted with a key file: give --encryption-key-file' snapctl -r "$r" list
expect_fail 5 "key file $T/nope" snapctl -r "$r" --encryption-key-file "$T/nope" list
snapctl -r "$T/prepo" init --password-file "$T/pass" >/dev/null
expect_fail 5 'wrong passphrase' snapctl -r "$T/prepo" --password-file "$T/wrongpass" list
expect_fail 5 'encrypted with a passphrase' snapctl -r "$T/prepo" list
expect_fail 5 'needs --encryption-key-file, --key-command, --password-file or --password-command' snapctl -r "$T/nokey" init

say "repositories"
expect_fail 8 'already holds a snapfs repository' snapctl -r "$r" $K init
mkdir -p "$T/notrepo"
expect_fail 4 'is not a snapfs repository' snapctl -r "$T/notrepo" list
expect_fail 4 'is not a snapfs repository' snapctl -r "$T/missing" list
echo '{"format": "other"}' >"$T/notrepo/snapfs.json"
expect_fail 4 'not a snapfs repository config' snapctl -r "$T/notrepo" list
expect_fail 2 'unsupported location' snapctl -r "gopher://x/y" list
expect_fail 2 'no repository' env -u SNAPFS_REPOSITORY "$SNAPCTL" list

say "labels and specs"
for bad in ab ..abc "a b" abcdefghijklmnopqrstuvwxyz "a/b" "ünï" ""; do
	expect_fail 2 "a label is 3-25 characters of \[A-Za-z0-9_.-\] and does not start with '..'" \
		snapctl -r "$r" $K backup --label "$bad" "$T/src/g"
done
expect_fail 7 'no series with label nosuch$' snapctl -r "$r" $K show nosuch
expect_fail 7 'does not exist' snapctl -r "$r" $K show errs/9
expect_fail 2 'bad backup number' snapctl -r "$r" $K show errs/x
expect_fail 7 'has no group' snapctl -r "$r" $K restore errs --group nope --target "$T/x1"
expect_fail 7 'no such file or directory in the backup' snapctl -r "$r" $K cat errs/1/g/nope
expect_fail 2 "group 'g' given twice" snapctl -r "$r" $K backup --label errs "$T/src/g" "g=$T/src"
expect_fail 7 'group g: .*No such file' snapctl -r "$r" $K backup --label errs "g=$T/nonexistent"

say "target must be empty"
mkdir -p "$T/full"
echo keep >"$T/full/precious"
expect_fail 8 'is not empty' snapctl -r "$r" $K restore errs --target "$T/full"
[ "$(cat "$T/full/precious")" = keep ] || fail "target touched"

series=$(ls "$r/manifests")
pack=$(ls -S "$r/data/$series" | head -n 1)
cp -a "$r" "$T/pristine"

say "a flipped byte in a data chunk: restore and check name the pack"
python3 - "$r/data/$series/$pack" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 3] ^= 0x40
open(p, "wb").write(b)
PY
expect_fail 6 "data/$series/$pack at offset [0-9]+: blob [0-9a-f]+ fails authentication" \
	snapctl -r "$r" $K restore errs --target "$T/r1"
[ ! -e "$T/r1/g/file.bin" ] || fail "partial file left behind"
expect_fail 6 "$pack.*fails authentication" snapctl -r "$r" $K check --read-data
expect_fail 6 "fails authentication" snapctl -r "$r" $K cat errs/1/g/file.bin

say "check --read-data-subset: the slices read every pack once, and one finds the flipped byte"
rs="$T/slices"
snapctl -r "$rs" init --encryption-key-file "$T/key" >/dev/null
for i in 1 2 3 4 5 6 7 8; do
	mkdir -p "$T/sl/g"
	head -c 100000 /dev/urandom >"$T/sl/g/f"
	snapctl -r "$rs" $K backup --label slices -q "$T/sl/g"
done
blobs() { snapctl -r "$rs" $K --json check "$@" | json_get blobs; }
all=$(blobs --read-data)
sum=0
for k in 1 2 3 4; do sum=$((sum + $(blobs --read-data-subset $k/4))); done
[ "$sum" = "$all" ] || fail "slices 1/4..4/4 read $sum blobs, --read-data $all"
some=$(blobs --read-data-subset 50%)
[ "$some" -le "$all" ] || fail "50% read more than all"
sseries=$(ls "$rs/manifests")
spack=$(ls -S "$rs/data/$sseries" | head -n 1)
flip_byte "$rs/data/$sseries/$spack" 2000
bad=0
for k in 1 2 3 4; do
	if snapctl -r "$rs" $K check -q --read-data-subset $k/4 2>"$T/err"; then :; else
		[ $? = 6 ] && grep -q "$spack" "$T/err" || { cat "$T/err"; fail "slice $k/4"; }
		bad=$((bad + 1))
	fi
done
[ $bad = 1 ] || fail "$bad slices found the flipped byte, not 1"
expect_fail 2 "bad subset '0/4'" snapctl -r "$rs" $K check --read-data-subset 0/4
expect_fail 2 "bad subset '150%'" snapctl -r "$rs" $K check --read-data-subset 150%

say "a flipped byte in a directory object"
rm -rf "$r" && cp -a "$T/pristine" "$r"
python3 - "$r" "$series" <<'PY'
import json, sys
repo, series = sys.argv[1:]
m = json.load(open("%s/manifests/%s/1.json" % (repo, series)))
root = m["groups"][0]["root"]
p = "%s/data/%s/%s" % (repo, series, root["pack"])
b = bytearray(open(p, "rb").read())
b[root["offset"] + root["length"] // 2] ^= 1
open(p, "wb").write(b)
PY
expect_fail 6 "data/$series/[0-9a-f]+ at offset [0-9]+: blob [0-9a-f]+ fails authentication" \
	snapctl -r "$r" $K restore errs --target "$T/r2"
expect_fail 6 "errs-.*/1/g: .*fails authentication" snapctl -r "$r" $K check
expect_fail 6 "fails authentication" snapctl -r "$r" $K ls errs/1/g

say "a truncated pack"
rm -rf "$r" && cp -a "$T/pristine" "$r"
truncate -s 1000000 "$r/data/$series/$pack"
expect_fail 6 "$pack: (truncated|bad pack footer)" snapctl -r "$r" $K restore errs --target "$T/r3"
expect_fail 6 "$pack" snapctl -r "$r" $K check

say "a missing pack"
rm -rf "$r" && cp -a "$T/pristine" "$r"
rm "$r/data/$series/$pack"
expect_fail 6 "$pack: pack is missing" snapctl -r "$r" $K restore errs --target "$T/r4"
expect_fail 6 "$pack: missing" snapctl -r "$r" $K check

say "a missing or tampered manifest"
rm -rf "$r" && cp -a "$T/pristine" "$r"
sed -i 's/"files": 2/"files": 3/' "$r/manifests/$series/1.json"
expect_fail 6 "MAC mismatch" snapctl -r "$r" $K show errs/1
rm "$r/manifests/$series/1.json"
expect_fail 7 "does not exist" snapctl -r "$r" $K restore "$series/1" --target "$T/r5"

say "a plain manifest planted in an encrypted repository"
rm -rf "$r" && cp -a "$T/pristine" "$r"
python3 - "$r/manifests/$series/1.json" <<'PY'
import json, sys
p = sys.argv[1]
m = json.load(open(p))
del m["mac"]
m["encrypted"] = False
json.dump(m, open(p, "w"))
PY
expect_fail 6 "no MAC in an encrypted repository" snapctl -r "$r" $K show errs

say "hostile directory objects are refused; nothing escapes the target"
h="$T/hrepo"
snapctl -r "$h" init --no-encryption >/dev/null
for kind in dotdot slash absname dup; do
	s=$("$MKHOSTILE" "$h" "$kind")
	mkdir -p "$T/h-$kind/deep"
	expect_fail 6 "malformed \(bad or hostile entry\)" \
		snapctl -r "$h" restore "$s" --target "$T/h-$kind/deep"
	[ -z "$(find "$T/h-$kind" -type f)" ] || fail "$kind: a file was written"
done
[ ! -e /tmp/snapfs-escaped ] && [ ! -e "$T/escaped" ] || fail "escaped"

say "a symlink planted in the target is not followed"
mkdir -p "$T/outside" "$T/planted"
ln -s "$T/outside" "$T/planted/g"
snapctl -r "$T/pristine" $K restore errs --overwrite --target "$T/planted" -q
[ -z "$(ls "$T/outside")" ] || fail "restore wrote through a planted symlink"
[ -d "$T/planted/g" ] && [ ! -L "$T/planted/g" ] || fail "symlink not replaced"
cmp "$T/planted/g/file.bin" "$T/src/g/file.bin"
echo "e2e-errors: all good"
