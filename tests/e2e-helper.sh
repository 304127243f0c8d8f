#!/bin/sh
# The restore helper without servers: posting directories (groups g1, g2
# restored as p1, p2, byte- and metadata-identical), refusals, --map and
# --force (every group swapped in or none, the live name never missing); a
# dcos-zk tarball imported as a group and exported back member by member;
# the ZooKeeper process check refusing when it cannot see every process;
# hostile and broken archives; a restore killed midway and run again
# (--target --skip-existing and --postings); ENOSPC leaving nothing
# half-renamed.  Runs on the store under test (file unless the remote
# drivers say otherwise).
. "$TESTLIB"

r=$(repo_url helper)
repo_init "$r" --no-encryption
export SNAPFS_REPOSITORY="$r"

say "posting directories: p1 (many files, a few large ones), p2"
python3 - "$T/src" <<'EOF'
import os, sys, random
root = sys.argv[1]
rnd = random.Random(5)
for g, nfiles in (("p1", 600), ("p2", 300)):
    d = os.path.join(root, g)
    for i in range(nfiles):
        sub = os.path.join(d, "%03d" % (i % 17))
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "f%04d.sst" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(0, 40000)))
    for i in range(3):
        with open(os.path.join(d, "big%d.vlog" % i), "wb") as f:
            f.write(os.urandom((3 + i) << 20))
    os.symlink("big0.vlog", os.path.join(d, "LATEST"))
    os.link(os.path.join(d, "big1.vlog"), os.path.join(d, "big1.link"))
    os.chmod(os.path.join(d, "000"), 0o750)
with open(os.path.join(root, "p2", "group_id"), "w") as f:
    f.write("2\n")
EOF
setfattr -n user.role -v posting "$T/src/p1/big0.vlog" 2>/dev/null || true
snapctl backup -q --label dgraph g1="$T/src/p1" g2="$T/src/p2"

snapctl restore dgraph --postings "$T/post" >"$T/out" 2>"$T/err"
cat "$T/out"
grep -q "2 group(s)" "$T/out" || fail "summary lacks the groups"
[ "$(cat "$T/post/p1/group_id")" = 1 ] || fail "group_id of p1 not written"
[ "$(cat "$T/post/p2/group_id")" = 2 ] || fail "group_id of p2 changed"
rm "$T/post/p1/group_id"
same_tree "$T/src/p1" "$T/post/p1"
same_tree "$T/src/p2" "$T/post/p2"
[ -z "$(ls -A "$T/post" | grep -v '^p[12]$')" ] || fail "leftovers: $(ls -A "$T/post")"

say "an existing p1 is refused; --force moves it aside"
echo 1 >"$T/post/p1/group_id"
echo mine >"$T/post/p1/local-only"
expect_fail 8 "p1 exists \(--force moves it aside\)" \
	snapctl restore dgraph --postings "$T/post"
snapctl restore dgraph --postings "$T/post" --force -q
aside=$(ls -d "$T/post"/p1.bak-*)
[ -f "$aside/local-only" ] || fail "old p1 not kept aside"
[ ! -e "$T/post/p1/local-only" ] || fail "old p1 content in the new one"
rm "$T/post/p1/group_id"
same_tree "$T/src/p1" "$T/post/p1"

echo old >"$T/post/p1/old-only"
echo old >"$T/post/p2/old-only"
if [ "$(id -u)" = 0 ] && chattr +i "$T/post/p2" 2>/dev/null; then
	say "--force replaces every group or none: p2 cannot move, p1 goes back"
	on_exit "chattr -i '$T/post/p2' 2>/dev/null"
	asides=$(ls -d "$T/post"/p*.bak-* | wc -l)
	# Also where the filesystem cannot exchange (EINVAL): two renames.
	for how in "" "-e renameat2=EINVAL"; do
		# shellcheck disable=SC2086
		expect_fail 11 "p2.*: Operation not permitted" \
			"$SYSFILTER" $how -- "$SNAPCTL" restore dgraph --postings "$T/post" --force
		grep -q "put .*/p1 back as it was" "$T/err" || fail "p1 not put back"
		[ -f "$T/post/p1/old-only" ] && [ -f "$T/post/p2/old-only" ] ||
			fail "a posting directory is not the old one"
		[ "$(ls -d "$T/post"/p*.bak-* | wc -l)" = "$asides" ] ||
			fail "moved aside after all: $(ls -A "$T/post")"
		[ "$(ls -d "$T/post"/.p[12].snapfs-* | wc -l)" = 2 ] ||
			fail "stages not kept for the next attempt: $(ls -A "$T/post")"
	done
	chattr -i "$T/post/p2"
	# dest never missing: at every rename, p1 and p2 are there.
	present="test -d '$T/post/p1' && test -d '$T/post/p2'"
	"$SYSFILTER" -x "rename=$present" -x "renameat2=$present" -- \
		"$SNAPCTL" restore dgraph --postings "$T/post" --force -q 2>"$T/err" ||
		{ cat "$T/err" >&2; fail "a posting directory went missing during the swap"; }
	[ ! -e "$T/post/p1/old-only" ] && [ ! -e "$T/post/p2/old-only" ] ||
		fail "old content in the new posting directories"
	[ "$(ls "$T/post"/p[12].bak-*/old-only | wc -l)" = 2 ] ||
		fail "old directories not kept aside"
	rm "$T/post/p1/group_id"
	same_tree "$T/src/p1" "$T/post/p1"
	same_tree "$T/src/p2" "$T/post/p2"
	[ -z "$(ls -A "$T/post" | grep snapfs)" ] || fail "stages left: $(ls -A "$T/post")"
fi

say "--owner sets every entry's owner; --verify reads the result back"
snapctl restore dgraph --target "$T/owned" --group g2 --owner 1234:5678 --verify -q
[ "$(find "$T/owned/g2" ! -user 1234 -o ! -group 5678 | wc -l)" = 0 ] ||
	fail "entries not owned by 1234:5678: $(find "$T/owned/g2" ! -user 1234 | head -n 3)"
say "--skip-existing keeps what verifies and rewrites what does not"
flip_byte "$T/owned/g2/000/f0017.sst" 100
echo extra >>"$T/owned/g2/001/f0001.sst"
rm "$T/owned/g2/002/f0002.sst"
snapctl restore dgraph --target "$T/owned" --group g2 --skip-existing --json >"$T/skip.json"
[ "$(json_get files_kept <"$T/skip.json")" = $(($(find "$T/src/p2" -type f | wc -l) - 4)) ] ||
	fail "kept $(json_get files_kept <"$T/skip.json") files"
same_tree "$T/src/p2" "$T/owned/g2"
expect_fail 2 "USER:GROUP" snapctl restore dgraph --target "$T/x" --owner nobody-such:x

say "groups without a number need --map"
snapctl backup -q --label dgraph2 alpha="$T/src/p1"
expect_fail 2 "group 'alpha' has no posting directory number: map it with --map alpha=pN" \
	snapctl restore dgraph2 --postings "$T/post2"
[ ! -e "$T/post2/p1" ] || fail "restored despite the refusal"
snapctl restore dgraph2 --postings "$T/post2" --map alpha=p7 -q
[ "$(cat "$T/post2/p7/group_id")" = 7 ] || fail "--map group_id"
expect_fail 2 "map wants GROUP=pN" snapctl restore dgraph2 --postings "$T/p3" --map alpha=x

say "a dcos-zk tarball: imported as a group, exported back, member by member"
z="$T/exhibitor/zookeeper"
mkdir -p "$z/snapshot/version-2" "$z/transactions/version-2"
head -c 300000 /dev/urandom >"$z/snapshot/version-2/snapshot.100000000"
truncate -s 64M "$z/transactions/version-2/log.100000001"
printf 'txn' | dd of="$z/transactions/version-2/log.100000001" conv=notrunc 2>/dev/null
echo 3 >"$z/snapshot/myid"
echo "log line" >"$z/zookeeper.out"
ln -s version-2 "$z/snapshot/current"
chmod 700 "$z/transactions"
(cd "$T/exhibitor" && tar --sparse -czf "$T/zk-backup.tar.gz" \
	--exclude myid --exclude zookeeper.out ./zookeeper)
snapctl backup -q --label zkdcos "$T/zk-backup.tar.gz"
snapctl ls zkdcos | grep -q ' zk-backup$' || fail "group not named after the archive"
snapctl ls zkdcos/latest/zk-backup/zookeeper/snapshot/version-2 | grep -q snapshot.100000000 ||
	fail "imported tree lacks the snapshot"
snapctl export zkdcos --format dcos-zk -o "$T/back.tar.gz" -q
python3 - "$T/zk-backup.tar.gz" "$T/back.tar.gz" <<'EOF'
import sys, tarfile, hashlib
def members(path):
    out = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            data = None
            if m.isreg() or m.islnk():
                f = t.extractfile(m)
                data = hashlib.sha256(f.read()).hexdigest()
            kind = "file" if (m.isreg() or m.islnk()) else "dir" if m.isdir() else "symlink" if m.issym() else "other"
            out[m.name.rstrip("/")] = (kind, m.mode, m.uid, m.gid, int(m.mtime),
                                       m.linkname if m.issym() else "", data)
    return out
a, b = members(sys.argv[1]), members(sys.argv[2])
if a != b:
    for n in sorted(set(a) | set(b)):
        if a.get(n) != b.get(n):
            print("differs:", n, a.get(n), b.get(n))
    sys.exit("exported tarball differs from the imported one")
assert not any("myid" in n or "zookeeper.out" in n for n in b)
print("   %d members identical" % len(a))
EOF
snapctl export zkdcos --group zk-backup -o "$T/plain.tar.zst" -q
zstd -dc "$T/plain.tar.zst" | tar -t | grep -qx './zookeeper/transactions/version-2/log.100000001' ||
	fail "tar.zst export lacks the log"
snapctl export zkdcos -o - -q | tar -t | grep -q '^zk-backup/zookeeper/' ||
	fail "export to stdout"
expect_fail 2 "unknown format 'rar'" snapctl export zkdcos --format rar -o "$T/x"
expect_fail 2 "not a DC/OS ZooKeeper backup" \
	snapctl export dgraph --group g1 --format dcos-zk -o "$T/x.tar.gz"
[ ! -e "$T/x.tar.gz" ] && [ ! -e "$T/x.tar.gz.partial" ] || fail "failed export left a file"

say "the DC/OS layout: --zookeeper replaces DATADIR/zookeeper only"
live="$T/live-exhibitor"
mkdir -p "$live/zookeeper/snapshot/version-2"
echo 7 >"$live/zookeeper/snapshot/myid"
echo stale >"$live/zookeeper/snapshot/version-2/snapshot.ff"
echo "exhibitor state" >"$live/exhibitor.conf"
sleep 30 &
sleeper=$!
echo $sleeper >"$live/zk.pid"
expect_fail 8 "ZooKeeper is running \(pid $sleeper from .*zk.pid\)" \
	snapctl restore zkdcos --zookeeper "$live"
kill $sleeper 2>/dev/null || true
wait $sleeper 2>/dev/null || true
snapctl restore zkdcos --zookeeper "$live" $(zk_force) -q 2>"$T/err"
[ "$(cat "$live/zookeeper/snapshot/myid")" = 7 ] || fail "DC/OS myid not kept"
[ ! -e "$live/zookeeper/snapshot/version-2/snapshot.ff" ] || fail "old snapshot survived"
cmp "$live/zookeeper/snapshot/version-2/snapshot.100000000" \
	"$z/snapshot/version-2/snapshot.100000000" || fail "snapshot differs"
[ "$(cat "$live/exhibitor.conf")" = "exhibitor state" ] || fail "DATADIR itself replaced"
ls -d "$live"/zookeeper.bak-* >/dev/null || fail "old zookeeper/ not kept aside"
[ -z "$(ls -A "$live" | grep snapfs)" ] || fail "stage left: $(ls -A "$live")"

if [ "$(id -u)" = 0 ]; then
	say "processes it cannot see might be ZooKeeper: refused unless --force"
	# As nobody, other users' /proc entries are closed (pid 1's first).
	nzk="$T/nobody/exhibitor"
	mkdir -p "$nzk"
	chmod 755 "$T"
	chown -R nobody "$T/nobody"
	as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
	expect_fail 11 "cannot tell whether a process uses .*exhibitor: [0-9]+ process\(es\) cannot be inspected \(pid 1: Permission denied\): run as root with CAP_SYS_PTRACE, or stop ZooKeeper and add --force" \
		as_nobody "$SNAPCTL" restore zkdcos --zookeeper "$nzk"
	[ -z "$(ls -A "$nzk")" ] || fail "refused restore left: $(ls -A "$nzk")"
	# Its own processes it sees: one working in DATADIR is refused all
	# the same.
	(cd "$nzk" && exec setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 30) &
	sleeper=$!
	expect_fail 8 "process $sleeper works in .*exhibitor: stop ZooKeeper first" \
		as_nobody "$SNAPCTL" restore zkdcos --zookeeper "$nzk" --force
	kill $sleeper 2>/dev/null || true
	wait $sleeper 2>/dev/null || true
	as_nobody "$SNAPCTL" restore zkdcos --zookeeper "$nzk" --force 2>"$T/err" >/dev/null
	grep -q "warning: [0-9]* process(es) cannot be inspected: --force assumes none uses" "$T/err" ||
		fail "no warning about the processes not inspected"
	cmp "$nzk/zookeeper/snapshot/version-2/snapshot.100000000" \
		"$z/snapshot/version-2/snapshot.100000000" || fail "--force restore as nobody"
	# /proc that is not procfs shows no process at all.  (Not under ASan,
	# which needs /proc/self/maps.)
	if [ "${SNAPFS_SANITIZED:-0}" != 1 ] && unshare -m true 2>/dev/null; then
		expect_fail 11 "cannot tell whether a process uses .*exhibitor: /proc is not mounted \(stop ZooKeeper, then --force skips this check\)" \
			unshare -m sh -c 'mount -t tmpfs none /proc && exec "$@"' sh \
			"$SNAPCTL" restore zkdcos --zookeeper "$nzk"
	fi
fi

say "hostile and broken archives are refused and store nothing"
python3 - "$T" <<'EOF'
import io, sys, tarfile
for i, name in enumerate(["../evil", "/etc/evil", "ok/../../evil"]):
    with tarfile.open("%s/hostile%d.tar" % (sys.argv[1], i), "w") as t:
        for n, data in (("fine", b"ok"), (name, b"evil")):
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
EOF
for i in 0 1 2; do
	expect_fail 10 "refused" snapctl backup --label hostile "$T/hostile$i.tar"
done
tar czf "$T/whole.tar.gz" -C "$T/src" p1
head -c $(($(stat -c %s "$T/whole.tar.gz") / 2)) "$T/whole.tar.gz" >"$T/cut.tar.gz"
expect_fail 6 "archive .*cut.tar.gz.*truncated" snapctl backup --label broken "$T/cut.tar.gz"
snapctl list hostile | grep -q "no backups" || fail "hostile archive stored"
snapctl list broken | grep -q "no backups" || fail "truncated archive stored"

say "a restore killed midway, run again with --skip-existing"
mkdir -p "$T/big/g"
for i in $(seq 1 24); do head -c $((8 << 20)) /dev/urandom >"$T/big/g/f$i"; done
truncate -s 100M "$T/big/g/sparse"
snapctl backup -q --label bigone "$T/big/g"
# kill_midway ARGS...: snapctl ARGS, SIGKILLed as it starts its 40th
# write.  With --threads 1 chunks are written one at a time, so that is
# about 40 MiB into 192, whatever the speed of the machine: sysfilter
# kills it at the call itself instead of a poll racing the restore.
kill_midway() {
	set +e
	"$SYSFILTER" -x 'pwrite64@40=kill -9 $SYSFILTER_PID' -- \
		"$SNAPCTL" "$@" >/dev/null 2>"$T/kill.err"
	st=$?
	set -e
	[ "$st" = 137 ] || {
		cat "$T/kill.err" >&2
		fail "restore not killed at its 40th write (exit $st)"
	}
}
kill_midway restore bigone --target "$T/res" --threads 1
[ "$(du -sm "$T/res" | cut -f1)" -lt 200 ] || fail "kill came too late"
snapctl restore bigone --target "$T/res" --skip-existing --json >"$T/resume.json"
kept=$(json_get files_kept <"$T/resume.json")
written=$(json_get bytes <"$T/resume.json")
echo "   resumed: $kept files kept, $written bytes written"
[ "$kept" -ge 1 ] || fail "nothing kept on resume"
[ "$written" -lt $((24 * 8 << 20)) ] || fail "resume rewrote everything"
same_tree "$T/big/g" "$T/res/g"
snapctl restore bigone --target "$T/res" --verify -q --skip-existing

say "postings killed midway: no p1 appears; the rerun resumes"
snapctl backup -q --label bigpost g1="$T/big/g"
mkdir -p "$T/bp"
kill_midway restore bigpost --postings "$T/bp" --threads 1
[ ! -e "$T/bp/p1" ] || fail "a half-restored p1 is visible"
ls -A "$T/bp" | grep -q '^\.p1\.snapfs-' || fail "no stage to resume from"
snapctl restore bigpost --postings "$T/bp" 2>"$T/err" >/dev/null
grep -q "resuming into" "$T/err" || fail "did not resume"
rm "$T/bp/p1/group_id"
same_tree "$T/big/g" "$T/bp/p1"
[ "$(ls -A "$T/bp")" = p1 ] || fail "stage left behind: $(ls -A "$T/bp")"

if [ "$(id -u)" = 0 ]; then
	say "ENOSPC: reported, nothing half-renamed, the space given back"
	mkdir -p "$T/small"
	mount -t tmpfs -o size=48m tmpfs "$T/small"
	on_exit "umount '$T/small'"
	mkdir "$T/small/post"
	echo keep >"$T/small/post/marker"
	expect_fail 9 "group g1: writing f[0-9]+: No space left on device" \
		snapctl restore bigpost --postings "$T/small/post"
	[ "$(ls -A "$T/small/post")" = marker ] ||
		fail "ENOSPC left: $(ls -A "$T/small/post")"
fi
echo "e2e-helper: all good"
