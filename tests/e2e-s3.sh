#!/bin/sh
# snapfs on a real S3 server (Ceph RADOS Gateway, started and stopped
# here): the engine suite, 10 % injected faults, multipart uploads, the
# serial strategy and rate caps, and every credential/location error.
. "$TESTLIB"
. "$TESTS_DIR/remote.sh"

start_rgw
export SNAPFS_TEST_STORE=s3 S3_BUCKET=snapfs-test
run_engine_suite
say "streaming into control/ over the gateway"
sh "$TESTS_DIR/e2e-control-stream.sh" >"$T/stream.log" 2>&1 || {
	tail -n 30 "$T/stream.log" >&2
	fail "e2e-control-stream.sh failed on s3"
}
grep "stage data" "$T/stream.log"
say "prune and delete over the gateway"
sh "$TESTS_DIR/e2e-prune.sh" >"$T/prune.log" 2>&1 || {
	tail -n 30 "$T/prune.log" >&2
	fail "e2e-prune.sh failed on s3"
}
grep -E "pruned in|^deleted|^exited" "$T/prune.log"

u() { echo "s3://127.0.0.1:$1/snapfs-test/$2?secure=false"; }
good=$(u "$S3_PORT" errs)
snapctl -r "$good" init --no-encryption -q
mkdir -p "$T/small"
echo data >"$T/small/f"
snapctl -r "$good" backup --label errs -q "$T/small"
n0=$(objects "$good")

say "wrong secret, unknown bucket, unreachable port, no TLS, bad location"
expect_fail 11 'access denied to snapfs-test/errs/.*: check credentials \(SignatureDoesNotMatch' \
	env AWS_SECRET_ACCESS_KEY=wrong-secret "$SNAPCTL" -r "$good" backup --label errs "$T/small"
no_secret_in "$T/err"
expect_fail 11 'access denied' env AWS_ACCESS_KEY_ID=nobody "$SNAPCTL" -r "$good" list
expect_fail 4 'bucket no-such-bucket does not exist .*--create-bucket' \
	snapctl -r "s3://127.0.0.1:$S3_PORT/no-such-bucket/x?secure=false" list
port=$(free_port)
expect_fail 12 "cannot connect" snapctl -r "$(u "$port" errs)" list
expect_fail 12 "TLS verification failed" snapctl -r "s3://127.0.0.1:$S3_PORT/snapfs-test/errs" list
expect_fail 2 "expected s3://HOST\[:PORT\]/BUCKET" snapctl -r "s3://127.0.0.1:$S3_PORT" list
expect_fail 2 "unknown option 'bogus'" snapctl -r "$good&bogus=1" list
expect_fail 11 "no credentials for" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	HOME="$T" "$SNAPCTL" -r "$good" list
[ "$(objects "$good")" = "$n0" ] || fail "a failed command wrote to the repository"

say "a store that lets a create-only put overwrite is refused by init and check --repair"
start_proxy "$S3_PORT" --rate 0 --lose-create-only
lp=$PROXY_PORT
expect_fail 1 "does not honour create-only writes" \
	snapctl -r "$(u "$lp" lossy)" init --no-encryption
# No repository was written; the gateway itself honours create-only puts.
expect_fail 4 "not a snapfs repository" snapctl -r "$(u "$S3_PORT" lossy)" list
snapctl -r "$(u "$S3_PORT" lossy)" init -q --no-encryption || fail "init on the gateway itself"
expect_fail 1 "does not honour create-only writes" \
	snapctl -r "$(u "$lp" errs)" check --repair
stop_proxy
grep -q "^lost [1-9]" "$T/proxy.stats" || fail "the proxy lost no put"

say "HTTPS: verified against a private CA, never downgraded"
tls="s3://127.0.0.1:$S3_TLS_PORT/snapfs-test/errs"
expect_fail 12 "TLS verification failed: .*use \?ca=FILE" snapctl -r "$tls" list
snapctl -r "$tls?ca=$T/tls/ca.pem" list -q >/dev/null || fail "?ca= not honoured"
expect_fail 12 "TLS verification failed" snapctl -r "$tls?ca=$T/tls/srv.csr" list
# Over TLS bodies go UNSIGNED-PAYLOAD: the gateway must take simple and
# multipart puts signed that way, and what comes back must be what went in.
mkdir -p "$T/tlsin"
cp -a "$T/small" "$T/tlsin/small"
head -c $((12 << 20)) /dev/urandom >"$T/tlsin/big"
tc="s3://127.0.0.1:$S3_TLS_PORT/snapfs-test/tlsdata?ca=$T/tls/ca.pem"
snapctl -r "$tc" init --no-encryption -q
SNAPFS_S3_MULTIPART_THRESHOLD=5242880 snapctl -r "$tc" backup --label tls -q "$T/tlsin"
snapctl -r "$tc" check --read-data -q || fail "check over TLS"
snapctl -r "$tc" restore tls -q --target "$T/tlsout"
diff -r "$T/tlsin" "$T/tlsout/tlsin" || fail "restore over TLS differs"

say "expired session token (answered as AWS does, via the proxy)"
start_proxy "$S3_PORT" --rate 0 --expired-token
pp=$PROXY_PORT
expect_fail 11 "session token expired: refresh AWS_SESSION_TOKEN" \
	env AWS_SESSION_TOKEN=expired-token "$SNAPCTL" -r "$(u "$pp" errs)" backup --label errs "$T/small"
stop_proxy
[ "$(objects "$good")" = "$n0" ] || fail "a failed command wrote to the repository"

say "credentials from ~/.aws/credentials (AWS_PROFILE)"
mkdir -p "$T/home/.aws"
printf '[other]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
	"$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$T/home/.aws/credentials"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$T/home" AWS_PROFILE=other \
	"$SNAPCTL" -r "$good" list -q >/dev/null || fail "profile credentials not used"

say "10 % of requests fail (500/503, dropped bodies, stalls, resets)"
start_proxy "$S3_PORT" --rate 0.1 --stall 3 --seed 7
pp=$PROXY_PORT
faulty=$(u "$pp" faults)
snapctl -r "$(u "$S3_PORT" faults)" init --no-encryption -q
fault_round_trip "$faulty"
stop_proxy
cat "$T/proxy.stats"
[ "$(awk '$1 != "ok" && $1 != "expired" {n += $2} END {print n}' "$T/proxy.stats")" -ge 6 ] ||
	fail "too few faults were injected to mean anything"

say "multipart uploads (threshold lowered to 5 MiB; packs are 16 MiB)"
m=$(u "$S3_PORT" multipart)
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
snapctl -r "$m" --encryption-key-file "$T/key" init -q
mkdir -p "$T/mp"
head -c $((40 << 20)) /dev/urandom >"$T/mp/big"
SNAPFS_S3_MULTIPART_THRESHOLD=5242880 snapctl -r "$m" --encryption-key-file "$T/key" \
	backup --label multipart -q "$T/mp"
snapctl -r "$m" --encryption-key-file "$T/key" restore multipart -q --target "$T/mpout"
cmp "$T/mp/big" "$T/mpout/mp/big"
snapctl -r "$m" --encryption-key-file "$T/key" check --read-data -q

say "a multipart upload that fails for good is aborted, not left behind"
# The proxy stores part 1 and refuses every later part: the upload exists
# on the server when the backup gives up, and must be gone after.  (curl
# signs the query as written: it must be in canonical order.)
start_proxy "$S3_PORT" --rate 0 --fail-parts
pp=$PROXY_PORT
snapctl -r "$(u "$S3_PORT" mpfail)" init --no-encryption -q
n0=$(objects "$(u "$S3_PORT" mpfail)")
export SNAPFS_S3_MULTIPART_THRESHOLD=5242880
expect_fail 12 "PUT part .*HTTP 500" snapctl -r "$(u "$pp" mpfail)" backup --label mpfail "$T/mp"
unset SNAPFS_S3_MULTIPART_THRESHOLD
stop_proxy
[ "$(awk '$1 == "part" {print $2}' "$T/proxy.stats")" -ge 1 ] || fail "no part was refused"
curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
	--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
	"http://127.0.0.1:$S3_PORT/snapfs-test?prefix=mpfail%2F&uploads=" >"$T/uploads.xml" ||
	fail "cannot list multipart uploads"
grep -q "ListMultipartUploadsResult" "$T/uploads.xml" || fail "odd listing: $(cat "$T/uploads.xml")"
if grep -q "<Upload>" "$T/uploads.xml"; then fail "an aborted upload lingers: $(cat "$T/uploads.xml")"; fi
[ "$(snapctl -r "$(u "$S3_PORT" mpfail)" list --json)" = "[]" ] || fail "a failed backup was listed"
echo "   objects before $n0, after $(objects "$(u "$S3_PORT" mpfail)")"

say "serial strategy and an upload cap"
s=$(u "$S3_PORT" serial)
snapctl -r "$s" init --no-encryption -q
mkdir -p "$T/rate"
head -c $((12 << 20)) /dev/urandom >"$T/rate/f"
start=$(date +%s.%N)
snapctl -r "$s" backup --label rate -q --parallel 1 --limit-upload 4M "$T/rate"
took=$(python3 -c "import time; print(time.time() - $start)")
echo "   12 MiB at 4 MiB/s took ${took}s"
python3 -c "import sys; sys.exit(0 if $took >= 2.0 else 1)" || fail "upload cap not applied"
snapctl -r "$s" restore rate -q --parallel 1 --target "$T/rateout"
cmp "$T/rate/f" "$T/rateout/rate/f"
paged_listing "$(u "$S3_PORT" faults)"
hostile_listing "$S3_PORT" u
mount_outage "$S3_PORT" u
echo "e2e-s3: all good"
