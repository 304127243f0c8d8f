#!/bin/sh
# Store layer and snapctl over S3 (a Ceph RADOS Gateway started here),
# against the practical ceiling (N parallel curl transfers of the same
# objects) and against restic over S3, on the same data in one run.
#
# usage: contrib/bench/bench-s3.sh [WORKDIR]
#   needs: restic and curl (contrib/install-deps.sh --bench), a built tree
#   (SNAPCTL / STOREBENCH override the binaries' paths).  ROUNDS (default
#   5) sets how many times each measure runs; the two sides of a ratio run
#   back to back, alternating who goes first, and the median is reported:
#   the gateway shares this machine's cores with the clients, and single
#   runs vary by half.  Each tool restores once unmeasured first (the first
#   run after a backup pays for the memory the backup gave back).  As root,
#   restores go to a fresh tmpfs (a freshly emptied ext4 makes inode
#   allocation, not the tool, the cost).  TLS=1 runs everything over HTTPS
#   (a private CA made here), as production would: both clients then send
#   bodies unsigned and the server decrypts instead of hashing.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
snapctl=${SNAPCTL:-$top/snapctl}
storebench=${STOREBENCH:-$top/contrib/bench/storebench}
par=${PARALLEL:-8}
rounds=${ROUNDS:-5}
W=${1:-$(mktemp -d /tmp/snapfs-bench-s3.XXXXXX)}
mkdir -p "$W"
. "$top/tests/servers/common.sh"
command -v restic >/dev/null || { echo "bench: needs restic"; exit 1; }
[ -x "$storebench" ] || { echo "bench: build $storebench first (make check builds it)"; exit 1; }

out="$W/out"
rm -rf "$W/rgw" "$out"
mkdir -p "$out"
tls=${TLS:-0}
[ "$tls" = 1 ] && make_ca "$W/tls"
RGW_TLS_CERT=$([ "$tls" = 1 ] && echo "$W/tls/server.pem") RGW_MEMSTORE_BYTES=$((16 << 30)) \
	sh "$top/tests/servers/rgw.sh" start "$W/rgw" >"$W/rgw.info"
cleanup() {
	[ "$(id -u)" = 0 ] && umount "$out" 2>/dev/null
	sh "$top/tests/servers/rgw.sh" stop "$W/rgw"
}
trap cleanup EXIT INT TERM
set -- $(cat "$W/rgw.info")
export AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3
# q: our location options; http: the scheme for curl and restic, which
# take the private CA from the environment (curl, Go's crypto/x509).
if [ "$tls" = 1 ]; then
	port=$4 q="?ca=$W/tls/ca.pem" http=https
	export CURL_CA_BUNDLE="$W/tls/ca.pem" SSL_CERT_FILE="$W/tls/ca.pem"
else
	port=$1 q="?secure=false" http=http
fi
base="s3://127.0.0.1:$port/bench"
"$snapctl" -r "$base/snap$q" init --create-bucket --no-encryption -q
echo "RADOS Gateway on $http://127.0.0.1:$port, $par parallel transfers, $rounds rounds"

: >"$W/results"
: >"$W/cpu"
# timed NAME MIB CMD...: runs CMD and records its MiB/s (the clock covers
# CMD alone), the CPU seconds it used and those the gateway (radosgw, OSD,
# monitor) used meanwhile: they share this machine's cores.  NAME "-"
# records nothing (a warm-up).
timed() {
	python3 -c '
import glob, os, resource, subprocess, sys, time
w, name, mib, cmd = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
def gw():
    t = 0
    for f in glob.glob(w + "/rgw/run/*.pid"):
        with open("/proc/%s/stat" % open(f).read().strip()) as st:
            v = st.read().rsplit(")", 1)[1].split()
        t += int(v[11]) + int(v[12])
    return t / os.sysconf("SC_CLK_TCK")
g0 = gw()
t0 = time.monotonic()
r = subprocess.call(cmd)
t1 = time.monotonic()
g1 = gw()
u = resource.getrusage(resource.RUSAGE_CHILDREN)
if r == 0 and name != "-":
    open(w + "/results", "a").write("%s %.1f\n" % (name, mib / (t1 - t0)))
    open(w + "/cpu", "a").write("%s %.2f %.2f\n" % (name, u.ru_utime + u.ru_stime, g1 - g0))
sys.exit(r)' "$W" "$@"
}
# empty_out: an empty restore target (a fresh tmpfs as root).
empty_out() {
	if [ "$(id -u)" = 0 ]; then
		umount "$out" 2>/dev/null || true
		mount -t tmpfs -o size=8g tmpfs "$out"
	else
		rm -rf "$out" && mkdir -p "$out"
	fi
}

count=32
mib=16
head -c $((mib << 20)) /dev/urandom >"$W/obj"
sigv4="aws:amz:us-east-1:s3"
# curl signs without hashing the payload (over plain HTTP we hash it and
# the server checks every byte), so its figure is an upper bound for ours.
unsigned="x-amz-content-sha256: UNSIGNED-PAYLOAD"
curl_put() {
	timed cput $((count * mib)) sh -c 'seq 0 $(($1 - 1)) | xargs -P "$2" -I{} \
		curl -sf --aws-sigv4 "$3" -H "$4" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-T "$5" "$6/{}"' - "$count" "$par" "$sigv4" "$unsigned" "$W/obj" \
		"$http://127.0.0.1:$port/bench/curl"
}
curl_get() {
	timed cget $((count * mib)) sh -c 'seq 0 $(($1 - 1)) | xargs -P "$2" -I{} \
		curl -sf --aws-sigv4 "$3" -H "$4" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-o /dev/null "$5/{}"' - "$count" "$par" "$sigv4" "$unsigned" \
		"$http://127.0.0.1:$port/bench/curl"
}
raw="$base/raw$q"
store_put() { echo "sput $("$storebench" "$raw" put $count $mib "$par")" >>"$W/results"; }
store_get() { echo "sget $("$storebench" "$raw" get $count $mib "$par")" >>"$W/results"; }
# both ROUND A B: A then B in odd rounds, B then A in even ones.
both() {
	if [ $(($1 % 2)) = 1 ]; then "$2" "$1"; "$3" "$1"; else "$3" "$1"; "$2" "$1"; fi
}
echo "store layer: $count objects of $mib MiB"
for r in $(seq 1 "$rounds"); do
	both "$r" store_put curl_put
	both "$r" store_get curl_get
done

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
head -c 32 /dev/urandom >"$W/key"; chmod 600 "$W/key"
echo "bench" >"$W/pass"; chmod 600 "$W/pass"
export SNAPFS_KEY_FILE="$W/key" RESTIC_PASSWORD_FILE="$W/pass"
cat $(find "$C" -type f) >/dev/null 2>&1 || true
restic_url="s3:$http://127.0.0.1:$port/bench/restic"
snap_backup() {
	"$snapctl" -r "$base/enc$1$q" init -q
	timed sbackup $mibs "$snapctl" -r "$base/enc$1$q" backup --label bench -q \
		--parallel "$par" "$C"
}
restic_backup() {
	restic -q -r "$restic_url$1" init >/dev/null
	timed rbackup $mibs restic -q -r "$restic_url$1" -o s3.connections="$par" \
		backup "$C" >/dev/null
}
# snap_restore / restic_restore ROUND|warm: one restore, measured unless
# it is the warm-up.
snap_restore() {
	empty_out
	timed "$([ "$1" = warm ] && echo - || echo srestore)" $mibs "$snapctl" \
		-r "$base/enc1$q" restore bench -q --parallel "$par" --target "$out/t"
}
restic_restore() {
	empty_out
	timed "$([ "$1" = warm ] && echo - || echo rrestore)" $mibs restic -q \
		-r "${restic_url}1" -o s3.connections="$par" restore latest \
		--target "$out/t" >/dev/null
}
echo "corpus: $mibs MiB, $(find "$C" -type f | wc -l) files"
for r in $(seq 1 "$rounds"); do both "$r" snap_backup restic_backup; done
snap_restore warm
restic_restore warm
for r in $(seq 1 "$rounds"); do both "$r" snap_restore restic_restore; done

python3 - "$W/results" "$mibs" "$W/cpu" <<'PY'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    runs.setdefault(k, []).append(float(v))
med = {k: statistics.median(v) for k, v in runs.items()}
print()
print("%-32s %9s %9s %7s   %s" % ("MiB/s over S3 (RADOS Gateway)", "snapfs",
                                    "peer", "ratio", "runs (snapfs / peer)"))
for label, s, p in (("store upload vs curl ceiling", "sput", "cput"),
                    ("store download vs curl ceiling", "sget", "cget"),
                    ("backup %s MiB vs restic" % sys.argv[2], "sbackup", "rbackup"),
                    ("restore vs restic", "srestore", "rrestore")):
    print("%-32s %9.1f %9.1f %6.2fx   %s / %s" % (
        label, med[s], med[p], med[s] / med[p],
        " ".join("%.0f" % x for x in runs[s]), " ".join("%.0f" % x for x in runs[p])))
cpu = {}
for line in open(sys.argv[3]):
    k, c, g = line.split()
    cpu.setdefault(k, []).append((float(c), float(g)))
print()
print("CPU seconds per run, median (the gateway shares the client's cores)")
print("%-32s %9s %9s" % ("", "client", "gateway"))
for label, k in (("snapfs backup", "sbackup"), ("restic backup", "rbackup"),
                 ("snapfs restore", "srestore"), ("restic restore", "rrestore")):
    v = cpu[k]
    print("%-32s %9.2f %9.2f" % (label, statistics.median(c for c, g in v),
                                 statistics.median(g for c, g in v)))
PY
