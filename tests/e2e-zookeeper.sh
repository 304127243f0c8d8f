#!/bin/sh
# The ZooKeeper restore helper against Debian's real ZooKeeper: create
# znodes, stop, back up the data directory, start, change and delete
# znodes, stop, restore with the helper, start, and check that the original
# znodes are back and the changes gone.  The helper refuses while the
# server runs (a pid file, a process using the directory, a server at
# --zk-address); this node's myid survives; the old directory is kept.
. "$TESTLIB"

zk() { sh "$TESTS_DIR/servers/zookeeper.sh" "$@"; }
data="$T/node/data"
start_zk() {
	ZK_PORT=$(zk start "$T/zksrv" "$data" ${ZK_PORT:-}) || {
		rc=$?
		[ $rc = 77 ] && { echo "SKIP: ZooKeeper not installed"; exit 77; }
		fail "ZooKeeper did not start"
	}
}
stop_zk() { zk stop "$T/zksrv"; }
on_exit "sh '$TESTS_DIR/servers/zookeeper.sh' stop '$T/zksrv'"
zcli() { zk cli "$ZK_PORT"; }
# znode PATH: its data, or "<none>"
znode() {
	printf 'get %s\nquit\n' "$1" | zcli >"$T/zget" || true
	if grep -q -e "NoNode" -e "Node does not exist" "$T/zget"; then
		echo "<none>"
	else
		grep -v -e '^WATCHER::' -e '^WatchedEvent' -e '^$' -e '^\[zk:' \
			-e 'Connecting to' -e '^Welcome' -e '^JLine' "$T/zget" | head -n 1
	fi
}

r=$(repo_url zkrepo)
repo_init "$r" --no-encryption
export SNAPFS_REPOSITORY="$r"

say "ZooKeeper with the original znodes"
start_zk
echo "   ZooKeeper on 127.0.0.1:$ZK_PORT"
printf 'create /app one\ncreate /app/config alpha\ncreate /gone two\nquit\n' | zcli >/dev/null
[ "$(znode /app/config)" = alpha ] || fail "znode not created: $(cat "$T/zget")"
stop_zk
echo 1 >"$data/myid"
ls -ls "$data/version-2"
apparent=$(du -s --apparent-size "$data" | cut -f1)
snapctl backup --label zookeeper -q zk="$data"

say "changes after the backup"
start_zk
printf 'set /app/config beta\ndelete /gone\ncreate /new three\nquit\n' | zcli >/dev/null
[ "$(znode /app/config)" = beta ] || fail "set did not take"

say "the helper refuses while ZooKeeper runs"
expect_fail 8 "has .* open: stop ZooKeeper first" \
	snapctl restore zookeeper --zookeeper "$data"
expect_fail 8 "ZooKeeper is running \(pid [0-9]+ from .*zk.pid\)" \
	snapctl restore zookeeper --zookeeper "$data" --pid-file "$T/zksrv/zk.pid"
# Run as another user, the helper cannot see ZooKeeper's open files:
# that is no proof they are not there.
chmod 755 "$T"
expect_fail 11 "cannot tell whether a process uses .*data: [0-9]+ process\(es\) cannot be inspected" \
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
	"$SNAPCTL" restore zookeeper --zookeeper "$data"
mv "$data" "$T/elsewhere"
mkdir "$data"
expect_fail 8 "a ZooKeeper server answers at 127.0.0.1:$ZK_PORT" \
	snapctl restore zookeeper --zookeeper "$data" --zk-address "127.0.0.1:$ZK_PORT"
rmdir "$data"
mv "$T/elsewhere" "$data"
stop_zk

expect_fail 2 "zk-address wants HOST:PORT, not '127.0.0.1'" \
	snapctl restore zookeeper --zookeeper "$T/other" --zk-address 127.0.0.1
[ ! -e "$T/other" ] || fail "refused restore created the data directory"

say "a group that is not a data directory is refused"
mkdir -p "$T/notzk/conf"
echo x >"$T/notzk/conf/zoo.cfg"
snapctl backup --label notzk -q "$T/notzk"
expect_fail 2 "not a ZooKeeper data directory: .* found conf/" \
	snapctl restore notzk --zookeeper "$T/other"

say "restore (this node's myid is 5 now)"
echo 5 >"$data/myid"
snapctl restore zookeeper --zookeeper "$data" $(zk_force) \
	--zk-address "127.0.0.1:$ZK_PORT" --pid-file "$T/zksrv/zk.pid" 2>"$T/log"
cat "$T/log"
grep -q "verifying" "$T/log" || fail "no verification step"
[ "$(cat "$data/myid")" = 5 ] || fail "myid not kept: $(cat "$data/myid")"
aside=$(ls -d "$data".bak-*)
[ "$(cat "$aside/myid")" = 5 ] || fail "old data directory not kept aside"
[ "$(du -s --apparent-size "$data" | cut -f1)" = "$apparent" ] ||
	fail "apparent size changed"
[ "$(du -s "$data" | cut -f1)" -lt 2048 ] || fail "logs restored dense: $(du -s "$data")"
! ls -A "$T/node" | grep -q snapfs || fail "stage left behind: $(ls -A "$T/node")"

say "ZooKeeper serves the backed-up state"
start_zk
[ "$(znode /app/config)" = alpha ] || fail "/app/config is $(znode /app/config)"
[ "$(znode /gone)" = two ] || fail "/gone not back"
[ "$(znode /new)" = "<none>" ] || fail "/new survived the restore"
stop_zk

say "--restore-myid takes the backup's"
snapctl restore zookeeper --zookeeper "$data" --restore-myid $(zk_force) -q 2>/dev/null
[ "$(cat "$data/myid")" = 1 ] || fail "--restore-myid"
echo "e2e-zookeeper: all good"
