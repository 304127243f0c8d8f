#!/bin/sh
# snapctl diff: every kind of change between two backups, exactly, and
# cheaply: a large unchanged subtree is skipped unread.
. "$TESTLIB"

repo=$(repo_url diff)
repo_init "$repo" --no-encryption
S="$T/src"
mkdir -p "$S/big" "$S/gone/sub" "$S/chg"
for i in $(seq 1 300); do
	mkdir "$S/big/d$i"
	echo "$i" >"$S/big/d$i/f"
done
echo a >"$S/gone/x"
echo b >"$S/gone/sub/y"
head -c 200000 /dev/urandom >"$S/chg/data"
echo meta >"$S/chg/meta"
echo time >"$S/chg/touched"
ln -s t1 "$S/chg/link"
echo was-a-file >"$S/chg/typ"
mkfifo "$S/chg/fifo"
echo same >"$S/chg/same"
setfattr -n user.tag -v one "$S/chg/same" 2>/dev/null || true
snapctl -r "$repo" backup --label dif -q "$S"

rm -rf "$S/gone"
# Change 10 bytes in the middle: content, same size.
printf 'XXXXXXXXXX' | dd of="$S/chg/data" bs=1 seek=100000 conv=notrunc status=none
chmod 600 "$S/chg/meta"
touch -d '2001-02-03 04:05:06' "$S/chg/touched"
ln -sfn t2 "$S/chg/link"
rm "$S/chg/typ"
mkdir "$S/chg/typ"
echo inside >"$S/chg/typ/in"
mkdir -p "$S/new/deeper"
echo n >"$S/new/deeper/n"
xattrs=""
if setfattr -n user.tag -v two "$S/chg/same" 2>/dev/null; then
	xattrs=1
fi
snapctl -r "$repo" backup --label dif -q "$S"
series=$(snapctl -r "$repo" list dif --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["series"])')

say "every kind of change, in path order"
{
	echo "M    src/chg/data"
	echo "M    src/chg/link"
	echo "U    src/chg/meta"
	[ -n "$xattrs" ] && echo "U    src/chg/same"
	echo "U    src/chg/touched"
	echo "T    src/chg/typ/"
	echo "+    src/chg/typ/in"
	echo "-    src/gone/"
	echo "-    src/gone/sub/"
	echo "-    src/gone/sub/y"
	echo "-    src/gone/x"
	echo "+    src/new/"
	echo "+    src/new/deeper/"
	echo "+    src/new/deeper/n"
} >"$T/want"
snapctl -r "$repo" diff dif/1 "$series/2" >"$T/got"
tail -n 1 "$T/got"
sed '$d' "$T/got" >"$T/changes"
diff "$T/want" "$T/changes" || fail "diff output differs"
grep -q "shared skipped unread" "$T/got" || fail "no summary"

say "--json: the same changes, with types and counts; the 300 unchanged directories skipped"
snapctl -r "$repo" diff "$series/1" "$series/2" --json >"$T/d.json"
python3 - "$T/d.json" "$xattrs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ch = {(c["kind"], c["path"]): c["type"] for c in d["changes"]}
assert ch[("T", "src/chg/typ")] == "dir", ch
assert ch[("-", "src/gone/x")] == "file"
assert ch[("M", "src/chg/link")] == "symlink"
st = d["stats"]
meta = 3 if sys.argv[2] else 2
assert (st["added"], st["removed"], st["changed"], st["metadata"], st["type_changed"]) == \
    (4, 4, 2, meta, 1), st
# src, src/chg on each side, and the new and gone directories' trees:
# never the 300 under big/, which is skipped as one.
assert st["trees_read"] <= 10, st
assert st["trees_same"] >= 1, st
print("   %d changes, %d directory objects read, %d shared skipped" %
      (len(d["changes"]), st["trees_read"], st["trees_same"]))
PY

say "the same backup twice: no changes; the reverse: the inverse changes"
snapctl -r "$repo" diff dif/2 dif/2 >"$T/none"
[ "$(wc -l <"$T/none")" = 1 ] || fail "a backup differs from itself"
snapctl -r "$repo" diff dif/2 dif/1 -q | grep -c '^+    src/gone' | grep -qx 4 || fail "reverse diff"

say "across series (a new full backup) and to a group that is gone"
snapctl -r "$repo" backup --label dif --full -q "$S"
snapctl -r "$repo" backup --label other -q "$T/src/chg"
new=$(snapctl -r "$repo" list dif --json |
	python3 -c 'import json,sys; print([b["series"] for b in json.load(sys.stdin) if b["series"] != sys.argv[1]][0])' "$series")
[ "$new" != "$series" ] || fail "no new series"
snapctl -r "$repo" diff "$series/2" "$new/1" >"$T/cross"
[ "$(wc -l <"$T/cross")" = 1 ] || { cat "$T/cross"; fail "the same tree in another series differs"; }
snapctl -r "$repo" diff "$new/1" other >"$T/groups"
grep -q '^-    src/$' "$T/groups" && grep -q '^+    chg/$' "$T/groups" &&
	grep -q '^+    chg/data$' "$T/groups" || { cat "$T/groups"; fail "groups only on one side"; }

say "errors"
expect_fail 7 "backup dif-.*/9 does not exist" snapctl -r "$repo" diff dif/1 dif/9
expect_fail 2 "give two backups" snapctl -r "$repo" diff dif/1
echo "diff: all passed"
