#!/bin/sh
# A one-node Ceph cluster with a RADOS Gateway: a real S3 server that
# verifies SigV4, conditional PUT and multipart rules like AWS.
#
#   rgw.sh start DIR   -> prints "PORT ACCESS_KEY SECRET_KEY [TLS_PORT]"
#                         when ready; with RGW_TLS_CERT=PEM (certificate
#                         and key) it also serves HTTPS on TLS_PORT
#   rgw.sh stop DIR    -> stops every daemon started under DIR
#
# One monitor and one memstore OSD, auth none, pool size 1, on 127.0.0.1
# and free ports; all state under DIR (DIR/ceph.conf for radosgw-admin).
# With RGW_STS=1 the gateway's STS is on, so a test can mint real session
# tokens (AssumeRole) that it verifies.  Boots in ~15 s.
set -eu
cmd=$1
D=$2

. "$(dirname "$0")/common.sh"

stop() {
	for f in "$D"/run/*.pid; do
		[ -f "$f" ] || continue
		stop_pid "$(cat "$f")"
		rm -f "$f"
	done
}

case "$cmd" in
stop)
	stop
	exit 0
	;;
start) ;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac

for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
	command -v "$b" >/dev/null || {
		echo "rgw.sh: $b missing (contrib/install-deps.sh installs it)" >&2
		exit 77
	}
done
mkdir -p "$D/run" "$D/mon" "$D/osd" "$D/rgw" "$D/log"
monport=$(free_port)
rgwport=$(free_port)
tls=""
if [ -n "${RGW_TLS_CERT:-}" ]; then
	tlsport=$(free_port)
	tls=" ssl_endpoint=127.0.0.1:$tlsport ssl_certificate=$RGW_TLS_CERT"
fi
# With STS on, the gateway answers a wrong secret with AccessDenied
# rather than AWS's SignatureDoesNotMatch: only tests that need it ask.
sts=""
if [ -n "${RGW_STS:-}" ]; then
	sts="rgw_s3_auth_use_sts = true
rgw_sts_key = $(python3 -c 'import secrets; print(secrets.token_hex(8))')"
fi
fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
conf="$D/ceph.conf"
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$monport
public_network = 127.0.0.0/8
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $D/run
log_file = $D/log/\$name.log
admin_socket = $D/run/\$name.asok
pid_file = $D/run/\$name.pid
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_autoscale_mode = off
osd_pool_default_pg_num = 8
ms_bind_ipv6 = false
[mon.a]
mon_data = $D/mon
[osd.0]
osd_data = $D/osd
osd_objectstore = memstore
memstore_device_bytes = ${RGW_MEMSTORE_BYTES:-4294967296}
[client.rgw.test]
rgw_frontends = beast endpoint=127.0.0.1:$rgwport tcp_nodelay=1$tls
rgw_data = $D/rgw
ms_mon_client_mode = crc
$sts
CONF
trap 'stop' INT TERM
monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$monport]" "$D/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$D/monmap" >/dev/null 2>&1
ceph-mon -c "$conf" -i a 2>>"$D/log/mon-stderr.log"
uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
timeout 60 ceph -c "$conf" osd new "$uuid" >/dev/null
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$uuid" >/dev/null 2>&1
ceph-osd -c "$conf" -i 0 2>>"$D/log/osd-stderr.log"
radosgw -c "$conf" -n client.rgw.test 2>>"$D/log/rgw-stderr.log"
for _ in $(seq 1 300); do
	if curl -s -o /dev/null "http://127.0.0.1:$rgwport/"; then
		break
	fi
	sleep 0.2
done
curl -s -o /dev/null "http://127.0.0.1:$rgwport/" || {
	echo "rgw.sh: gateway did not come up; see $D/log" >&2
	stop
	exit 1
}
access=snapfstest
secret=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
timeout 60 radosgw-admin -c "$conf" -n client.admin user create --uid=test \
	--display-name=test --access-key="$access" --secret="$secret" >/dev/null
echo "$rgwport $access $secret ${tlsport:-}"
