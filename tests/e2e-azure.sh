#!/bin/sh
# snapfs on Azure Blob (Azurite 3.35.0, started and stopped here): the
# engine suite, SharedKey and SAS, 10 % injected faults, block uploads,
# and the credential/location errors.
. "$TESTLIB"
. "$TESTS_DIR/remote.sh"

start_azurite
export SNAPFS_TEST_STORE=azure AZ_CONTAINER=snapfs-test
run_engine_suite

u() { echo "azure://devstoreaccount1/snapfs-test/$2?endpoint=http://127.0.0.1:$1/devstoreaccount1"; }
good=$(u "$AZ_PORT" errs)
snapctl -r "$good" init --no-encryption -q
mkdir -p "$T/small"
echo data >"$T/small/f"
snapctl -r "$good" backup --label errs -q "$T/small"
n0=$(objects "$good")

say "wrong key, unknown container, unreachable port, bad location"
expect_fail 11 'access denied to snapfs-test/errs/.*: check credentials \(AuthorizationFailure' \
	env AZURE_STORAGE_KEY="$(head -c 64 /dev/urandom | base64 -w0)" "$SNAPCTL" -r "$good" list
no_secret_in "$T/err"
expect_fail 4 'container nosuch does not exist' \
	snapctl -r "azure://devstoreaccount1/nosuch/x?endpoint=http://127.0.0.1:$AZ_PORT/devstoreaccount1" list
port=$(free_port)
expect_fail 12 "cannot connect" snapctl -r "$(u "$port" errs)" list
expect_fail 11 "no credentials for" env -u AZURE_STORAGE_KEY "$SNAPCTL" -r "$good" list
expect_fail 11 "not valid base64" env AZURE_STORAGE_KEY='not base64!' "$SNAPCTL" -r "$good" list
expect_fail 2 "AZURE_STORAGE_ACCOUNT is 'other'" env AZURE_STORAGE_ACCOUNT=other "$SNAPCTL" -r "$good" list
expect_fail 2 "expected azure://ACCOUNT/CONTAINER" snapctl -r "azure://devstoreaccount1" list
[ "$(objects "$good")" = "$n0" ] || fail "a failed command wrote to the repository"

say "SAS token instead of the account key"
sas=$(python3 - "$AZURITE_KEY" <<'PY'
import base64, hashlib, hmac, sys, urllib.parse
key = base64.b64decode(sys.argv[1])
f = dict(sv="2021-08-06", ss="b", srt="sco", sp="rwdlac", se="2035-01-01T00:00:00Z", spr="https,http")
sts = "\n".join(["devstoreaccount1", f["sp"], f["ss"], f["srt"], "", f["se"], "", f["spr"], f["sv"], "", ""])
f["sig"] = base64.b64encode(hmac.new(key, sts.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(f))
PY
)
env -u AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN="$sas" "$SNAPCTL" -r "$good" backup --label errs -q "$T/small" ||
	fail "SAS backup failed"
env -u AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN="$sas" "$SNAPCTL" -r "$good" restore errs -q --target "$T/sasout"
cmp "$T/small/f" "$T/sasout/small/f"
bad_sas=$(echo "$sas" | sed 's/sig=[^&]*/sig=AAAA/')
expect_fail 11 "access denied" env -u AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN="$bad_sas" "$SNAPCTL" -r "$good" list

say "10 % of requests fail (500/503, dropped bodies, stalls, resets)"
start_proxy "$AZ_PORT" --rate 0.1 --stall 3 --seed 11
pp=$PROXY_PORT
snapctl -r "$(u "$AZ_PORT" faults)" init --no-encryption -q
fault_round_trip "$(u "$pp" faults)"
stop_proxy
cat "$T/proxy.stats"
[ "$(awk '$1 != "ok" && $1 != "expired" {n += $2} END {print n}' "$T/proxy.stats")" -ge 6 ] ||
	fail "too few faults were injected to mean anything"
say "block uploads (threshold lowered to 1 MiB; packs are 16 MiB)"
b=$(u "$AZ_PORT" blocks)
snapctl -r "$b" init --no-encryption -q
mkdir -p "$T/bb"
head -c $((20 << 20)) /dev/urandom >"$T/bb/big"
SNAPFS_AZURE_BLOCK_THRESHOLD=1048576 snapctl -r "$b" backup --label blocks -q "$T/bb"
snapctl -r "$b" restore blocks -q --target "$T/bbout"
cmp "$T/bb/big" "$T/bbout/bb/big"
snapctl -r "$b" check --read-data -q
paged_listing "$(u "$AZ_PORT" faults)"
hostile_listing "$AZ_PORT" u
mount_outage "$AZ_PORT" u
echo "e2e-azure: all good"
