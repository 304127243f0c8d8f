#!/bin/sh
# Backups need no right to delete: on the RADOS Gateway, a user whose
# bucket policy denies s3:DeleteObject backs up (full and incremental),
# commits through the mount's control/, and mirrors; its delete and
# prune fail without deleting anything, and the owner's prune and
# check --repair clean up what it could not (its leases).
. "$TESTLIB"
. "$TESTS_DIR/remote.sh"

# Leases refreshed every second: the owner's repair may then take those
# the appender could not delete after 6 s instead of a day.
export SNAPFS_LEASE_PERIOD=1
start_rgw
# The owner (user "test") keeps every right, also on the objects the
# appender owns; the appender may list, get and put, never delete.
owner_ak=$AWS_ACCESS_KEY_ID owner_sk=$AWS_SECRET_ACCESS_KEY
ak=appender
sk=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
timeout 60 radosgw-admin -c "$RGW_CONF" -n client.admin user create --uid=appender \
	--display-name=appender --access-key="$ak" --secret="$sk" >/dev/null
b=appendonly
repo="s3://127.0.0.1:$S3_PORT/$b/repo?secure=false"
mirror="s3://127.0.0.1:$S3_PORT/$b/mirror?secure=false"
snapctl -r "$repo" init -q --no-encryption --create-bucket
cat >"$T/policy.json" <<EOF
{"Version": "2012-10-17", "Statement": [
 {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/test"]},
  "Action": ["s3:*"], "Resource": ["arn:aws:s3:::$b", "arn:aws:s3:::$b/*"]},
 {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/appender"]},
  "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
  "Resource": ["arn:aws:s3:::$b", "arn:aws:s3:::$b/*"]},
 {"Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam:::user/appender"]},
  "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::$b/*"]}]}
EOF
s3_curl "$T/policy.json" PUT "$b?policy=" "$owner_ak" "$owner_sk" || fail "PutBucketPolicy"
app() { env AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk" "$SNAPCTL" "$@"; }

say "the policy holds: the appender cannot delete"
echo x >"$T/x"
: >"$T/empty"
s3_curl "$T/x" PUT "$b/probe" "$ak" "$sk" >/dev/null || fail "appender put"
if s3_curl "$T/empty" DELETE "$b/probe" "$ak" "$sk" >/dev/null 2>&1; then
	fail "the appender could delete: the policy is not in force"
fi

say "backup, incremental backup, mirror with put and get only"
mkdir -p "$T/src"
head -c 20000000 /dev/urandom >"$T/src/big"
echo one >"$T/src/small"
app -r "$repo" backup -q --label app "$T/src" || fail "backup as the appender"
echo two >"$T/src/small"
app -r "$repo" backup -q --label app "$T/src" || fail "incremental backup as the appender"
app mirror -q "$repo" "$mirror" || fail "mirror as the appender"
snapctl -r "$mirror" check --read-data | grep -q "no problems" || fail "the mirror"

if [ "$(id -u)" = 0 ]; then
	say "a commit through the mount's control/ with put and get only"
	m="$T/m"
	export AWS_ACCESS_KEY_ID="$ak" AWS_SECRET_ACCESS_KEY="$sk"
	mount_repo "$repo" "$m" -o stage_dir="$T/stage"
	export AWS_ACCESS_KEY_ID="$owner_ak" AWS_SECRET_ACCESS_KEY="$owner_sk"
	echo three >"$m/control/app/src/small"
	head -c 30000000 /dev/urandom >"$m/control/app/src/streamed"
	touch "$m/control/app/.snapfs/commit" || fail "commit as the appender"
	unmount_repo "$m" "$MOUNT_PID"
	snapctl -r "$repo" cat app/3/src/small | grep -qx three || fail "the committed backup"
fi

say "delete and prune need the right to delete"
s=$(snapctl -r "$repo" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["series"])')
n0=$(objects "$repo")
expect_fail 11 "marked deleted.*run the delete again.*access denied" app -r "$repo" delete "$s"
snapctl -r "$repo" check --read-data | grep -q "no problems" || fail "check after a refused delete"
echo "objects: $n0 before the refused delete, $(objects "$repo") after (its tombstone)"

say "the owner cleans up: the delete the appender could not finish, its leases"
sleep 7
snapctl -r "$repo" check --repair --grace 6s >"$T/rep.out" 2>"$T/rep.err"
cat "$T/rep.err" "$T/rep.out"
grep -q "finished its delete" "$T/rep.err" || fail "repair did not finish the delete"
snapctl -r "$repo" delete "$s" >/dev/null || fail "a finished delete run again"
# What stays: snapfs.json and the tombstone (the appender's leases of
# other series would go as stale after the grace: e2e-repair).
[ "$(objects "$repo")" = 2 ] || fail "left: $(objects "$repo") objects"
say "ok"
