#!/bin/sh
# Backup start costs the backups of the series, not its packs: a series of
# 5 backups in ~600 packs (64 KiB packs) on the RADOS Gateway starts its next
# backup with at most 20 requests before its first pack goes up, counted by
# a proxy, because each backup
# left an index object, and the newest of 30 series of a label is found
# without reading their manifests (time-ordered series ids); without them (a repository of an older snapfs) the
# same backup reads one trailer per pack, and still dedups.
. "$TESTLIB"
. "$TESTS_DIR/remote.sh"

start_rgw
head -c 32 /dev/urandom >"$T/key"
chmod 600 "$T/key"
export SNAPFS_KEY_FILE="$T/key"
local="$T/local"
snapctl -r "$local" init -q
python3 - "$local/snapfs.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["pack_size"] = 65536
json.dump(c, open(sys.argv[1], "w"), indent=2, sort_keys=True)
PY
mkdir -p "$T/src"
for i in $(seq 1 600); do
	head -c 100000 /dev/urandom >"$T/src/f$i"
done
for n in 1 2 3 4 5; do
	head -c 100000 /dev/urandom >"$T/src/f$n"
	snapctl -r "$local" backup -q --label scale "$T/src"
done
packs=$(find "$local/data" -type f | wc -l)
[ "$packs" -ge 500 ] || fail "only $packs packs"
mkdir -p "$T/small"
echo x >"$T/small/f"
for n in $(seq 1 30); do
	snapctl -r "$local" backup -q --full --label many "$T/small"
done
repo="s3://127.0.0.1:$S3_PORT/scale/repo?secure=false"
snapctl -r "s3://127.0.0.1:$S3_PORT/scale/make?secure=false" init -q --create-bucket --no-encryption
snapctl mirror -q "$local" "$repo"

# counted CMD...: runs CMD against the proxy's port (PP) and sets reqs to
# the requests it made, ms to its time.
counted() {
	rm -f "$T/requests"
	start_proxy "$S3_PORT" --rate 0 --log "$T/requests"
	PP=$PROXY_PORT
	t0=$(date +%s%N)
	"$@"
	ms=$((($(date +%s%N) - t0) / 1000000))
	stop_proxy
	reqs=$(awk '$1 == "ok" {print $2}' "$T/proxy.stats")
}
backup_via() {
	"$SNAPCTL" -r "s3://127.0.0.1:$PP/scale/repo?secure=false" backup --json \
		--label scale "$T/src" >"$T/b.json"
}

say "a backup of a series of 5 backups in $packs packs"
head -c 100000 /dev/urandom >"$T/src/f6"
counted backup_via
echo "with index objects: $reqs requests, $ms ms; $(json_get bytes_added <"$T/b.json") bytes added"
sed 's/?.*//; s|/[0-9a-f]\{32\}$|/PACK|' "$T/requests" | sort | uniq -c
# The start: what it asks before its first pack goes up.
start=$(awk '$1 == "PUT" && $2 ~ /\/data\// {exit} {n++} END {print n + 0}' "$T/requests")
echo "its start: $start requests before the first pack went up"
[ "$start" -le 20 ] || fail "$start requests to start a backup of a series of $packs packs"
with=$start

say "the newest of 30 series of a label is found from the listing alone"
many_via() {
	echo y >"$T/small/f"
	"$SNAPCTL" -r "s3://127.0.0.1:$PP/scale/repo?secure=false" backup -q \
		--label many "$T/small"
}
counted many_via
newest=$(ls "$local/manifests" | grep '^many-' | sort | tail -n 1)
reads=$(grep -c '^GET .*/manifests/' "$T/requests")
echo "a backup of label many (30 series): $reqs requests, $reads manifest reads"
[ "$reads" -le 2 ] || fail "$reads manifests read to find the newest of 30 series"
grep -q "^PUT .*/manifests/$newest/2.json" "$T/requests" || fail "the backup did not continue $newest"

say "the same without index objects (as an older snapfs left them)"
: >"$T/empty"
for k in $(find "$local/index" -type f | sed "s|^$local/||"); do
	s3_curl "$T/empty" DELETE "scale/repo/$k" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >/dev/null
done
head -c 100000 /dev/urandom >"$T/src/f7"
counted backup_via
echo "from pack trailers: $reqs requests, $ms ms; $(json_get bytes_added <"$T/b.json") bytes added"
[ "$reqs" -ge "$packs" ] || fail "the fallback made $reqs requests for $packs packs"
# Dedup held both ways: one changed 100 kB file, not the series again.
[ "$(json_get bytes_added <"$T/b.json")" -lt 1000000 ] || fail "the fallback did not dedup"
# check calls the missing objects damage (their manifests name them).
expect_fail 6 "check found" snapctl -r "$repo" check
grep -q "^error: scale/repo/index/.*: no such object" "$T/err" || fail "check's report"
start=$(awk '$1 == "PUT" && $2 ~ /\/data\// {exit} {n++} END {print n + 0}' "$T/requests")
echo "backup start: $with requests with index objects, $start without, for $packs packs"
say "ok"
