#!/bin/sh
# Restore throughput: snapctl restore (--target and the --postings helper)
# vs restic restore vs tar -x of the same data, same machine, one run.
#
# usage: contrib/bench/bench-restore.sh [WORKDIR]   (root, ~8 GiB RAM; restic)
#
# Corpus (~1.2 GiB apparent): two Dgraph-like posting directories (3000
# files of 0-160 KiB and 6 x 64 MiB value logs each, random data) and a
# ZooKeeper data directory (a 20 MiB snapshot and 8 preallocated 64 MiB
# logs holding 1 MiB each, sparse).  Every restore goes to a fresh tmpfs,
# with the repositories and the tarball in the page cache: this measures
# the tools, not the VM's disk.
# Prints seconds, MiB/s of apparent data and ratios (> 1: snapfs faster).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
snapctl=${SNAPCTL:-$top/snapctl}
command -v restic >/dev/null || { echo "bench: needs restic (contrib/install-deps.sh --bench)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "bench: run as root (a fresh tmpfs per restore)"; exit 1; }
W=${1:-$(mktemp -d /tmp/snapfs-bench-restore.XXXXXX)}
mkdir -p "$W"
C="$W/corpus"

if [ ! -d "$C" ]; then
	echo "building corpus in $C"
	python3 - "$C" <<'EOF'
import os, sys, random
root = sys.argv[1]
rnd = random.Random(7)
for g in ("p1", "p2"):
    for i in range(3000):
        d = os.path.join(root, g, "%02d" % (i % 40))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "%06d.sst" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(0, 160 << 10)))
    for i in range(6):
        with open(os.path.join(root, g, "%06d.vlog" % i), "wb") as f:
            f.write(os.urandom(64 << 20))
v = os.path.join(root, "zk", "version-2")
os.makedirs(v)
with open(os.path.join(v, "snapshot.1000"), "wb") as f:
    f.write(os.urandom(20 << 20))
for i in range(8):
    with open(os.path.join(v, "log.%x" % (0x1001 + i)), "wb") as f:
        f.write(os.urandom(1 << 20))
        f.truncate(64 << 20)
EOF
fi
apparent=$(du -sb --apparent-size "$C" | cut -f1)
ondisk=$(du -s --block-size=1 "$C" | cut -f1)
nfiles=$(find "$C" -type f | wc -l)
echo "corpus: $nfiles files, $((apparent >> 20)) MiB apparent, $((ondisk >> 20)) MiB on disk"

[ -f "$W/key" ] || head -c 32 /dev/urandom >"$W/key"; chmod 600 "$W/key"
echo "bench password" >"$W/pass"; chmod 600 "$W/pass"
export SNAPFS_KEY_FILE="$W/key" RESTIC_PASSWORD_FILE="$W/pass"

# Each restore writes to a fresh tmpfs: on an ext4 image the VM's disk
# writeback made the same restore take 0.8 to 3.2 s from run to run.
out=""
trap '[ -n "$out" ] && umount "$out" 2>/dev/null' EXIT
fresh_fs() {
	out=$1
	mkdir -p "$out"
	mount -t tmpfs -o size=4g tmpfs "$out"
}
: >"$W/results"
# measure NAME OUTDIR CMD...: the median of five runs, each on a fresh
# filesystem with the sources in the page cache.
measure() {
	name=$1 dir=$2
	shift 2
	for run in 1 2 3 4 5; do
		fresh_fs "$dir"
		cat "$W/snap-repo"/*/*/* "$W/restic-repo"/data/*/* \
			"$W/corpus.tar" >/dev/null 2>&1 || true
		/usr/bin/time -f "%e %M" -o "$W/t.$run" "$@" >"$W/$name.out" 2>&1 || {
			cat "$W/$name.out"
			echo "bench: $name failed"
			exit 1
		}
		[ "$run" = 5 ] && du -s --block-size=1M "$dir" | sed "s|^|  $name on disk (MiB): |"
		umount "$dir"
		out=""
	done
	sort -n "$W"/t.[1-5] | sed -n 3p | sed "s/^/$name /" >>"$W/results"
	echo "  $name: $(cut -d' ' -f1 "$W"/t.[1-5] | tr '\n' ' ')s"
}

if [ ! -d "$W/snap-repo" ]; then
	"$snapctl" -r "$W/snap-repo" init -q
	"$snapctl" -r "$W/snap-repo" backup -q --label bench \
		g1="$C/p1" g2="$C/p2" zk="$C/zk"
	restic init -q --repo "$W/restic-repo" >/dev/null
	(cd "$C" && restic -q --repo "$W/restic-repo" backup p1 p2 zk)
	tar -C "$C" --sparse -cf "$W/corpus.tar" p1 p2 zk
fi

echo "restoring (five runs each, median)"
measure snap "$W/out" "$snapctl" -r "$W/snap-repo" restore bench -q --target "$W/out/t"
measure restic "$W/out" sh -c "cd '$W/out' && restic -q --repo '$W/restic-repo' restore latest --target t"
measure tar "$W/out" tar -C "$W/out" --sparse -xf "$W/corpus.tar"
measure post "$W/out" "$snapctl" -r "$W/snap-repo" restore bench -q --postings "$W/out" --map zk=p3

python3 - "$W/results" "$apparent" <<'PY'
import sys
res = {l.split()[0]: float(l.split()[1]) for l in open(sys.argv[1])}
rss = {l.split()[0]: int(l.split()[2]) for l in open(sys.argv[1])}
mib = int(sys.argv[2]) / 2**20
print()
print("%-34s %8s %9s %9s" % ("restore of %.0f MiB" % mib, "seconds", "MiB/s", "peak RSS"))
for k, label in (("snap", "snapctl restore --target"),
                 ("post", "snapctl restore --postings"),
                 ("restic", "restic restore"), ("tar", "tar -x (uncompressed tarball)")):
    print("%-34s %8.2f %9.0f %7.0f MiB" % (label, res[k], mib / res[k], rss[k] / 1024))
print()
print("snapctl --target vs restic:   %.2fx" % (res["restic"] / res["snap"]))
print("snapctl --postings vs restic: %.2fx" % (res["restic"] / res["post"]))
print("snapctl --target vs tar -x:   %.2fx" % (res["tar"] / res["snap"]))
PY
