#!/bin/sh
# Back up a tree holding every kind of entry, restore it, and compare
# content and metadata exactly; plain and encrypted (key file, passphrase).
. "$TESTLIB"

python3 "$TESTS_DIR/mkcorpus.py" "$T/src/data" --small 3000 >/dev/null
mkfifo "$T/src/data/a-fifo"
head -c 32 /dev/urandom >"$T/key32"
head -c 16 /dev/urandom >"$T/key16"
echo "correct horse battery staple" >"$T/pass"

# same_data DIR: DIR holds the corpus exactly; the FIFO is skipped by
# design, so the comparison leaves it out.
same_data() {
	mv "$T/src/data/a-fifo" "$T/fifo.aside"
	same_tree "$T/src/data" "$1"
	mv "$T/fifo.aside" "$T/src/data/a-fifo"
}

run() {
	name=$1
	shift
	say "$name: init, backup, restore, compare"
	repo=$(repo_url "repo-$name")
	eval "repo_$name='$repo'"
	repo_init "$repo" "$@"
	[ "$1" = --no-encryption ] && shift
	snapctl -r "$repo" "$@" backup --label corpus "$T/src/data" 2>"$T/warn" ||
		[ $? = 3 ] || fail "backup failed"
	grep -q "a-fifo: FIFOs are not backed up" "$T/warn" ||
		fail "no warning for the FIFO"
	rm -f "$T/src/data/a-fifo.keep"
	snapctl -r "$repo" "$@" restore corpus --target "$T/out-$name" -q
	same_data "$T/out-$name/data"
	# Sparse files cost what they hold.
	alloc=$(du -sk "$T/out-$name/data/zk/version-2/log.100000001" | cut -f1)
	[ "$alloc" -le 64 ] || fail "sparse log restored dense (${alloc} KiB)"
	snapctl -r "$repo" "$@" check --read-data -q
}

run plain --no-encryption
run aes256 --encryption-key-file "$T/key32"
run aes128 --encryption-key-file "$T/key16"
run passphrase --password-file "$T/pass"

if [ "$STORE" = file ]; then
	say "encrypted repository reveals no plaintext"
	if grep -rq "has xattrs" "$T/repo-aes256"; then fail "plaintext in packs"; fi
fi

say "ls, cat, show, list"
export SNAPFS_KEY_FILE="$T/key32"
r=$repo_aes256
snapctl -r "$r" show corpus --json | grep -q '"encrypted": true' 
snapctl -r "$r" ls corpus/1/data/links | grep -q 'rel -> target'
snapctl -r "$r" cat corpus/1/data/links/target | grep -q 'target data'
snapctl -r "$r" cat corpus/latest/data/islands.sparse | cmp - "$T/src/data/islands.sparse"
snapctl -r "$r" show corpus | grep -q 'state:     STATUS_READY'
snapctl -r "$r" show corpus --json | grep -q '"type": "full"'
snapctl -r "$r" list --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert len(v) == 1 and v[0]["backup_num"] == 1 and v[0]["type"] == "full", v
assert v[0]["files"] > 3000, v'

say "restore one group / one path"
snapctl -r "$r" restore corpus --path links/target --target "$T/one" -q
cmp "$T/one/data/links/target" "$T/src/data/links/target"
[ "$(find "$T/one" -type f | wc -l)" = 1 ] || fail "--path restored more"

say "restore under a descriptor limit far below the file count"
# Each file holds a descriptor until its last chunk is in: the restore
# must wait for writers, not fail with EMFILE (3000 files, limit 128).
(ulimit -n 128 && snapctl -r "$r" restore corpus --target "$T/fdlim" -q) ||
	fail "restore under ulimit -n 128 failed"
same_data "$T/fdlim/data"

say "tar export under the C locale: GNU tar extracts it exactly, and back"
# cron and systemd run with no locale; names are bytes, mtimes have
# nanoseconds, xattrs must reach GNU tar without warnings.
(unset LANG LC_ALL LC_CTYPE && snapctl -r "$r" export corpus -o "$T/c.tar" -q) ||
	fail "export under the C locale"
mkdir "$T/untar"
LC_ALL=C tar --xattrs --xattrs-include='*' -xpf "$T/c.tar" -C "$T/untar" 2>"$T/tar.err" ||
	fail "GNU tar could not extract the export"
[ ! -s "$T/tar.err" ] || { cat "$T/tar.err" >&2; fail "GNU tar warned"; }
same_data "$T/untar/data"
(unset LANG LC_ALL LC_CTYPE && snapctl -r "$r" backup --label fromtar -q "$T/c.tar") ||
	fail "importing the export (warnings?)"
snapctl -r "$r" restore fromtar --target "$T/fromtar" -q
same_data "$T/fromtar/c/data"
# A name that is not UTF-8 (Latin-1) survives export and import as bytes.
mkdir -p "$T/bytes/d" && echo latin1 >"$(printf '%s/bytes/d/caf\351' "$T")"
snapctl -r "$r" backup --label bytes -q "$T/bytes"
(unset LANG LC_ALL LC_CTYPE && snapctl -r "$r" export bytes -o "$T/b.tar" -q)
snapctl -r "$r" backup --label bytes2 -q "$T/b.tar"
snapctl -r "$r" restore bytes2 --target "$T/bytes2" -q
same_tree "$T/bytes/d" "$T/bytes2/b/bytes/d"

say "several groups, named"
snapctl -r "$r" backup --label multi -q "zk=$T/src/data/zk" "$T/src/data/names"
snapctl -r "$r" ls multi/1 | grep -q ' zk$'
snapctl -r "$r" restore multi --group names --target "$T/grp" -q
[ -d "$T/grp/names" ] && [ ! -e "$T/grp/zk" ] || fail "--group restored wrong groups"
same_tree "$T/src/data/names" "$T/grp/names"

say "delete removes the series and nothing else"
before=$(snapctl -r "$r" stats --json | json_get packs)
multi=$(snapctl -r "$r" list multi --json | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["series"])')
snapctl -r "$r" delete "$multi" -q
snapctl -r "$r" list | grep -q multi && fail "series still listed"
after=$(snapctl -r "$r" stats --json | json_get packs)
[ "$after" -lt "$before" ] || fail "no packs deleted"
snapctl -r "$r" check --read-data -q
echo "e2e-basic: all good"
