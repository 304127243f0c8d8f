#!/bin/sh
# Installs everything snapfs needs to build and to run its test suite on
# Debian 12.  Idempotent: packages already present are left alone, so CI can
# call it on every run at the cost of one dpkg query.
#
#   contrib/install-deps.sh          build + test dependencies
#   contrib/install-deps.sh --bench  also the peers the benchmarks compare with
set -eu

BUILD="build-essential autoconf automake libtool pkg-config
 libfuse3-dev fuse3 libcurl4-openssl-dev libssl-dev libarchive-dev
 liblz4-dev libjansson-dev libexpat1-dev libcmocka-dev clang"
TEST="rsync attr xz-utils zstd valgrind python3 util-linux e2fsprogs
 ca-certificates curl time"
BENCH="restic"

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
echo "install-deps: all dependencies present"
