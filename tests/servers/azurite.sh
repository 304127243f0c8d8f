#!/bin/sh
# Azurite (the Azure Storage emulator, pinned 3.35.0) on 127.0.0.1.
#
#   azurite.sh start DIR  -> prints "PORT" when it listens
#   azurite.sh stop DIR
#
# It verifies SharedKey and SAS signatures (and, with AZURITE_OAUTH,
# Entra ID bearer tokens).  Account devstoreaccount1 with
# its published key (see tests/lib.sh).  Installed by contrib/install-deps.sh
# under /opt/snapfs-test.
set -eu
cmd=$1
D=$2
bin=${AZURITE_BIN:-/opt/snapfs-test/node_modules/.bin/azurite-blob}
. "$(dirname "$0")/common.sh"

case "$cmd" in
stop)
	if [ -f "$D/azurite.pid" ]; then
		stop_pid "$(cat "$D/azurite.pid")"
		rm -f "$D/azurite.pid"
	fi
	exit 0
	;;
start) ;;
*)
	echo "usage: $0 start|stop DIR" >&2
	exit 2
	;;
esac
[ -x "$bin" ] || {
	echo "azurite.sh: $bin missing (contrib/install-deps.sh installs it)" >&2
	exit 77
}
mkdir -p "$D/data"
port=$(free_port)
# AZURITE_OAUTH=CADIR (make_ca's): HTTPS with CADIR's server certificate
# and bearer tokens checked (--oauth basic: audience, issuer, expiry).
set --
scheme=http
if [ -n "${AZURITE_OAUTH:-}" ]; then
	set -- --oauth basic --cert "$AZURITE_OAUTH/srv.pem" --key "$AZURITE_OAUTH/srv.key"
	scheme=https
fi
"$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$D/data" \
	--disableTelemetry --silent "$@" >"$D/azurite.log" 2>&1 &
echo $! >"$D/azurite.pid"
for _ in $(seq 1 100); do
	if curl -s -o /dev/null ${AZURITE_OAUTH:+--cacert "$AZURITE_OAUTH/ca.pem"} \
		"$scheme://127.0.0.1:$port/devstoreaccount1?comp=list"; then
		echo "$port"
		exit 0
	fi
	sleep 0.1
done
echo "azurite.sh: did not start; see $D/azurite.log" >&2
sh "$0" stop "$D"
exit 1
