#!/bin/sh
# Streaming: a large file written into control/ goes into the store while
# it is written, so the stage holds a window of it, not the file.  Reads
# of it mix stored chunks and local bytes; writes behind the cut point,
# truncates and holes keep it exact; a killed daemon loses nothing that
# was closed; the commit takes the stored chunks as they are.
. "$TESTLIB"

[ "$(id -u)" = 0 ] || { echo "needs root (FUSE)"; exit 77; }
keyed_repo repo
m="$T/m"
mount_repo "$r" "$m" -o stage_dir="$T/stage"
L="$m/control/big"
data_kb() { du -sk "$T/stage/big/data" | cut -f1; }
# stage_peak CMD...: runs CMD, sets peak to the most KiB the stage's data
# held meanwhile.
stage_peak() {
	"$@" &
	sp=$!
	peak=0
	while kill -0 $sp 2>/dev/null; do
		k=$(data_kb)
		[ "$k" -gt "$peak" ] && peak=$k
		sleep 0.1
	done
	wait $sp
}

say "a 256 MiB file streams: the stage holds a window of it"
mkdir -p "$T/src"
head -c 268435456 /dev/urandom >"$T/src/f"
mkdir -p "$L/g"
stage_peak dd if="$T/src/f" of="$L/g/f" bs=1M status=none || fail "dd into control/"
after=$(data_kb)
echo "stage data: peak $peak KiB while writing, $after KiB after close"
# The bound (snapfs(1)): the 8 MiB window, 48 MiB a writer may be ahead,
# 32 MiB of writes in flight, and the packs in flight (4 of 16 MiB).
[ "$peak" -lt 163840 ] || fail "the stage held $peak KiB of a 256 MiB file"
[ "$after" -lt 98304 ] || fail "the stage keeps $after KiB after close"
cmp "$T/src/f" "$L/g/f" || fail "reading the streamed file back"

say "writes behind the cut point keep it exact"
python3 - "$L/g/wb" "$T/src/wb" <<'EOF'
import os, sys
blk = os.urandom(1 << 20)
for path in sys.argv[1:]:
    with open(path, "wb") as f:
        for i in range(48):
            f.write(blk[i:] + blk[:i])
        f.flush(); os.fsync(f.fileno())
        f.seek(3 << 20); f.write(b"behind" * 1000)
        f.seek(48 << 20)
        for i in range(48, 80):
            f.write(blk[i:] + blk[:i])
EOF
cmp "$T/src/wb" "$L/g/wb" || fail "file written behind its cut point"
# Late pages, as the writeback cache sends them: every 8th MiB comes 24
# MiB late (fsync makes each arrive when written).
python3 - "$L/g/late" "$T/src/late" <<'EOF'
import os, sys
blk = os.urandom(1 << 20)
order, late = [], []
for i in range(96):
    if i % 8 == 3:
        late.append((i + 24, i))
    else:
        order.append(i)
    while late and late[0][0] <= i:
        order.append(late.pop(0)[1])
order += [b for _, b in late]
for path in sys.argv[1:]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for n, i in enumerate(order):
        os.pwrite(fd, blk[i:] + blk[:i], i << 20)
        if n % 4 == 3:
            os.fsync(fd)
    os.close(fd)
EOF
cmp "$T/src/late" "$L/g/late" || fail "file written with late pages"

say "truncate, append and holes"
head -c 62914560 /dev/urandom >"$T/src/t"
cp "$T/src/t" "$L/g/t"
truncate -s 20000000 "$T/src/t" "$L/g/t"
head -c 30000000 /dev/urandom >"$T/src/tail"
cat "$T/src/tail" >>"$T/src/t"
cat "$T/src/tail" >>"$L/g/t"
cmp "$T/src/t" "$L/g/t" || fail "truncated and appended"
dd if=/dev/urandom of="$T/src/sp" bs=1M count=30 status=none
dd if=/dev/urandom of="$T/src/sp" bs=1M count=30 seek=70 conv=notrunc status=none
rsync -S "$T/src/sp" "$L/g/sp"
cmp "$T/src/sp" "$L/g/sp" || fail "sparse file"

say "kill -9 after close: the stage keeps the streamed file"
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
fusermount3 -uz "$m" 2>/dev/null || true
mount_repo "$r" "$m" -o stage_dir="$T/stage"
for f in f wb late t sp; do
	cmp "$T/src/$f" "$L/g/$f" || fail "$f after kill -9"
done

say "commit takes the stored chunks"
touch "$L/.snapfs/commit" || fail "commit"
S=$(ls "$m/series")
for f in f wb late t sp; do
	cmp "$T/src/$f" "$m/series/$S/1/g/$f" || fail "$f in the backup"
done
stored=$(repo_bytes "$r")
echo "repository: $stored bytes for $(du -cb "$T/src/f" "$T/src/wb" "$T/src/late" "$T/src/t" "$T/src/sp" | tail -1 | cut -f1) bytes written"

say "kill -9 while a file streams: it is put back, nothing else changes"
dd if="$T/src/f" of="$L/g/killed" bs=1M status=none &
DD=$!
for _ in $(seq 1 100); do
	[ "$(data_kb)" -gt 0 ] && [ -s "$L/g/killed" ] && \
		[ "$(stat -c %s "$L/g/killed")" -gt 60000000 ] && break
	sleep 0.1
done
kill -9 "$MOUNT_PID"
wait $DD 2>/dev/null || true
wait "$MOUNT_PID" 2>/dev/null || true
fusermount3 -uz "$m" 2>/dev/null || true
mount_repo "$r" "$m" -o stage_dir="$T/stage"
[ ! -e "$L/g/killed" ] || fail "a file open at kill -9 is still there"
echo after >"$L/g/after"
touch "$L/.snapfs/commit" || fail "commit after kill -9"
cmp "$T/src/f" "$m/series/$S/2/g/f" || fail "f in backup 2"
snapctl -r "$r" check --read-data >/dev/null || fail "check --read-data"

say "stage_max: past it, growing writes fail with ENOSPC until a commit"
unmount_repo "$m" "$MOUNT_PID"
mount_repo "$r" "$m" -o stage_dir="$T/stage",stage_max=8M,no_stream
head -c 6000000 /dev/urandom >"$T/src/six"
cp "$T/src/six" "$L/g/six1" || fail "a file below stage_max"
expect_fail 1 "No space left on device" cp "$T/src/six" "$L/g/six2"
rm -f "$L/g/six2"
for _ in $(seq 1 100); do
	grep -q "big: the stage holds stage_max or more: [0-9]* write(s) refused" "$T/snapfs.log" && break
	sleep 0.1
done
grep -q "big: the stage holds stage_max" "$T/snapfs.log" || fail "no log line for stage_max"
touch "$L/.snapfs/commit" || fail "commit at stage_max"
cp "$T/src/six" "$L/g/six2" || fail "a write after the commit emptied the stage"
cmp "$T/src/six" "$m/series/$S/3/g/six1" || fail "six1 in backup 3"

say "the store fails while a file streams: its close says EIO, it stays staged, the commit stores it"
d=$(ls -d "$r"/data/* 2>/dev/null | head -n 1)
if [ "$STORE" = file ] && [ -n "$d" ] && chattr +i "$d" 2>/dev/null; then
	on_exit "chattr -i '$d' 2>/dev/null"
	unmount_repo "$m" "$MOUNT_PID"
	mount_repo "$r" "$m" -o stage_dir="$T/stage"
	head -c $((64 << 20)) /dev/urandom >"$T/src/sf"
	expect_fail 1 "Input/output error" dd if="$T/src/sf" of="$L/g/sf" bs=1M status=none
	python3 -c 'import json,sys; e=json.load(open(sys.argv[1])).get("stream_error"); print("status: stream_error:", e); sys.exit(0 if e else 1)' \
		"$L/.snapfs/status" || fail "status does not say why streaming stopped"
	python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["stream_failed"]; print("status: stream_failed:", f); sys.exit(0 if f == ["g/sf"] else 1)' \
		"$L/.snapfs/status" || fail "status does not name the file whose stream failed"
	grep -q "streaming it failed" "$T/snapfs.log" || fail "no log line for the failed stream"
	# Nothing is lost: the bytes are still local.
	cmp "$T/src/sf" "$L/g/sf" || fail "the file after the failed stream"
	chattr -i "$d"
	touch "$L/.snapfs/commit" || fail "commit after the store came back"
	cmp "$T/src/sf" "$m/series/$S/4/g/sf" || fail "sf in backup 4"
	snapctl -r "$r" check --read-data >/dev/null || fail "check --read-data after the failed stream"
else
	echo "   (a local store and chattr +i are needed: skipped)"
fi

say "rsync --inplace over a stored file streams: no local copy of it"
unmount_repo "$m" "$MOUNT_PID"
mount_repo "$r" "$m" -o stage_dir="$T/stage"
n=$(ls "$m/series/$S" | sort -n | tail -1)
cmp "$T/src/f" "$L/g/f" || fail "f before the in-place rewrite"
cp "$T/src/f" "$T/src/f2"
dd if=/dev/urandom of="$T/src/f2" bs=1M count=3 seek=100 conv=notrunc status=none
stage_peak rsync --inplace "$T/src/f2" "$L/g/f" || fail "rsync --inplace"
echo "stage data: peak $peak KiB while rewriting a 256 MiB file in place"
[ "$peak" -lt 163840 ] || fail "the stage held $peak KiB of a 256 MiB file rewritten in place"
cmp "$T/src/f2" "$L/g/f" || fail "the file rewritten in place"
touch "$L/.snapfs/commit" || fail "commit after the in-place rewrite"
n=$((n + 1))
cmp "$T/src/f2" "$m/series/$S/$n/g/f" || fail "the in-place rewrite in backup $n"

# twin_write skip|random: the same writes into the file in control/ and
# into its local twin, opened in place (no O_TRUNC).
twin_write() {
	python3 - "$1" "$L/g/f" "$T/src/f2" <<'EOF'
import os, random, sys
mode, paths = sys.argv[1], sys.argv[2:]
rnd = random.Random(7)
size = os.path.getsize(paths[1])
blk = os.urandom(1 << 20)
if mode == "skip":  # whole MiBs, unaligned, with gaps left as stored
    writes = [((i << 20) + 333, blk[i % 7:] + blk[:i % 7])
              for i in list(range(0, 20)) + list(range(30, 45)) + list(range(47, 90))]
else:  # 40 writes of 1 B to 300 KB anywhere, some past the end
    writes = [(rnd.randrange(0, size + (1 << 20)),
               os.urandom(rnd.choice([1, 512, 4096, 65536, 300000])))
              for _ in range(40)]
fds = [os.open(p, os.O_RDWR) for p in paths]
for i, (off, data) in enumerate(writes):
    for fd in fds:
        os.pwrite(fd, data, off)
    if i % 8 == 7:
        for fd in fds:
            os.fsync(fd)
for fd in fds:
    os.close(fd)
EOF
}

say "an in-place writer that skips parts of a stored file: exact, the parts skipped taken as stored"
twin_write skip
cmp "$T/src/f2" "$L/g/f" || fail "the file after skipping writes"
touch "$L/.snapfs/commit" || fail "commit after skipping writes"
n=$((n + 1))
cmp "$T/src/f2" "$m/series/$S/$n/g/f" || fail "skipping writes in backup $n"

say "a database-like writer: random writes into a stored file are exact"
twin_write random
cmp "$T/src/f2" "$L/g/f" || fail "the file after random writes"
k=$(data_kb)
echo "stage data after 40 random writes into a 256 MiB file: $k KiB"
[ "$k" -lt 131072 ] || fail "random writes copied the file into the stage"
touch "$L/.snapfs/commit" || fail "commit after random writes"
n=$((n + 1))
cmp "$T/src/f2" "$m/series/$S/$n/g/f" || fail "random writes in backup $n"
snapctl -r "$r" check --read-data >/dev/null || fail "check --read-data after the in-place writers"

say "writers held back by a slow store leave half the loop's threads to others"
unmount_repo "$m" "$MOUNT_PID"
mount_repo "$r" "$m" -o stage_dir="$T/stage",max_threads=4,limit_upload=1M
head -c $((96 << 20)) /dev/urandom >"$T/src/h"
# Two labels, two files each: four passes could take all four threads.
hf() { [ "$1" -le 2 ] && echo "$L/g/h$1" || echo "$m/control/big2/g/h$1"; }
mkdir -p "$m/control/big2/g"
pids=
for i in 1 2 3 4; do
	dd if="$T/src/h" of="$(hf $i)" bs=1M status=none &
	pids="$pids $!"
done
# Until every writer is far enough ahead of its uploads to wait: a wait,
# not a speed claim (320 MiB through the chunker; a loaded CI host is
# slow), so a minute at most.
for _ in $(seq 1 600); do
	n=0
	for i in 1 2 3 4; do
		[ "$(stat -c %s "$(hf $i)" 2>/dev/null || echo 0)" -gt $((80 << 20)) ] && n=$((n + 1))
	done
	[ $n = 4 ] && break
	sleep 0.1
done
[ $n = 4 ] || fail "four writers did not get ahead of a 1 MB/s store"
sleep 1
tot() { t=0; for i in 1 2 3 4; do t=$((t + $(stat -c %s "$(hf $i)"))); done; echo $t; }
a=$(tot); sleep 1; b=$(tot)
echo "the writers wrote $(( (b - a) >> 20 )) MiB in 1 s"
[ $((b - a)) -lt $((16 << 20)) ] || fail "the writers are not held back"
timeout 5 cat "$L/.snapfs/status" >/dev/null || fail "status while writers are held"
timeout 5 head -c $((8 << 20)) "$m/series/$S/1/g/f" | cmp -n $((8 << 20)) - "$T/src/f" || fail "reading series/ while writers are held"
timeout 5 sh -c "mkdir -p '$m/control/other/g' && echo small >'$m/control/other/g/s'" || fail "another label's create and close while writers are held"
running=0
for p in $pids; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
echo "writers still held after the checks: $running of 4"
[ "$running" -gt 0 ] || fail "the writers finished first: nothing was shown"
kill -9 "$MOUNT_PID"
for p in $pids; do wait "$p" 2>/dev/null || true; done
wait "$MOUNT_PID" 2>/dev/null || true
fusermount3 -uz "$m" 2>/dev/null || true
mount_repo "$r" "$m" -o stage_dir="$T/stage"
[ "$(cat "$m/control/other/g/s")" = small ] || fail "the small file closed while writers were held"
# Closed before the kill, or not there at all: never a part.
for i in 1 2 3 4; do
	[ ! -e "$(hf $i)" ] || cmp "$T/src/h" "$(hf $i)" || fail "h$i after kill -9"
done
