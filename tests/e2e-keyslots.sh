#!/bin/sh
# snapctl key: a passphrase added to a key-file repository, a second key
# given and taken back, a passphrase changed, all without touching data;
# wrong secrets and damaged slots are refused, the mount takes a slot's
# secret, and the first slot raises the format to 3.
. "$TESTLIB"

# A file store: the test reads and damages snapfs.json itself.
r="$T/slots"
head -c 32 /dev/urandom >"$T/k1"
head -c 24 /dev/urandom >"$T/k2"
printf 'correct horse\n' >"$T/p1"
printf 'battery staple\n' >"$T/p2"
chmod 600 "$T/k1" "$T/k2" "$T/p1" "$T/p2"
repo_init "$r" --encryption-key-file "$T/k1"
mkdir -p "$T/src/d"
head -c 300000 /dev/urandom >"$T/src/d/big"
echo small >"$T/src/f"
snapctl -r "$r" backup --label slots -q --encryption-key-file "$T/k1" "$T/src"
version() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$T/slots/snapfs.json"; }
# data: every object but snapfs.json, with its bytes: key changes touch none.
data() { (cd "$T/slots" && find . -type f ! -name snapfs.json -exec sha256sum {} + | sort); }
data >"$T/data.before"
[ "$(version)" = 2 ] || fail "a new repository is not format 2"

say "a passphrase for a key-file repository"
snapctl -r "$r" key add --encryption-key-file "$T/k1" --new-password-file "$T/p1" >"$T/add.out"
cat "$T/add.out"
slot_p=$(sed -n 's/^added key slot \([0-9a-f]*\) (passphrase)$/\1/p' "$T/add.out")
[ -n "$slot_p" ] || fail "no slot id printed"
[ "$(version)" = 3 ] || fail "the first slot did not raise the format to 3"
snapctl -r "$r" restore slots -q --password-file "$T/p1" --target "$T/out1"
same_tree "$T/src" "$T/out1/src"
snapctl -r "$r" key list --password-file "$T/p1" | tee "$T/list"
grep -q "^primary  keyfile *$" "$T/list" && grep -q "^$slot_p  passphrase .*(opened it)$" "$T/list" ||
	fail "key list does not show the slots"

say "a second key for another team, then taken back"
added=$(snapctl -r "$r" key add --json --password-file "$T/p1" --new-key-file "$T/k2" |
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["kind"] == "keyfile"; print(d["slot"])')
slot_k=$(snapctl -r "$r" key list --json --encryption-key-file "$T/k2" |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["opened_with"]); assert d["primary"] == "keyfile"')
[ -n "$slot_k" ] && [ "$slot_k" != "$slot_p" ] && [ "$slot_k" = "$added" ] ||
	fail "the second key did not open it by its slot"
snapctl -r "$r" cat "slots/latest/src/f" --encryption-key-file "$T/k2" | grep -qx small ||
	fail "the second key does not read data"
snapctl -r "$r" key remove "$slot_k" --encryption-key-file "$T/k1"
expect_fail 5 "wrong encryption key for repository" \
	snapctl -r "$r" list --encryption-key-file "$T/k2"
snapctl -r "$r" list -q --password-file "$T/p1" >/dev/null || fail "removing one slot broke another"

say "the mount opens with a slot's passphrase"
mount_repo "$r" "$T/mnt" -o password_file="$T/p1"
cmp "$T/src/d/big" "$T/mnt/labels/slots/latest/src/d/big" || fail "mount read through a slot"
unmount_repo "$T/mnt" "$MOUNT_PID"

say "changing the passphrase of a slot"
snapctl -r "$r" key passwd -q --password-file "$T/p1" --new-password-file "$T/p2"
expect_fail 5 "wrong passphrase for repository" snapctl -r "$r" list --password-file "$T/p1"
snapctl -r "$r" list -q --password-file "$T/p2" >/dev/null || fail "new passphrase"
snapctl -r "$r" list -q --encryption-key-file "$T/k1" >/dev/null || fail "the primary key stopped working"

say "a new passphrase from a command is read once: what it said first opens"
echo 0 >"$T/asked"
ask="n=\$(cat '$T/asked'); echo \$((n + 1)) >'$T/asked'; echo answer-\$n"
snapctl -r "$r" key passwd -q --password-file "$T/p2" --new-password-command "$ask"
[ "$(cat "$T/asked")" = 1 ] || fail "the new passphrase was asked $(cat "$T/asked") times"
snapctl -r "$r" list -q --password-command "echo answer-0" >/dev/null || fail "the first answer does not open"
snapctl -r "$r" key passwd -q --password-command "echo answer-0" --new-password-file "$T/p2"

say "refusals that change nothing"
cp "$T/slots/snapfs.json" "$T/cfg.before"
expect_fail 5 "wrong encryption key" \
	snapctl -r "$r" key add --encryption-key-file "$T/k2" --new-password-file "$T/p1"
expect_fail 2 "opened with a key file, not a passphrase" \
	snapctl -r "$r" key passwd --encryption-key-file "$T/k1" --new-password-file "$T/p1"
head -c 31 /dev/urandom >"$T/short"
expect_fail 5 "must hold 16, 24 or 32 bytes" \
	snapctl -r "$r" key add --encryption-key-file "$T/k1" --new-key-file "$T/short"
expect_fail 7 "has no key slot 0123456789abcdef" \
	snapctl -r "$r" key remove 0123456789abcdef --encryption-key-file "$T/k1"
expect_fail 2 "give one new secret" \
	snapctl -r "$r" key add --encryption-key-file "$T/k1"
expect_fail 2 "unknown subcommand 'rotate'" snapctl -r "$r" key rotate
cmp -s "$T/cfg.before" "$T/slots/snapfs.json" || fail "a refused key change rewrote snapfs.json"

say "a damaged slot is a wrong passphrase, never wrong data; the others still open"
python3 - "$T/slots/snapfs.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
s = c["encryption"]["slots"][0]
w = bytearray.fromhex(s["wrapped_key"])
w[20] ^= 1
s["wrapped_key"] = w.hex()
json.dump(c, open(p, "w"), indent=2, sort_keys=True)
PY
expect_fail 5 "wrong passphrase for repository" snapctl -r "$r" list --password-file "$T/p2"
snapctl -r "$r" list -q --encryption-key-file "$T/k1" >/dev/null || fail "the primary key"
cp "$T/cfg.before" "$T/slots/snapfs.json"
data >"$T/data.after"
cmp -s "$T/data.before" "$T/data.after" || fail "a key change touched data"
echo "   data objects unchanged: $(wc -l <"$T/data.after")"

say "a passphrase repository: passwd rewrites the primary and keeps format 2"
r2="$T/pass"
snapctl -r "$r2" init -q --password-file "$T/p1"
snapctl -r "$r2" key passwd -q --password-file "$T/p1" --new-password-file "$T/p2"
snapctl -r "$r2" list -q --password-file "$T/p2" >/dev/null || fail "changed primary passphrase"
expect_fail 5 "wrong passphrase" snapctl -r "$r2" list --password-file "$T/p1"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert c["version"] == 2 and "slots" not in c["encryption"]' \
	"$r2/snapfs.json" || fail "passwd without slots changed the format"
snapctl -r "$r2" key add -q --password-file "$T/p2" --new-key-file "$T/k2"
snapctl -r "$r2" list -q --encryption-key-file "$T/k2" >/dev/null || fail "a key for a passphrase repository"
snapctl -r "$T/plain" init -q --no-encryption
expect_fail 2 "is not encrypted: it has no keys to manage" snapctl -r "$T/plain" key list
echo "keyslots: all passed"
