# Helpers for the remote-store drivers (sourced after lib.sh): start the
# real servers on free ports, stop them on exit, run the engine suite
# against them, and put a fault proxy in front of them.

. "$TESTS_DIR/servers/common.sh"

AZURITE_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

start_rgw() {
	make_ca "$T/tls"
	out=$(RGW_TLS_CERT="$T/tls/server.pem" sh "$TESTS_DIR/servers/rgw.sh" start "$T/rgw") || {
		rc=$?
		[ $rc = 77 ] && { echo "SKIP: Ceph RADOS Gateway not installed"; exit 77; }
		fail "RADOS Gateway did not start"
	}
	on_exit "sh '$TESTS_DIR/servers/rgw.sh' stop '$T/rgw'"
	set -- $out
	S3_PORT=$1
	S3_TLS_PORT=${4:-}
	export S3_PORT S3_TLS_PORT AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3
	unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE \
		AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
	# Never ask a real metadata service (this host's 169.254.169.254
	# may answer): a test that wants one starts its own.
	export AWS_EC2_METADATA_DISABLED=true
	RGW_CONF="$T/rgw/ceph.conf"
	echo "   RADOS Gateway on 127.0.0.1:$S3_PORT"
}

# s3_curl BODY METHOD PATH AK SK: one request to the gateway that snapctl
# does not make, signed by curl (which the gateway wants to sign the
# payload hash, as curl 7.88 does not by itself).
s3_curl() {
	h=$(sha256sum "$1" | cut -d' ' -f1)
	curl -sS --fail-with-body --aws-sigv4 "aws:amz:us-east-1:s3" --user "$4:$5" \
		-H "x-amz-content-sha256: $h" -X "$2" --data-binary @"$1" \
		"http://127.0.0.1:$S3_PORT/$3"
}

start_azurite() {
	AZ_PORT=$(sh "$TESTS_DIR/servers/azurite.sh" start "$T/azurite") || {
		rc=$?
		[ $rc = 77 ] && { echo "SKIP: Azurite not installed"; exit 77; }
		fail "Azurite did not start"
	}
	on_exit "sh '$TESTS_DIR/servers/azurite.sh' stop '$T/azurite'"
	export AZ_PORT AZURE_STORAGE_KEY="$AZURITE_KEY"
	unset AZURE_STORAGE_SAS_TOKEN AZURE_STORAGE_ACCOUNT AZURE_TENANT_ID \
		AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_FEDERATED_TOKEN_FILE
	echo "   Azurite on 127.0.0.1:$AZ_PORT"
}

# run_engine_suite: the foundation's end-to-end tests on this store.
# Listings are paged by 7 so continuation tokens / markers are exercised.
run_engine_suite() {
	for t in e2e-basic.sh e2e-incremental.sh e2e-mount.sh e2e-control.sh; do
		say "engine suite on $SNAPFS_TEST_STORE: $t"
		SNAPFS_LIST_PAGE=7 sh "$TESTS_DIR/$t" >"$T/$t.log" 2>&1 || {
			tail -n 30 "$T/$t.log" >&2
			fail "$t failed on $SNAPFS_TEST_STORE"
		}
		tail -n 1 "$T/$t.log"
	done
}

# start_helper NAME SCRIPT ARGS...: runs one of the test's Python servers,
# which prints its port when it listens, into HELPER_PORT.  Killed on
# exit (so not to be called in a $(...) subshell, whose on_exit would be
# lost); pid in $T/NAME.pid, stderr in $T/NAME.err.
start_helper() {
	name=$1 script=$2
	shift 2
	rm -f "$T/$name.port"
	python3 "$TESTS_DIR/$script" "$@" >"$T/$name.port" 2>"$T/$name.err" &
	echo $! >"$T/$name.pid"
	on_exit "kill \$(cat '$T/$name.pid') 2>/dev/null"
	for _ in $(seq 1 50); do
		[ -s "$T/$name.port" ] && break
		sleep 0.1
	done
	[ -s "$T/$name.port" ] || fail "$script did not start: $(cat "$T/$name.err")"
	HELPER_PORT=$(cat "$T/$name.port")
}

# start_proxy UPSTREAM_PORT ARGS...: the proxy's port into PROXY_PORT;
# stopped on exit.
start_proxy() {
	up=$1
	shift
	rm -f "$T/proxy.stats"
	start_helper proxy faultproxy.py --upstream "127.0.0.1:$up" \
		--stats "$T/proxy.stats" "$@"
	PROXY_PORT=$HELPER_PORT
}

# stop_proxy: stops it and waits until it has written its fault counts.
stop_proxy() {
	stop_pid "$(cat "$T/proxy.pid")"
}

# fault_round_trip URL: three backups (full, then incremental) and their
# restores, plus check --read-data, through a proxy that fails 10 % of
# requests; every restore must be byte-identical.
fault_round_trip() {
	url=$1
	python3 "$TESTS_DIR/mkcorpus.py" "$T/fsrc/d" --small 600 --large-mib 40 \
		--large-count 2 >/dev/null
	for round in 1 2 3; do
		head -c $((6 << 20)) /dev/urandom >"$T/fsrc/d/changing-$round"
		SNAPFS_HTTP_STALL_TIMEOUT=1 SNAPFS_HTTP_RETRIES=8 \
			snapctl -r "$url" backup --label faults -q "$T/fsrc/d" ||
			fail "backup $round through faults failed"
		SNAPFS_HTTP_STALL_TIMEOUT=1 SNAPFS_HTTP_RETRIES=8 \
			snapctl -r "$url" restore "faults/$round" -q \
			--target "$T/fout$round" ||
			fail "restore $round through faults failed"
		same_tree "$T/fsrc/d" "$T/fout$round/d"
	done
	SNAPFS_HTTP_STALL_TIMEOUT=1 SNAPFS_HTTP_RETRIES=8 \
		snapctl -r "$url" check --read-data -q || fail "check through faults failed"
}

# objects URL: how many objects the repository holds (for "nothing written").
objects() { snapctl -r "$1" stats --json | json_get objects; }

# no_secret_in FILE: error output must never carry a credential.
no_secret_in() {
	for s in "${AWS_SECRET_ACCESS_KEY:-}" "${AZURE_STORAGE_KEY:-}"; do
		[ -n "$s" ] || continue
		if grep -qF "$s" "$1"; then fail "a secret leaked into $1"; fi
	done
}

# paged_listing LOCATION: a listing fetched two objects per page sees every
# object a one-page listing sees (continuation tokens / markers).
paged_listing() {
	say "paged listings see every object"
	full=$(snapctl -r "$1" stats --json | json_get objects)
	paged=$(SNAPFS_LIST_PAGE=2 snapctl -r "$1" stats --json | json_get objects)
	echo "   $full objects, listed 2 at a time: $paged"
	[ "$full" -gt 4 ] && [ "$full" = "$paged" ] || fail "paged listing lost objects"
}

# hostile_listing UPSTREAM_PORT URLFN: the proxy damages the server's real
# listing pages (more pages announced without a token or marker; an entry
# without a name): list and delete fail with a message, and nothing is
# deleted, rather than acting on a shorter or repeated listing.
hostile_listing() {
	say "a listing page that cannot be followed is an error, not a shorter listing"
	hl=$($2 "$1" hostile)
	repo_init "$hl" --no-encryption
	mkdir -p "$T/hs"
	for i in 1 2 3 4 5; do
		echo "$i" >"$T/hs/f$i"
		snapctl -r "$hl" backup --label hostile -q "$T/hs"
	done
	n0=$(objects "$hl")
	hs=$(snapctl -r "$hl" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["series"])')
	for fault in no-next no-name; do
		case $fault in
		no-next) pat="more pages announced without (NextContinuationToken|NextMarker)|no NextMarker" ;;
		no-name) pat="an entry has no name" ;;
		esac
		start_proxy "$1" --rate 0 --list-fault $fault
		port=$PROXY_PORT
		hp=$($2 "$port" hostile)
		SNAPFS_LIST_PAGE=2 expect_fail 6 "$pat" snapctl -r "$hp" list
		SNAPFS_LIST_PAGE=2 expect_fail 6 "$pat" snapctl -r "$hp" delete "$hs"
		stop_proxy
		grep -q "^listing [1-9]" "$T/proxy.stats" || fail "the proxy rewrote no listing"
		[ "$(objects "$hl")" = "$n0" ] || fail "a delete through a damaged listing deleted objects"
	done
	snapctl -r "$hl" delete "$hs" >/dev/null
	# What stays: snapfs.json and the series' tombstone.
	[ "$(objects "$hl")" = 2 ] || fail "delete left $(objects "$hl") objects"
}

# mount_outage UPSTREAM_PORT URLFN: mounts a repository through a proxy,
# reads a file, stops the proxy: a read of what is not cached then fails
# with EIO after the retries (within a minute, not a hang), while what is
# cached still reads.  URLFN PORT NAME prints a location.
mount_outage() {
	say "mount: an unreachable store gives EIO after retries, not a hang"
	start_proxy "$1" --rate 0
	port=$PROXY_PORT
	ou=$($2 "$port" outage)
	repo_init "$ou" --no-encryption
	mkdir -p "$T/os"
	head -c $((3 << 20)) /dev/urandom >"$T/os/a"
	head -c $((3 << 20)) /dev/urandom >"$T/os/b"
	snapctl -r "$ou" backup --label outage -q "$T/os"
	SNAPFS_HTTP_RETRIES=2 mount_repo "$ou" "$T/om" -o no_disk_cache
	d="$T/om/labels/outage/latest/os"
	cmp "$T/os/a" "$d/a" || fail "read through the proxy"
	stop_proxy
	start=$(date +%s)
	if cat "$d/b" >/dev/null 2>"$T/err"; then fail "read with the store gone"; fi
	grep -q "Input/output error" "$T/err" || { cat "$T/err"; fail "not EIO"; }
	took=$(($(date +%s) - start))
	echo "   EIO after ${took}s"
	[ "$took" -le 60 ] || fail "EIO took ${took}s"
	cmp "$T/os/a" "$d/a" || fail "cached file unreadable during the outage"
	unmount_repo "$T/om" "$MOUNT_PID"
}
