#!/bin/sh
# Debian's ZooKeeper 3.8, standalone, on 127.0.0.1.
#
#   zookeeper.sh start DIR DATADIR [PORT] -> prints "PORT" once srvr says Mode:
#   zookeeper.sh stop DIR
#   zookeeper.sh cli PORT                 -> zkCli commands from stdin
#
# DIR holds zoo.cfg, the log and zk.pid.  Installed by
# contrib/install-deps.sh (libzookeeper-java, a headless JRE, SLF4J).
set -eu
cmd=$1
J=/usr/share/java
CP="$J/zookeeper.jar:$J/zookeeper-jute.jar:$J/slf4j-api.jar"
. "$(dirname "$0")/common.sh"

# srvr answers "Mode: standalone" once the database is loaded (ruok may
# answer before).
ready() {
	python3 - "$1" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(b"srvr")
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    sys.exit(0 if b"Mode:" in data else 1)
except OSError:
    sys.exit(1)
PY
}

case "$cmd" in
stop)
	if [ -f "$2/zk.pid" ]; then
		stop_pid "$(cat "$2/zk.pid")"
		rm -f "$2/zk.pid"
	fi
	exit 0
	;;
cli)
	exec java -cp "$CP:$J/slf4j-nop.jar" org.apache.zookeeper.ZooKeeperMain \
		-server "127.0.0.1:$2" 2>&1
	;;
start) ;;
*)
	echo "usage: $0 start DIR DATADIR [PORT] | stop DIR | cli PORT" >&2
	exit 2
	;;
esac
D=$2 data=$3
[ -f "$J/zookeeper.jar" ] && command -v java >/dev/null || {
	echo "zookeeper.sh: ZooKeeper or Java missing (contrib/install-deps.sh)" >&2
	exit 77
}
port=${4:-$(free_port)}
mkdir -p "$D" "$data"
cat >"$D/zoo.cfg" <<CFG
tickTime=2000
dataDir=$data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok
CFG
java -cp "$CP:$J/slf4j-simple.jar" org.apache.zookeeper.server.ZooKeeperServerMain \
	"$D/zoo.cfg" >>"$D/zk.log" 2>&1 &
echo $! >"$D/zk.pid"
for _ in $(seq 1 300); do
	if ready "$port"; then
		echo "$port"
		exit 0
	fi
	kill -0 "$(cat "$D/zk.pid")" 2>/dev/null || break
	sleep 0.1
done
echo "zookeeper.sh: did not start; see $D/zk.log" >&2
tail -n 20 "$D/zk.log" >&2
sh "$0" stop "$D"
exit 1
