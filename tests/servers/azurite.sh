#!/bin/sh
# Azurite (the Azure Storage emulator, pinned 3.35.0) on 127.0.0.1.
#
#   azurite.sh start DIR  -> prints "PORT" when it listens
#   azurite.sh stop DIR
#
# It verifies SharedKey and SAS signatures.  Account devstoreaccount1 with
# its published key (see tests/lib.sh).  Installed by contrib/install-deps.sh
# under /opt/snapfs-test.
set -eu
cmd=$1
D=$2
bin=${AZURITE_BIN:-/opt/snapfs-test/node_modules/.bin/azurite-blob}

case "$cmd" in
stop)
	if [ -f "$D/azurite.pid" ]; then
		pid=$(cat "$D/azurite.pid")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$D/data" \
	--disableTelemetry --silent >"$D/azurite.log" 2>&1 &
echo $! >"$D/azurite.pid"
for _ in $(seq 1 100); do
	if curl -s -o /dev/null "http://127.0.0.1:$port/devstoreaccount1?comp=list"; then
		echo "$port"
		exit 0
	fi
	sleep 0.1
done
echo "azurite.sh: did not start; see $D/azurite.log" >&2
sh "$0" stop "$D"
exit 1
