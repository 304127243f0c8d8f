#!/bin/sh
# snapctl prune and delete: restic's keep rules over series, checked on 400
# days of daily series against a set computed apart; deletion that leaves
# nothing of a series; a tombstone that makes a backup stopped in flight
# (SIGSTOP, delete, SIGCONT) fail cleanly instead of reviving the series;
# --full-every and --full-after.  On the store under test
# (SNAPFS_TEST_STORE); the history is built locally, where its manifests
# get synthetic times, and mirrored there.
. "$TESTLIB"

DAYS=${PRUNE_DAYS:-400}
export TZ=UTC
hist="$T/hist"
snapctl -r "$hist" init --no-encryption -q
mkdir -p "$T/src"

say "a history of $DAYS daily series"
t0=$(date +%s)
for i in $(seq 1 "$DAYS"); do
	echo "$i" >"$T/src/f"
	snapctl -r "$hist" backup --full -q --label daily "$T/src"
done
echo "made in $(($(date +%s) - t0)) s"
# The newest series gets 2026-12-01T03:00Z, each older one a day less.
python3 - "$hist" <<'PY'
import glob, json, sys, time
ms = []
for p in glob.glob(sys.argv[1] + "/manifests/*/1.json"):
    ms.append((json.load(open(p)), p))
ms.sort(key=lambda m: m[0]["created_ns"], reverse=True)
base = 1796094000
for i, (m, p) in enumerate(ms):
    t = base - i * 86400
    m["created_ns"] = t * 10**9
    m["created"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))
    json.dump(m, open(p, "w"))
PY
if [ "$STORE" = file ]; then
	repo=$hist
else
	repo=$(repo_url prune)
	snapctl mirror -q "$hist" "$repo"
fi

# What restic's rules keep, computed here on the times alone.
python3 - "$hist" >"$T/expected" <<'PY'
import datetime as d, glob, json, sys
t = sorted((json.load(open(p))["created_ns"], p.split("/")[-2])
           for p in glob.glob(sys.argv[1] + "/manifests/*/1.json"))[::-1]
keep = set()
for key, n in ((lambda x: x.date(), 7),
               (lambda x: x.isocalendar()[:2], 4),
               (lambda x: (x.year, x.month), 12),
               (lambda x: x.year, 2)):
    last = None
    for ns, s in t:
        if not n:
            break
        v = key(d.datetime.fromtimestamp(ns // 10**9, d.timezone.utc))
        if v != last:
            last = v
            keep.add(s)
            n -= 1
keep.add(t[0][1])
print("\n".join(sorted(keep)))
PY
nkeep=$(wc -l <"$T/expected")
echo "expected to keep $nkeep of $DAYS"

say "prune --dry-run: the expected set, nothing deleted"
rules="--keep-daily 7 --keep-weekly 4 --keep-monthly 12 --keep-yearly 2"
# shellcheck disable=SC2086
snapctl -r "$repo" prune $rules --dry-run --json >"$T/dry.json"
python3 - "$T/dry.json" "$T/expected" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
want = open(sys.argv[2]).read().split()
got = sorted(s["series"] for s in j["series"] if s["action"] == "keep")
assert got == want, (len(got), len(want))
assert j["dry_run"] and j["kept"] == len(want)
assert j["deleted"] == len(j["series"]) - len(want)
assert j["backups_deleted"] == 0
newest = max(j["series"], key=lambda s: s["time"])
assert newest["reasons"] == "newest, daily, weekly, monthly, yearly, current", newest
oldest = min(j["series"], key=lambda s: s["time"])
assert oldest["action"] == "delete" and oldest["reasons"] == "", oldest
PY
n=$(snapctl -r "$repo" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = "$DAYS" ] || fail "a dry run deleted: $n backups left of $DAYS"

say "prune: exactly the rest goes, and nothing of it is left"
t0=$(date +%s)
# shellcheck disable=SC2086
snapctl -r "$repo" prune $rules >"$T/prune.txt"
echo "pruned in $(($(date +%s) - t0)) s"
head -n 4 "$T/prune.txt"
tail -n 1 "$T/prune.txt"
grep -q "^deleted $((DAYS - nkeep)) series of 1 labels, kept $nkeep" "$T/prune.txt" ||
	fail "prune summary: $(tail -n 1 "$T/prune.txt")"
snapctl -r "$repo" list --json | python3 -c '
import json, sys
got = sorted(b["series"] for b in json.load(sys.stdin))
want = open(sys.argv[1]).read().split()
assert got == want, (len(got), len(want))' "$T/expected"
snapctl -r "$repo" check | grep -q "checked $nkeep series, $nkeep backups.*no problems" ||
	fail "check after prune"
if [ "$STORE" = file ]; then
	[ "$(ls "$repo/data" | wc -l)" = "$nkeep" ] || fail "packs of pruned series left"
	[ "$(ls "$repo/manifests" | wc -l)" = "$nkeep" ] || fail "manifests of pruned series left"
	[ "$(ls "$repo/tombstones" | wc -l)" = "$((DAYS - nkeep))" ] || fail "tombstones"
fi
# Run again: the same rules keep the same series.
# shellcheck disable=SC2086
snapctl -r "$repo" prune $rules | tail -n 1 | grep -q "^deleted 0 series" ||
	fail "a second prune deleted more"

say "bad rules are refused before anything is read"
expect_fail 2 'give at least one --keep' snapctl -r "$repo" prune
expect_fail 2 "keep-daily: 'x' is not a count" snapctl -r "$repo" prune --keep-daily x
expect_fail 2 "'5' is not a time span" snapctl -r "$repo" prune --keep-within 5
expect_fail 2 'label' snapctl -r "$repo" prune --keep-last 1 --label 'a/b'
snapctl -r "$repo" prune --keep-last 1 --label nosuch | grep -q "^deleted 0 series of 0 labels" ||
	fail "a label without series"
snapctl -r "$repo" prune --keep-last 1 --keep-within 3d --dry-run >"$T/w.txt"
grep -q "kept 3 " "$T/w.txt" || fail "--keep-within 3d: $(tail -n 1 "$T/w.txt")"

say "--full-every 3 and --full-after"
for i in 1 2 3 4 5 6 7; do
	echo "$i" >"$T/src/f"
	snapctl -r "$repo" backup --full-every 3 --label every "$T/src" >"$T/fe.out" 2>"$T/fe.err"
done
	[ "$i" != 4 ] || grep -q "holds 3 backups (full every 3): starting a new series" "$T/fe.err" ||
		fail "no word of the new series"
snapctl -r "$repo" list --json every | python3 -c '
import json, sys, collections
c = collections.Counter(b["series"] for b in json.load(sys.stdin))
assert sorted(c.values()) == [1, 3, 3], c'
snapctl -r "$hist" backup -q --label after "$T/src"
python3 - "$hist" <<'PY'
import glob, json, sys, time
p = glob.glob(sys.argv[1] + "/manifests/after-*/1.json")[0]
m = json.load(open(p))
t = int(time.time()) - 10 * 86400
m["created_ns"] = t * 10**9
m["created"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))
json.dump(m, open(p, "w"))
PY
snapctl -r "$hist" backup --json --full-after 30d --label after "$T/src" >"$T/fa.json"
[ "$(json_get backup_num <"$T/fa.json")" = 2 ] || fail "--full-after 30d started a new series"
snapctl -r "$hist" backup --json --full-after 7d --label after "$T/src" >"$T/fa.json" 2>"$T/fa.err"
[ "$(json_get backup_num <"$T/fa.json")" = 1 ] || fail "--full-after 7d continued a 10-day-old series"
grep -q "began longer ago than full after allows" "$T/fa.err" || fail "no word of the new series"
expect_fail 2 "not a count" snapctl -r "$repo" backup --full-every -1 --label every "$T/src"
expect_fail 2 "not a time span" snapctl -r "$repo" backup --full-after 1q --label every "$T/src"

say "a backup stopped in flight while its series is deleted fails cleanly"
snapctl -r "$repo" backup -q --label race "$T/src"
s=$(snapctl -r "$repo" list --json race | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["series"])')
mkdir -p "$T/big"
head -c 100000000 /dev/urandom >"$T/big/data"
"$SNAPCTL" -r "$repo" backup --label race --limit-upload 20M "$T/big" >"$T/race.out" 2>"$T/race.err" &
bpid=$!
sleep 2
kill -STOP "$bpid"
snapctl -r "$repo" delete "$s" >/dev/null
snapctl -r "$repo" list race | grep -q "no backups" || fail "a deleted series is listed"
cont_fails "$bpid" "$T/race.err" "series $s was deleted while this backup ran: nothing was committed"
snapctl -r "$repo" list race | grep -q "no backups" || fail "the series came back"
if [ "$STORE" = file ]; then
	left=$(find "$repo/data/$s" "$repo/manifests/$s" -type f 2>/dev/null | wc -l)
	[ "$left" = 0 ] || fail "$left objects of the deleted series are left"
fi
snapctl -r "$repo" check | grep -q "no problems" || fail "check after the race"
snapctl -r "$repo" backup --json --label race "$T/src" >"$T/r2.json"
[ "$(json_get backup_num <"$T/r2.json")" = 1 ] || fail "the next backup did not start a new series"
[ "$(json_get series <"$T/r2.json")" != "$s" ] || fail "the next backup reused the deleted series"

say "a manifest that lands after the delete stays hidden and the next delete takes it"
if [ "$STORE" = file ]; then
	snapctl -r "$repo" backup -q --label late "$T/src"
	ls_s=$(ls "$repo/manifests" | grep '^late-')
	cp "$repo/manifests/$ls_s/1.json" "$T/late.json"
	snapctl -r "$repo" delete "$ls_s" >/dev/null
	mkdir -p "$repo/manifests/$ls_s"
	cp "$T/late.json" "$repo/manifests/$ls_s/1.json"
	snapctl -r "$repo" list late | grep -q "no backups" || fail "a tombstoned series is listed"
	snapctl -r "$repo" delete "$ls_s" | grep -q "1 backups" || fail "delete did not finish"
	[ ! -e "$repo/manifests/$ls_s/1.json" ] || fail "the late manifest is left"
	expect_fail 7 "no series" snapctl -r "$repo" delete "late-00000000-0000-4000-8000-000000000000"
fi
say "ok"
