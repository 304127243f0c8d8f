#!/bin/sh
# snapctl mirror against rclone copy, the tool operators would use to copy
# a repository to a bucket: the same local repository (a backup of
# SIZE_MIB of incompressible files plus a second, incremental backup)
# into a Ceph RADOS Gateway started here, each into a fresh prefix, then
# each again with nothing to copy.  Prints the wall times and rclone/snapfs
# ratios (above 1: snapfs is faster).  rclone copies objects in no order;
# snapctl mirror also orders manifests after their packs and reads back
# every size, which is the point of the comparison.  (AWS_CA_BUNDLE, set
# on some hosts for a proxy, makes rclone fail on a plain-HTTP endpoint:
# it is unset for rclone.)
#
# usage: contrib/bench/bench-mirror.sh [WORKDIR]
#   needs: rclone (contrib/install-deps.sh --bench), a built tree (SNAPCTL
#   overrides the path).  SIZE_MIB (default 1024), PARALLEL (8, both
#   tools).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
snapctl=${SNAPCTL:-$top/snapctl}
par=${PARALLEL:-8}
size=${SIZE_MIB:-1024}
W=${1:-$(mktemp -d /tmp/snapfs-bench-mirror.XXXXXX)}
mkdir -p "$W"
command -v rclone >/dev/null || { echo "bench: needs rclone"; exit 1; }
. "$top/tests/servers/common.sh"
rm -rf "$W/rgw" "$W/repo" "$W/src"
RGW_MEMSTORE_BYTES=$(((size * 3 + 2048) << 20)) \
	sh "$top/tests/servers/rgw.sh" start "$W/rgw" >"$W/rgw.info"
trap 'sh "$top/tests/servers/rgw.sh" stop "$W/rgw"' EXIT INT TERM
set -- $(cat "$W/rgw.info")
export AWS_ACCESS_KEY_ID=$2 AWS_SECRET_ACCESS_KEY=$3
port=$1
export RCLONE_CONFIG_GW_TYPE=s3 RCLONE_CONFIG_GW_PROVIDER=Ceph \
	RCLONE_CONFIG_GW_ENDPOINT="http://127.0.0.1:$port" \
	RCLONE_CONFIG_GW_ACCESS_KEY_ID="$2" RCLONE_CONFIG_GW_SECRET_ACCESS_KEY="$3"

mkdir -p "$W/src"
for i in $(seq 1 $((size / 32))); do
	head -c $((32 << 20)) /dev/urandom >"$W/src/f$i"
done
"$snapctl" -r "$W/repo" init -q --no-encryption
"$snapctl" -r "$W/repo" backup -q --label bench "$W/src"
head -c $((16 << 20)) /dev/urandom >"$W/src/extra"
"$snapctl" -r "$W/repo" backup -q --label bench "$W/src"
"$snapctl" -r "s3://127.0.0.1:$port/bench/scratch?secure=false" init -q \
	--create-bucket --no-encryption
mib=$(du -sm "$W/repo" | cut -f1)
echo "repository: $mib MiB in $(find "$W/repo" -type f | wc -l) objects;" \
	"gateway on 127.0.0.1:$port; $par transfers each"

t() { python3 -c 'import subprocess,sys,time; t=time.time(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); print("%.2f" % (time.time()-t))' "$@"; }
s1=$(t "$snapctl" mirror --parallel "$par" "$W/repo" "s3://127.0.0.1:$port/bench/snap?secure=false")
r1=$(t env -u AWS_CA_BUNDLE rclone copy --transfers "$par" "$W/repo" gw:bench/rclone)
s2=$(t "$snapctl" mirror --parallel "$par" "$W/repo" "s3://127.0.0.1:$port/bench/snap?secure=false")
r2=$(t env -u AWS_CA_BUNDLE rclone copy --transfers "$par" "$W/repo" gw:bench/rclone)
python3 - "$mib" "$s1" "$r1" "$s2" "$r2" <<'PY'
import sys
mib, s1, r1, s2, r2 = map(float, sys.argv[1:])
print("first copy:   snapctl mirror %6.2f s (%5.0f MiB/s)   rclone copy %6.2f s (%5.0f MiB/s)   ratio %.2f"
      % (s1, mib / s1, r1, mib / r1, r1 / s1))
print("nothing new:  snapctl mirror %6.2f s                 rclone copy %6.2f s                 ratio %.2f"
      % (s2, r2, r2 / s2))
PY
