#!/bin/sh
# A few files of hundreds of MiB (random and compressible), restored
# byte-identical; the engine's peak memory stays bounded.
. "$TESTLIB"

mib=${SNAPFS_LARGE_MIB:-300}
python3 "$TESTS_DIR/mkcorpus.py" "$T/src/big" --small 100 --large-mib "$mib" \
	--large-count 2 >/dev/null
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"
export SNAPFS_KEY_FILE="$T/key"
r="$T/repo"
snapctl -r "$r" init >/dev/null

say "backup of $((2 * mib)) MiB in large files"
/usr/bin/time -f "%M" -o "$T/rss" "$SNAPCTL" -r "$r" backup --label large "$T/src/big"
rss=$(cat "$T/rss")
echo "   peak RSS ${rss} KiB"
# Sanitizer shadow memory inflates RSS: the bound holds for real builds.
[ -n "${SNAPFS_SANITIZED:-}" ] || [ "$rss" -lt 262144 ] ||
	fail "backup peak RSS ${rss} KiB exceeds 256 MiB"

say "restore and compare"
/usr/bin/time -f "%M" -o "$T/rss" "$SNAPCTL" -r "$r" restore large --target "$T/out"
echo "   peak RSS $(cat "$T/rss") KiB"
same_tree "$T/src/big" "$T/out/big"
echo "e2e-large: all good"
