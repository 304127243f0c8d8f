#!/bin/sh
# Which series a SERIES argument names.  Labels zk1, zk10 and zk1.old start
# with one another: a label must resolve to its own newest series or fail,
# never to another label's (restore zk1 must not bring back zk10's data,
# delete zk1 must not remove zk10).  Every command that takes SERIES is run
# on each label, before and after zk1 has a series; a series-id prefix is
# accepted only when it names one series with 8 hex digits of its uuid,
# and delete takes nothing but an exact series id.
. "$TESTLIB"

r=$(repo_url repo)
repo_init "$r" --no-encryption
S() { snapctl -r "$r" "$@"; }

# backup_of LABEL: a backup whose one file, g/who, names its label.
backup_of() {
	mkdir -p "$T/src-$1/g"
	echo "$1" >"$T/src-$1/g/who"
	S backup --label "$1" -q "$T/src-$1/g"
}

# series_of LABEL: the series id(s) of LABEL, one a line, from list --json.
series_of() {
	S list "$1" --json | python3 -c '
import json, sys
for s in sorted({b["series"] for b in json.load(sys.stdin)}):
    print(s)'
}

# resolves_to SPEC SERIES: show SPEC names SERIES.
resolves_to() {
	got=$(S show "$1" | sed -n 's/^series: *//p')
	[ "$got" = "$2" ] || fail "'$1' resolved to '$got', not '$2'"
	printf '   ok: %s -> %s\n' "$1" "$2"
}

# no_label LABEL: every command that takes SERIES refuses LABEL, which has
# no series, with exit 7 and touches nothing.
no_label() {
	l=$1
	msg="no series with label $l( |\$)"
	expect_fail 7 "$msg" S show "$l"
	expect_fail 7 "$msg" S show "$l/1"
	expect_fail 7 "$msg" S ls "$l"
	expect_fail 7 "$msg" S ls "$l/1/g"
	expect_fail 7 "$msg" S ls "$l/latest/g"
	expect_fail 7 "$msg" S cat "$l/1/g/who"
	expect_fail 7 "$msg" S restore "$l" --target "$T/x-$l"
	[ ! -e "$T/x-$l/g" ] || fail "restore $l wrote $T/x-$l/g"
	expect_fail 7 "$msg" S restore "$l" --backup-num 1 --target "$T/x-$l"
	expect_fail 7 "$msg" S restore "$l" --postings "$T/p-$l"
	[ ! -e "$T/p-$l/p1" ] || fail "restore $l --postings wrote p1"
	mkdir -p "$T/zk-$l"
	expect_fail 7 "$msg" S restore "$l" --zookeeper "$T/zk-$l/data"
	[ ! -e "$T/zk-$l/data" ] || fail "restore $l --zookeeper wrote"
	expect_fail 7 "$msg" S export "$l" -o "$T/x-$l.tar"
	[ ! -e "$T/x-$l.tar" ] || fail "export $l wrote an archive"
	expect_fail 7 "$msg" S check "$l"
	expect_fail 2 "'$l' is not a series id: delete takes the exact id" \
		S delete "$l"
	[ -z "$(series_of "$l")" ] || fail "list $l shows another label's series"
	S list "$l" | grep -q "(no backups with label $l)" ||
		fail "list $l: no '(no backups with label $l)'"
}

# own_label LABEL: every command that takes SERIES finds LABEL's series.
own_label() {
	l=$1 id=$(series_of "$1") d=$(mktemp -d "$T/own.XXXXXX")
	[ "$(echo "$id" | wc -l)" = 1 ] || fail "label $l: series '$id'"
	resolves_to "$l" "$id"
	resolves_to "$l/1" "$id"
	S ls "$l/1/g" | grep -q ' who$' || fail "ls $l/1/g"
	S ls "$l/latest/g" | grep -q ' who$' || fail "ls $l/latest/g"
	[ "$(S cat "$l/1/g/who")" = "$l" ] || fail "cat $l/1/g/who"
	[ "$(S cat "$l/latest/g/who")" = "$l" ] || fail "cat $l/latest/g/who"
	S restore "$l" --target "$d/r" -q
	[ "$(cat "$d/r/g/who")" = "$l" ] || fail "restore $l: wrong data"
	S restore "$l" --backup-num 1 --target "$d/r1" -q
	[ "$(cat "$d/r1/g/who")" = "$l" ] || fail "restore $l --backup-num 1"
	S export "$l" -o "$d/e.tar" -q
	[ "$(tar -xOf "$d/e.tar" g/who)" = "$l" ] || fail "export $l: wrong data"
	S check "$l" | grep -q '^checked 1 series, 1 backups' || fail "check $l"
	[ "$(S list "$l" --json | python3 -c '
import json, sys
print(" ".join(sorted({b["label"] for b in json.load(sys.stdin)})))')" = "$l" ] ||
		fail "list $l shows other labels"
	expect_fail 2 "'$l' is not a series id" S delete "$l"
	printf '   ok: every command finds %s\n' "$id"
}

say "zk10 alone: zk1 is not a prefix of it"
backup_of zk10
id10=$(series_of zk10)
no_label zk1
own_label zk10

say "zk10 and zk1.old: zk1 matches neither"
backup_of zk1.old
idold=$(series_of zk1.old)
no_label zk1
own_label zk10
own_label zk1.old

say "zk1 itself: each label its own series"
backup_of zk1
id1=$(series_of zk1)
own_label zk1
own_label zk10
own_label zk1.old

say "series ids and prefixes"
resolves_to "$id10" "$id10"
resolves_to "$id10/1" "$id10"
uuid10=${id10#zk10-}
p8=zk10-$(echo "$uuid10" | cut -c1-8)
p7=zk10-$(echo "$uuid10" | cut -c1-7)
resolves_to "$p8" "$id10"
S cat "$p8/1/g/who" | grep -qx zk10 || fail "cat through a prefix"
expect_fail 7 "no series with label $p7 \(series ids starting with it: $id10; a prefix must include 8 hex digits of the uuid\)" \
	S show "$p7"
expect_fail 7 "no series with label zk10- \(series ids starting with it: $id10;" \
	S show zk10-
expect_fail 7 "no series with label zk1\. \(series ids starting with it: $idold;" S show zk1.
expect_fail 7 "no series with label zk1\.o \(series ids starting with it: $idold;" \
	S restore zk1.o --target "$T/x-zk1.o"
absent=zk1-00000000-0000-4000-8000-000000000000
expect_fail 7 "series $absent has no backups" S show "$absent"
expect_fail 2 'bad backup' S show /1

say "an exact label wins over a series-id prefix"
# A label may hold '-' and hex digits: zk1-<first 8 digits of zk1's uuid>
# is a label of its own, and names its own series, not zk1's.
p1=zk1-$(echo "${id1#zk1-}" | cut -c1-8)
resolves_to "$p1" "$id1"
backup_of "$p1"
idp1=$(series_of "$p1")
resolves_to "$p1" "$idp1"
[ "$(S cat "$p1/1/g/who")" = "$p1" ] || fail "cat $p1: not its own data"
resolves_to zk1 "$id1"

if [ "$STORE" = file ]; then
	say "a prefix of two series ids is ambiguous, and lists both"
	# uuids are random: plant a second series id sharing zk10's first
	# 8 hex digits (resolution only lists manifest names).
	twin=$p8-0000-4000-8000-000000000000
	mkdir "$r/manifests/$twin"
	cp "$r/manifests/$id10/1.json" "$r/manifests/$twin/1.json"
	expect_fail 2 "no series with label $p8, and it is the start of 2 series ids: .*$id10" \
		S show "$p8"
	grep -q "$twin" "$T/err" || fail "the candidates do not include $twin"
	rm -r "$r/manifests/$twin"
	resolves_to "$p8" "$id10"
fi

say "delete takes only an exact series id, and says what it deleted"
for spec in zk1 zk10 zk1.old "$p8" "$p7" "$id10/1" "$id10-"; do
	expect_fail 2 "is not a series id|give SERIES-ID without /N" S delete "$spec"
done
[ "$(S list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 4 ] ||
	fail "a refused delete removed a backup"
expect_fail 7 "no series $absent" S delete "$absent"
S delete "$id1" >"$T/del.out"
grep -qx "deleted series $id1 (label zk1): 1 backups, [0-9]* packs" "$T/del.out" || {
	cat "$T/del.out" >&2
	fail "delete does not say what it deleted"
}
S delete "$idold" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["deleted"] == sys.argv[1] and d["label"] == "zk1.old", d
assert d["backups"] == 1 and d["packs"] >= 1, d' "$idold"
# zk1 is gone again: it must not fall through to zk10 (nor to zk1-...).
no_label zk1
no_label zk1.old
own_label zk10
own_label "$p1"
S check --read-data -q
echo "e2e-resolve: all good"
