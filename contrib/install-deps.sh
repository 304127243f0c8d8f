#!/bin/sh
# Installs everything snapfs needs to build and to run its test suite on
# Debian 12: compilers and libraries, the real servers the tests start
# (Ceph RADOS Gateway for S3, Azurite for Azure Blob), and the tools the
# tests drive.  Idempotent: what is present is left alone, so CI can call
# it on every run at the cost of a few queries.
#
#   contrib/install-deps.sh          build + test dependencies
#   contrib/install-deps.sh --bench  also the peers the benchmarks compare with
set -eu

BUILD="build-essential autoconf automake libtool pkg-config
 libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev libarchive-dev
 liblz4-dev libjansson-dev libexpat1-dev libsqlite3-dev libcmocka-dev clang"
TEST="rsync attr acl xz-utils zstd valgrind python3 util-linux e2fsprogs
 ca-certificates curl openssl time radosgw ceph-mon ceph-osd nodejs
 libzookeeper-java libslf4j-java openjdk-17-jre-headless mandoc
 prometheus-node-exporter debhelper lintian"
BENCH="restic rclone"
AZURITE_DIR=/opt/snapfs-test
AZURITE_VERSION=3.35.0

want="$BUILD $TEST"
case "${1:-}" in
--bench) want="$want $BENCH" ;;
"") ;;
*) echo "usage: $0 [--bench]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# Debian's nodejs comes without npm; nodesource's includes it.
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: need root to install:$missing" >&2
		exit 1
	fi
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Azurite, pinned (3.36+ needs Node 21+), from the npm registry.
have=$(cat "$AZURITE_DIR/node_modules/azurite/package.json" 2>/dev/null |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null || true)
if [ "$have" != "$AZURITE_VERSION" ]; then
	echo "install-deps: installing azurite@$AZURITE_VERSION into $AZURITE_DIR"
	mkdir -p "$AZURITE_DIR"
	npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" \
		"azurite@$AZURITE_VERSION" >/dev/null
fi
echo "install-deps: all dependencies present"
