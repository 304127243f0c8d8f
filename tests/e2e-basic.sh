#!/bin/sh
# Back up a tree holding every kind of entry, restore it, and compare
# content and metadata exactly; plain and encrypted (key file, passphrase).
. "$TESTLIB"

python3 "$TESTS_DIR/mkcorpus.py" "$T/src/data" --small 3000 >/dev/null
# The corpus has a FIFO and (as root) devices; a socket is skipped by
# design (and left out of same_tree's comparison).
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	"$T/src/data/special/sock"
[ -p "$T/src/data/special/fifo" ] && [ -S "$T/src/data/special/sock" ] ||
	fail "corpus without FIFO or socket"
if [ "$(id -u)" = 0 ]; then
	[ -c "$T/src/data/special/null" ] && [ -b "$T/src/data/special/loop" ] ||
		fail "corpus without devices"
fi
head -c 32 /dev/urandom >"$T/key32"; chmod 600 "$T/key32"
head -c 16 /dev/urandom >"$T/key16"; chmod 600 "$T/key16"
echo "correct horse battery staple" >"$T/pass"; chmod 600 "$T/pass"

same_data() { same_tree "$T/src/data" "$1"; }

run() {
	name=$1
	shift
	say "$name: init, backup, restore, compare"
	repo=$(repo_url "repo-$name")
	eval "repo_$name='$repo'"
	repo_init "$repo" "$@"
	[ "$1" = --no-encryption ] && shift
	# A skipped socket is a warning, not a failed backup (exit 0).
	snapctl -r "$repo" "$@" backup --label corpus "$T/src/data" \
		>"$T/out" 2>"$T/warn" || fail "backup with a socket exited $?"
	grep -qx "snapctl: warning: skipping .*/special/sock: sockets are not backed up" \
		"$T/warn" || { cat "$T/warn" >&2; fail "no warning for the socket"; }
	[ "$(wc -l <"$T/warn")" = 1 ] || { cat "$T/warn" >&2; fail "other warnings"; }
	! grep -q "warning(s)" "$T/out" || fail "the socket counted as a warning"
	snapctl -r "$repo" "$@" restore corpus --target "$T/out-$name" -q
	same_data "$T/out-$name/data"
	# Sparse files cost what they hold.
	alloc=$(du -sk "$T/out-$name/data/zk/version-2/log.100000001" | cut -f1)
	[ "$alloc" -le 64 ] || fail "sparse log restored dense (${alloc} KiB)"
	snapctl -r "$repo" "$@" check --read-data -q
}

run plain --no-encryption
run aes256 --encryption-key-file "$T/key32"
run aes128 --encryption-key-file "$T/key16"
run passphrase --password-file "$T/pass"

if [ "$STORE" = file ]; then
	say "encrypted repository reveals no plaintext"
	if grep -rq "has xattrs" "$T/repo-aes256"; then fail "plaintext in packs"; fi
fi

say "ls, cat, show, list"
export SNAPFS_KEY_FILE="$T/key32"
r=$repo_aes256
snapctl -r "$r" show corpus --json | grep -q '"encrypted": true' 
snapctl -r "$r" ls corpus/1/data/links | grep -q 'rel -> target'
snapctl -r "$r" cat corpus/1/data/links/target | grep -q 'target data'
snapctl -r "$r" cat corpus/latest/data/islands.sparse | cmp - "$T/src/data/islands.sparse"
snapctl -r "$r" show corpus | grep -q 'state:     STATUS_READY'
snapctl -r "$r" show corpus --json | grep -q '"type": "full"'
snapctl -r "$r" list --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert len(v) == 1 and v[0]["backup_num"] == 1 and v[0]["type"] == "full", v
assert v[0]["files"] > 3000, v'

say "FIFOs and devices: ls, restore --json, non-root restore"
snapctl -r "$r" ls corpus/1/data/special >"$T/ls"
grep -Eq '^prw-r----- +0 +0 +0 .* fifo$' "$T/ls" || { cat "$T/ls"; fail "ls: fifo"; }
! grep -q sock "$T/ls" || fail "ls: a socket was stored"
if [ "$(id -u)" = 0 ]; then
	grep -Eq '^crw-rw-rw- +1234 +5678 +1, 3 .* null$' "$T/ls" || { cat "$T/ls"; fail "ls: null"; }
	grep -Eq '^brw-rwS--- +0 +0 +7, 1048575 .* loop$' "$T/ls" || { cat "$T/ls"; fail "ls: loop"; }
	snapctl -r "$r" ls --json corpus/1/data/special | grep '"name":"loop"' |
		grep -q '"rdev_major":7,"rdev_minor":1048575,.*"type":"blockdev"' || fail "ls --json: loop"
	snapctl -r "$r" restore corpus --path special --target "$T/sp" --json >"$T/sp.json"
	[ "$(json_get specials <"$T/sp.json")" = 3 ] || fail "restore --json: $(cat "$T/sp.json")"
	same_tree "$T/src/data/special" "$T/sp/data/special"
	# Without CAP_MKNOD (as any non-root user) devices cannot be made:
	# a warning each, the FIFO and the rest restored, exit status 3.
	set +e
	setpriv --bounding-set=-mknod --inh-caps=-mknod "$SNAPCTL" -r "$r" \
		restore corpus --path special --target "$T/nomknod" -q 2>"$T/err"
	got=$?
	set -e
	[ "$got" = 3 ] || { cat "$T/err" >&2; fail "restore without CAP_MKNOD exited $got"; }
	grep -q "special/null: device not restored: Operation not permitted" "$T/err" ||
		{ cat "$T/err" >&2; fail "no warning for the device"; }
	[ -p "$T/nomknod/data/special/fifo" ] && [ ! -e "$T/nomknod/data/special/null" ] ||
		fail "restore without CAP_MKNOD"
fi

# bsdtar and cpio make a FIFO's second name a hardlink member (GNU tar
# does not): both names come back FIFOs.
python3 - "$T/hlfifo.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    p = tarfile.TarInfo("d/p")
    p.type, p.mode, p.mtime = tarfile.FIFOTYPE, 0o640, 1600000000
    q = tarfile.TarInfo("d/q")
    q.type, q.linkname, q.mode, q.mtime = tarfile.LNKTYPE, "d/p", 0o640, 1600000000
    t.addfile(p)
    t.addfile(q)
PY
snapctl -r "$r" backup --label hlfifo -q "$T/hlfifo.tar"
snapctl -r "$r" restore hlfifo --target "$T/hlfifo-out" -q
[ "$(stat -c '%F %a %Y' "$T/hlfifo-out/hlfifo/d/p" "$T/hlfifo-out/hlfifo/d/q" | sort -u)" = \
	"fifo 640 1600000000" ] || fail "a hardlinked FIFO from an archive"

say "restore one group / one path"
snapctl -r "$r" restore corpus --path links/target --target "$T/one" -q
cmp "$T/one/data/links/target" "$T/src/data/links/target"
[ "$(find "$T/one" -type f | wc -l)" = 1 ] || fail "--path restored more"

say "restore under a descriptor limit far below the file count"
# Each file holds a descriptor until its last chunk is in: the restore
# must wait for writers, not fail with EMFILE (3000 files, limit 128).
(ulimit -n 128 && snapctl -r "$r" restore corpus --target "$T/fdlim" -q) ||
	fail "restore under ulimit -n 128 failed"
same_data "$T/fdlim/data"

say "tar export under the C locale: GNU tar extracts it exactly, and back"
# cron and systemd run with no locale; names are bytes, mtimes have
# nanoseconds, xattrs must reach GNU tar without warnings.  One is known:
# libarchive adds SCHILY.devminor for a minor of 2^18 or more (the corpus
# has the largest Linux allows), which GNU tar does not know but reads
# from the ustar header instead (same_data checks it).
(unset LANG LC_ALL LC_CTYPE && snapctl -r "$r" export corpus -o "$T/c.tar" -q) ||
	fail "export under the C locale"
tar -tvf "$T/c.tar" 2>/dev/null | grep -Eq '^p.* data/special/fifo$' || fail "tar: no FIFO"
mkdir "$T/untar"
LC_ALL=C tar --xattrs --xattrs-include='*' -xpf "$T/c.tar" -C "$T/untar" 2>"$T/tar.err" ||
	fail "GNU tar could not extract the export"
if grep -v "Ignoring unknown extended header keyword 'SCHILY.devminor'" "$T/tar.err" >&2; then
	fail "GNU tar warned"
fi
same_data "$T/untar/data"
(unset LANG LC_ALL LC_CTYPE && snapctl -r "$r" backup --label fromtar -q "$T/c.tar") ||
	fail "importing the export (warnings?)"
snapctl -r "$r" restore fromtar --target "$T/fromtar" -q
same_data "$T/fromtar/c/data"
# A name that is not UTF-8 (Latin-1) survives export and import as bytes.
mkdir -p "$T/bytes/d" && echo latin1 >"$(printf '%s/bytes/d/caf\351' "$T")"
snapctl -r "$r" backup --label bytes -q "$T/bytes"
(unset LANG LC_ALL LC_CTYPE && snapctl -r "$r" export bytes -o "$T/b.tar" -q)
snapctl -r "$r" backup --label bytes2 -q "$T/b.tar"
snapctl -r "$r" restore bytes2 --target "$T/bytes2" -q
same_tree "$T/bytes/d" "$T/bytes2/b/bytes/d"

say "several groups, named"
snapctl -r "$r" backup --label multi -q "zk=$T/src/data/zk" "$T/src/data/names"
snapctl -r "$r" ls multi/1 | grep -q ' zk$'
snapctl -r "$r" restore multi --group names --target "$T/grp" -q
[ -d "$T/grp/names" ] && [ ! -e "$T/grp/zk" ] || fail "--group restored wrong groups"
same_tree "$T/src/data/names" "$T/grp/names"

say "delete removes the series and nothing else"
before=$(snapctl -r "$r" stats --json | json_get packs)
multi=$(snapctl -r "$r" list multi --json | python3 -c '
import json, sys
print(json.load(sys.stdin)[0]["series"])')
snapctl -r "$r" delete "$multi" -q
snapctl -r "$r" list | grep -q multi && fail "series still listed"
after=$(snapctl -r "$r" stats --json | json_get packs)
[ "$after" -lt "$before" ] || fail "no packs deleted"
snapctl -r "$r" check --read-data -q
say "--metrics-file: a Prometheus textfile per (command, label), success kept across a failure"
mf="$T/snapfs.prom"
mkdir -p "$T/msrc"
echo m >"$T/msrc/f"
snapctl -r "$r" backup --label metrics -q --metrics-file "$mf" "$T/msrc"
snapctl -r "$r" check -q --metrics-file "$mf"
expect_fail 4 "not a snapfs repository" snapctl -r "$T/norepo" backup --label metrics -q --metrics-file "$mf" "$T/msrc"
python3 - "$mf" <<'PY'
import re, sys
seen, vals = set(), {}
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP ") or line.startswith("# TYPE "):
        parts = line.split(" ", 3)
        assert re.fullmatch(r"snapfs_[a-z_]+", parts[2]), line
        if parts[1] == "TYPE":
            assert parts[3] == "gauge" and parts[2] not in seen, line
            seen.add(parts[2])
        continue
    m = re.fullmatch(r'(snapfs_[a-z_]+)\{command="([a-z]+)",label="([^"]*)"\} (\S+)', line)
    assert m and m.group(1) in seen, "bad line: " + line
    vals[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
b = lambda n: vals.get((n, "backup", "metrics"))
assert b("snapfs_last_exit_status") == 4, vals
assert b("snapfs_last_success_timestamp_seconds") < b("snapfs_last_end_timestamp_seconds"), vals
assert b("snapfs_files") is None, "a failed run left figures"
assert vals[("snapfs_last_exit_status", "check", "")] == 0
assert vals[("snapfs_errors", "check", "")] == 0
print("   metrics: %d samples, backup exit %d, last success kept" % (len(vals), b("snapfs_last_exit_status")))
PY

say "an upload cap paces a local store too"
mkdir -p "$T/rate"
head -c $((12 << 20)) /dev/urandom >"$T/rate/f"
start=$(date +%s.%N)
snapctl -r "$r" backup --label rate -q --limit-upload 4M "$T/rate"
took=$(python3 -c "import time; print(time.time() - $start)")
echo "   12 MiB at 4 MiB/s took ${took}s"
python3 -c "import sys; sys.exit(0 if $took >= 2.0 else 1)" || fail "upload cap not applied"
snapctl -r "$r" check -q
echo "e2e-basic: all good"
