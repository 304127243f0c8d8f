#!/bin/sh
# Store layer and snapctl over S3 (a Ceph RADOS Gateway started here),
# against the practical ceiling (N parallel curl transfers of the same
# objects) and against restic over S3, on the same data in one run.
#
# usage: contrib/bench/bench-s3.sh [WORKDIR]
#   needs: restic and curl (contrib/install-deps.sh --bench), a built tree
#   (SNAPCTL / STOREBENCH override the binaries' paths).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
snapctl=${SNAPCTL:-$top/snapctl}
storebench=${STOREBENCH:-$top/contrib/bench/storebench}
par=${PARALLEL:-8}
W=${1:-$(mktemp -d /tmp/snapfs-bench-s3.XXXXXX)}
mkdir -p "$W"
command -v restic >/dev/null || { echo "bench: needs restic"; exit 1; }
[ -x "$storebench" ] || { echo "bench: build $storebench first (make check builds it)"; exit 1; }

rm -rf "$W/rgw" "$W/o1" "$W/o2"
RGW_MEMSTORE_BYTES=$((12 << 30)) sh "$top/tests/servers/rgw.sh" start "$W/rgw" >"$W/rgw.info"
trap 'sh "$top/tests/servers/rgw.sh" stop "$W/rgw"' EXIT INT TERM
set -- $(cat "$W/rgw.info")
port=$1
export AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3
base="s3://127.0.0.1:$port/bench"
"$snapctl" -r "$base/snap?secure=false" init --create-bucket --no-encryption -q
echo "RADOS Gateway on 127.0.0.1:$port, $par parallel transfers"

now() { python3 -c 'import time; print(time.time())'; }
rate() { python3 -c "print('%.1f' % ($1 / ($3 - $2)))"; }

count=32
mib=16
echo "store layer: $count objects of $mib MiB"
sp=$("$storebench" "$base/raw?secure=false" put $count $mib "$par")
sg=$("$storebench" "$base/raw?secure=false" get $count $mib "$par")
head -c $((mib << 20)) /dev/urandom >"$W/obj"
sigv4="aws:amz:us-east-1:s3"
# curl signs without hashing the payload (we hash it: the server checks
# every byte), so its figure is an upper bound for ours.
unsigned="x-amz-content-sha256: UNSIGNED-PAYLOAD"
t0=$(now)
seq 0 $((count - 1)) | xargs -P "$par" -I{} curl -sf --aws-sigv4 "$sigv4" \
	-H "$unsigned" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -T "$W/obj" \
	"http://127.0.0.1:$port/bench/curl/{}"
t1=$(now)
seq 0 $((count - 1)) | xargs -P "$par" -I{} curl -sf --aws-sigv4 "$sigv4" \
	-H "$unsigned" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -o /dev/null \
	"http://127.0.0.1:$port/bench/curl/{}"
t2=$(now)
cp=$(rate $((count * mib)) "$t0" "$t1")
cg=$(rate $((count * mib)) "$t1" "$t2")

# Corpus: text, random binaries, small files (~700 MiB).
C="$W/corpus"
if [ ! -d "$C" ]; then
	mkdir -p "$C/bin"
	cp -a /usr/share/doc "$C/text" 2>/dev/null || true
	for i in $(seq 1 6); do head -c $((64 << 20)) /dev/urandom >"$C/bin/b$i"; done
	python3 "$top/tests/mkcorpus.py" "$C/small" --small 10000 >/dev/null
fi
total=$(du -sb --apparent-size "$C" | cut -f1)
mibs=$((total >> 20))
head -c 32 /dev/urandom >"$W/key"
echo "bench" >"$W/pass"
export SNAPFS_KEY_FILE="$W/key" RESTIC_PASSWORD_FILE="$W/pass"
cat $(find "$C" -type f) >/dev/null 2>&1 || true
snap="$base/enc?secure=false"
"$snapctl" -r "$snap" init -q
restic -q -r "s3:http://127.0.0.1:$port/bench/restic" init >/dev/null
t0=$(now); "$snapctl" -r "$snap" backup --label bench -q --parallel "$par" "$C"; t1=$(now)
restic -q -r "s3:http://127.0.0.1:$port/bench/restic" -o s3.connections="$par" backup "$C" >/dev/null; t2=$(now)
rm -rf "$W/o1" "$W/o2"
t3=$(now); "$snapctl" -r "$snap" restore bench -q --parallel "$par" --target "$W/o1"; t4=$(now)
restic -q -r "s3:http://127.0.0.1:$port/bench/restic" -o s3.connections="$par" restore latest --target "$W/o2" >/dev/null; t5=$(now)
sb=$(rate $mibs "$t0" "$t1"); rb=$(rate $mibs "$t1" "$t2")
sr=$(rate $mibs "$t3" "$t4"); rr=$(rate $mibs "$t4" "$t5")

python3 - "$sp" "$cp" "$sg" "$cg" "$sb" "$rb" "$sr" "$rr" "$mibs" <<'PY'
import sys
sp, cp, sg, cg, sb, rb, sr, rr = map(float, sys.argv[1:9])
print()
print("%-34s %10s %10s %8s" % ("MiB/s over S3 (RADOS Gateway)", "snapfs", "peer", "ratio"))
print("%-34s %10.1f %10.1f %7.2fx" % ("store upload vs curl ceiling", sp, cp, sp / cp))
print("%-34s %10.1f %10.1f %7.2fx" % ("store download vs curl ceiling", sg, cg, sg / cg))
print("%-34s %10.1f %10.1f %7.2fx" % ("backup %s MiB vs restic" % sys.argv[9], sb, rb, sb / rb))
print("%-34s %10.1f %10.1f %7.2fx" % ("restore vs restic", sr, rr, sr / rr))
PY
