#!/bin/sh
# Credentials the way clusters hold them, against the real servers: AWS
# web identity, credential_process, container and instance-metadata
# credentials on the Ceph RADOS Gateway, and an Entra ID service principal
# on Azurite (--oauth basic, over HTTPS).
#
# STS, IMDS, the container agent and Entra ID cannot run here, so
# tests/credserver.py, started by this test, stands in for them.  The AWS
# credentials it hands out are real session credentials minted by the
# gateway's own STS, which verifies their token on every request; the
# bearer tokens are JWTs whose audience, issuer and expiry Azurite checks.
. "$TESTLIB"
. "$TESTS_DIR/remote.sh"

RGW_STS=1
export RGW_STS
start_rgw
radosgw-admin -c "$RGW_CONF" -n client.admin role create --role-name=snaprole \
	--path=/ --assume-role-policy-doc='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam:::user/test"]},"Action":["sts:AssumeRole"]}]}' >/dev/null
radosgw-admin -c "$RGW_CONF" -n client.admin role-policy put --role-name=snaprole \
	--policy-name=s3 --policy-doc='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}' >/dev/null
ROLE=arn:aws:iam:::role/snaprole
# Every error message of the test, checked for secrets at the end.
xfail() {
	expect_fail "$@"
	cat "$T/err" >>"$T/all.err"
}

mkdir -p "$T/cs" "$T/nohome"
echo "projected-token-1" >"$T/wit"
chmod 600 "$T/wit"
start_helper cs credserver.py --state "$T/cs" --rgw "http://127.0.0.1:$S3_PORT" \
	--access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --role "$ROLE" \
	--token-file "$T/wit" --container-auth "agent-token-7" \
	--tenant tenant1 --client-id client1 --client-secret "sp-secret-9"
CS="http://127.0.0.1:$HELPER_PORT"
control() { curl -sf "$CS/_control?$1" >/dev/null || fail "credserver control $1"; }
# count ENDPOINT: credentials handed out so far by that endpoint.
count() {
	python3 -c 'import json,sys
try: print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))
except FileNotFoundError: print(0)' "$T/cs/counts" "$1"
}
expect_count() {
	[ "$(count "$1")" = "$2" ] || fail "$1 handed out $(count "$1") credentials, wanted $2"
}

u() { echo "s3://127.0.0.1:$1/snapfs-test/$2?secure=false"; }
repo=$(u "$S3_PORT" roles)
snapctl -r "$repo" init --create-bucket --no-encryption -q
mkdir -p "$T/src/sub"
head -c 300000 /dev/urandom >"$T/src/sub/a"
echo hello >"$T/src/b"
BASE_SECRET=$AWS_SECRET_ACCESS_KEY
# Without the test user's keys, and without a ~/.aws of the host.
bare() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$T/nohome" "$@"; }
webid() {
	bare AWS_ROLE_ARN="$ROLE" AWS_WEB_IDENTITY_TOKEN_FILE="$T/wit" \
		AWS_ENDPOINT_URL_STS="$CS/sts" "$@"
}

say "web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE): STS session credentials"
webid "$SNAPCTL" -r "$repo" backup --label webid -q "$T/src" || fail "backup with web identity"
expect_count sts 1
webid "$SNAPCTL" -r "$repo" restore webid -q --target "$T/out1" || fail "restore with web identity"
same_tree "$T/src" "$T/out1/src"
# The kubelet rotates the projected token; the file is read at each fetch.
echo "projected-token-2" >"$T/wit"
webid "$SNAPCTL" -r "$repo" list -q >/dev/null || fail "rotated token not read"
expect_count sts 3
echo "someone-else's-token" >"$T/other-wit"
xfail 11 "STS AssumeRoleWithWebIdentity of $ROLE at .*: HTTP 400 InvalidIdentityToken" \
	webid env AWS_WEB_IDENTITY_TOKEN_FILE="$T/other-wit" "$SNAPCTL" -r "$repo" list
grep -q "someone-else" "$T/err" && fail "the token leaked into a message"
xfail 11 "HTTP 403 AccessDenied: Not authorized to assume the role" \
	webid env AWS_ROLE_ARN=arn:aws:iam:::role/other "$SNAPCTL" -r "$repo" list
xfail 11 "$T/missing: No such file" \
	webid env AWS_WEB_IDENTITY_TOKEN_FILE="$T/missing" "$SNAPCTL" -r "$repo" list
port=$(free_port)
xfail 12 "cannot connect" \
	webid env AWS_ENDPOINT_URL_STS="http://127.0.0.1:$port" "$SNAPCTL" -r "$repo" list

say "precedence: environment keys, then web identity, then the profile, then IMDS"
mkdir -p "$T/home/.aws"
cat >"$T/home/.aws/config" <<CFG
[profile proc]
credential_process = curl -sf $CS/process

[profile failing]
credential_process = sh -c 'echo "vault: permission denied" >&2; exit 3'

[profile notjson]
credential_process = echo not-json

[profile v2]
credential_process = echo '{"Version": 2, "AccessKeyId": "a", "SecretAccessKey": "b"}'

[profile webrole]
role_arn = $ROLE
web_identity_token_file = $T/wit

[profile chained]
role_arn = $ROLE
source_profile = proc

[profile regiononly]
region = us-east-1

[default]
credential_process = curl -sf $CS/process
CFG
env HOME="$T/home" AWS_ROLE_ARN="$ROLE" AWS_WEB_IDENTITY_TOKEN_FILE="$T/other-wit" \
	AWS_ENDPOINT_URL_STS="$CS/sts" "$SNAPCTL" -r "$repo" list -q >/dev/null ||
	fail "environment keys did not win over web identity"
expect_count sts 3
webid env HOME="$T/home" AWS_EC2_METADATA_DISABLED=false \
	AWS_EC2_METADATA_SERVICE_ENDPOINT="$CS" "$SNAPCTL" -r "$repo" list -q >/dev/null ||
	fail "web identity over the profile"
expect_count sts 4
expect_count process 0
bare env HOME="$T/home" AWS_EC2_METADATA_DISABLED=false \
	AWS_EC2_METADATA_SERVICE_ENDPOINT="$CS" "$SNAPCTL" -r "$repo" list -q >/dev/null ||
	fail "the profile over instance metadata"
expect_count process 1
expect_count imds 0

say "credential_process in ~/.aws/config"
bare env HOME="$T/home" AWS_PROFILE=proc "$SNAPCTL" -r "$repo" backup --label proc -q "$T/src" ||
	fail "backup with credential_process"
expect_count process 2
xfail 11 "credential_process of profile 'failing' .* failed \(exit status 3\)" \
	bare env HOME="$T/home" AWS_PROFILE=failing "$SNAPCTL" -r "$repo" list
grep -q "vault: permission denied" "$T/err" || fail "the process's stderr did not reach the user"
xfail 11 "credential_process of profile 'notjson': not a JSON object" \
	bare env HOME="$T/home" AWS_PROFILE=notjson "$SNAPCTL" -r "$repo" list
xfail 11 "\"Version\": 1 expected" \
	bare env HOME="$T/home" AWS_PROFILE=v2 "$SNAPCTL" -r "$repo" list
bare env HOME="$T/home" AWS_PROFILE=webrole AWS_ENDPOINT_URL_STS="$CS/sts" \
	"$SNAPCTL" -r "$repo" list -q >/dev/null || fail "profile web identity"
expect_count sts 5
xfail 2 "role_arn with source_profile is not supported" \
	bare env HOME="$T/home" AWS_PROFILE=chained "$SNAPCTL" -r "$repo" list
bare env HOME="$T/home" AWS_PROFILE=regiononly AWS_EC2_METADATA_DISABLED=false \
	AWS_EC2_METADATA_SERVICE_ENDPOINT="$CS" "$SNAPCTL" -r "$repo" list -q >/dev/null ||
	fail "a profile of settings only did not go on to instance metadata"
expect_count imds 1
xfail 11 "AWS_PROFILE=nope: no such profile in $T/home/.aws/credentials or $T/home/.aws/config" \
	bare env HOME="$T/home" AWS_PROFILE=nope "$SNAPCTL" -r "$repo" list

say "container credentials (ECS / EKS Pod Identity)"
echo "agent-token-7" >"$T/agent-token"
bare env AWS_CONTAINER_CREDENTIALS_FULL_URI="$CS/container" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$T/agent-token" \
	"$SNAPCTL" -r "$repo" list -q >/dev/null || fail "container credentials"
expect_count container 1
xfail 11 "container credentials at $CS/container: HTTP 401 AccessDenied" \
	bare env AWS_CONTAINER_CREDENTIALS_FULL_URI="$CS/container" \
	AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong "$SNAPCTL" -r "$repo" list
xfail 2 "plain http is only allowed to the loopback or the container agent" \
	bare env AWS_CONTAINER_CREDENTIALS_FULL_URI=http://example.com/creds \
	AWS_CONTAINER_AUTHORIZATION_TOKEN=x "$SNAPCTL" -r "$repo" list

say "EC2 instance metadata (IMDSv2: the stand-in refuses requests without a session token)"
imds() {
	bare AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$CS" "$@"
}
imds "$SNAPCTL" -r "$repo" list -q >/dev/null || fail "instance credentials"
expect_count imds 2
port=$(free_port)
xfail 11 "no credentials for .*nor from instance metadata: PUT instance metadata at http://127.0.0.1:$port: cannot connect" \
	bare AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$port" \
	"$SNAPCTL" -r "$repo" list
xfail 11 "no credentials for .*instance metadata is disabled" bare "$SNAPCTL" -r "$repo" list
control mode=expired
xfail 11 "instance metadata at $CS gave credentials that expire at .*clock" \
	imds "$SNAPCTL" -r "$repo" list
control mode=deny
xfail 11 "instance metadata at $CS: AssumeRoleUnauthorizedAccess" \
	imds "$SNAPCTL" -r "$repo" list
control mode=ok

say "a mount refreshes its credentials before they expire, and rides out a failed refresh"
# 20 s credentials: refreshed from 10 s on; a failed refresh keeps the old
# ones until they expire; after that, writes fail with a message and
# recover, without a remount, once the source answers again.
control lifetime=20
n=$(count imds)
commit_label() {
	mkdir "$T/mnt/control/$1" &&
		cp -a "$T/src" "$T/mnt/control/$1/" &&
		touch "$T/mnt/control/$1/.snapfs/commit"
}
# at_least ENDPOINT N: it handed out N credentials or more.
at_least() {
	[ "$(count "$1")" -ge "$2" ] || fail "$1 handed out $(count "$1") credentials, wanted $2 or more"
}
# mount_repo is a function: the daemon takes this shell's environment.
base_key=$AWS_ACCESS_KEY_ID base_home=$HOME
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export HOME="$T/nohome" AWS_EC2_METADATA_DISABLED=false AWS_EC2_METADATA_SERVICE_ENDPOINT="$CS"
mount_repo "$repo" "$T/mnt"
export HOME="$base_home" AWS_ACCESS_KEY_ID="$base_key" AWS_SECRET_ACCESS_KEY="$BASE_SECRET" \
	AWS_EC2_METADATA_DISABLED=true
unset AWS_EC2_METADATA_SERVICE_ENDPOINT
sleep 11
commit_label fresh1 || fail "commit after the refresh point"
at_least imds $((n + 2))
# The refreshed credentials last until 20 s after fresh1 began: refresh
# fails from 10 s on, and they still sign.
control mode=deny
sleep 11
commit_label fresh2 || fail "a failed refresh with still valid credentials broke a commit"
sleep 10
if commit_label fresh3 2>"$T/c3.err"; then fail "expired credentials still worked"; fi
grep -q "credentials expired and refreshing them failed.*instance metadata at $CS: AssumeRoleUnauthorizedAccess" \
	"$T/snapfs.log" || { cat "$T/snapfs.log" >&2; fail "no message for expired credentials"; }
control mode=ok
sleep 6
commit_label fresh4 || fail "no recovery once the source answers again"
ls "$T/mnt/series" | grep -q '^fresh4-' || fail "fresh4 not committed"
unmount_repo "$T/mnt" "$MOUNT_PID"
control lifetime=3600

say "a token the server says has expired is refreshed once, then reported"
start_proxy "$S3_PORT" --rate 0 --expired-token
pp=$PROXY_PORT
n=$(count imds)
xfail 11 "session token expired: refresh instance metadata at $CS" \
	imds "$SNAPCTL" -r "$(u "$pp" roles)" list
expect_count imds $((n + 2))
stop_proxy

say "Entra ID service principal on Azurite (--oauth basic over HTTPS)"
AZURITE_OAUTH="$T/tls" start_azurite
unset AZURE_STORAGE_KEY
az="azure://devstoreaccount1/spcont/repo?endpoint=https://127.0.0.1:$AZ_PORT/devstoreaccount1&ca=$T/tls/ca.pem"
xfail 11 "no credentials for .*AZURE_TENANT_ID" snapctl -r "$az" list
sp() {
	env AZURE_TENANT_ID=tenant1 AZURE_CLIENT_ID=client1 AZURE_CLIENT_SECRET=sp-secret-9 \
		AZURE_AUTHORITY_HOST="$CS/" "$@"
}
sp "$SNAPCTL" -r "$az" init --create-bucket -q --no-encryption || fail "init with a service principal"
sp "$SNAPCTL" -r "$az" backup --label spl -q "$T/src" || fail "backup with a service principal"
sp "$SNAPCTL" -r "$az" restore spl -q --target "$T/out2" || fail "restore with a service principal"
same_tree "$T/src" "$T/out2/src"
expect_count entra 3
xfail 11 "Entra ID token for client client1 at $CS/tenant1/oauth2/v2.0/token: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided" \
	sp env AZURE_CLIENT_SECRET=wrong-secret "$SNAPCTL" -r "$az" list
grep -q "wrong-secret" "$T/err" && fail "the client secret leaked into a message"
xfail 11 "neither AZURE_CLIENT_SECRET nor AZURE_FEDERATED_TOKEN_FILE" \
	sp env -u AZURE_CLIENT_SECRET "$SNAPCTL" -r "$az" list
# A token Azurite finds expired (the stand-in dates it an hour back but
# says it lasts an hour): one fresh token, then a clear refusal.
control mode=expired
n=$(count entra)
xfail 11 "the service refused the Entra ID token for client client1 .*Lifetime validation failed. The token is expired" \
	sp "$SNAPCTL" -r "$az" list
expect_count entra $((n + 2))
control mode=ok
say "AKS workload identity (AZURE_FEDERATED_TOKEN_FILE)"
sp env -u AZURE_CLIENT_SECRET AZURE_FEDERATED_TOKEN_FILE="$T/wit" \
	"$SNAPCTL" -r "$az" list -q >/dev/null || fail "federated token"
xfail 11 "HTTP 401 invalid_client" \
	sp env -u AZURE_CLIENT_SECRET AZURE_FEDERATED_TOKEN_FILE="$T/other-wit" "$SNAPCTL" -r "$az" list
say "a mount refreshes its bearer token before it expires"
control lifetime=20
n=$(count entra)
export AZURE_TENANT_ID=tenant1 AZURE_CLIENT_ID=client1 AZURE_CLIENT_SECRET=sp-secret-9 \
	AZURE_AUTHORITY_HOST="$CS"
mount_repo "$az" "$T/mnt2"
unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_AUTHORITY_HOST
sleep 11
mkdir "$T/mnt2/control/azfresh" && cp -a "$T/src" "$T/mnt2/control/azfresh/" &&
	touch "$T/mnt2/control/azfresh/.snapfs/commit" || fail "commit on the refreshed token"
at_least entra $((n + 2))
unmount_repo "$T/mnt2" "$MOUNT_PID"
sp "$SNAPCTL" -r "$az" check -q || fail "check"
say "no message quoted a secret, a session token or a bearer token"
n=$(wc -l <"$T/cs/secrets")
for f in "$T"/all.err "$T"/snapfs.log "$T"/c3.err "$T"/cs.err; do
	[ -f "$f" ] || continue
	if grep -qFf "$T/cs/secrets" "$f" || grep -qF "$BASE_SECRET" "$f" ||
		grep -qF sp-secret-9 "$f"; then
		fail "a secret leaked into $f"
	fi
done
echo "   $n handed-out secrets, none in the logs"
echo "credentials: all passed"
