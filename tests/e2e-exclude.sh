#!/bin/sh
# Excludes as restic has them: --exclude (anywhere, anchored, **),
# --exclude-file, --exclude-caches, --exclude-if-present NAME[:HEADER],
# --one-file-system; what a restore gives back is exactly the source less
# what was excluded, and the manifest records the rules.
. "$TESTLIB"

repo=$(repo_url excl)
repo_init "$repo" --no-encryption
S="$T/src"
mkdir -p "$S/app/node_modules/left-pad" "$S/app/src/node_modules" "$S/build/obj" \
	"$S/var/cache/apt" "$S/home/u/.cache/pip" "$S/home/u/fake-cache" \
	"$S/home/u/tmpdir" "$S/home/u/hdr-ok" "$S/home/u/hdr-bad" "$S/logs/2026/12" \
	"$S/mnt"
echo keep >"$S/app/main.c"
echo gone >"$S/app/main.o"
echo gone >"$S/app/node_modules/left-pad/index.js"
echo gone >"$S/app/src/node_modules/x.js"
echo keep >"$S/app/src/util.c"
echo gone >"$S/build/obj/a.o"
echo keep >"$S/build/Makefile"
echo gone >"$S/var/cache/apt/pkg.deb"
echo keep >"$S/var/version"
printf 'Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n' >"$S/home/u/.cache/CACHEDIR.TAG"
echo gone >"$S/home/u/.cache/pip/wheel"
# A tag without the signature is no cache tag.
echo "Signature: not the right one" >"$S/home/u/fake-cache/CACHEDIR.TAG"
echo keep >"$S/home/u/fake-cache/data"
echo >"$S/home/u/tmpdir/.nobackup"
echo gone >"$S/home/u/tmpdir/scratch"
echo "snapfs: skip me" >"$S/home/u/hdr-ok/.skip"
echo gone >"$S/home/u/hdr-ok/f"
echo "something else" >"$S/home/u/hdr-bad/.skip"
echo keep >"$S/home/u/hdr-bad/f"
# A FIFO of a tag's name is no tag (and is never opened).
mkdir -p "$S/home/u/fifo-tag"
mkfifo "$S/home/u/fifo-tag/.nobackup"
echo keep >"$S/home/u/fifo-tag/f"
echo gone >"$S/logs/2026/12/app.log"
echo keep >"$S/logs/2026/12/app.txt"
# "**" also stands for no component: logs/top.log matches logs/**/*.log.
echo gone >"$S/logs/top.log"
ln -s main.o "$S/app/link-to-excluded"
cat >"$T/exclude-list" <<'LIST'
# build products
  *.o  

/**/build/obj
LIST

fs=""
if mount -t tmpfs -o size=1m snapfs-test "$S/mnt" 2>/dev/null; then
	on_exit "umount '$S/mnt'"
	echo gone >"$S/mnt/other-fs"
	fs=1
else
	echo "   (cannot mount a tmpfs here: --one-file-system checked without a mount point)"
fi

# What the restore must hold: the source less every exclusion.
cp -a "$S" "$T/want"
[ -n "$fs" ] && rm -f "$T/want/mnt/other-fs"
rm -rf "$T/want/app/main.o" "$T/want/app/node_modules" "$T/want/app/src/node_modules" \
	"$T/want/build/obj" "$T/want/var/cache" "$T/want/home/u/.cache" \
	"$T/want/home/u/tmpdir" "$T/want/home/u/hdr-ok" "$T/want/logs/2026/12/app.log" \
	"$T/want/logs/top.log"
# Removing entries changed the copies' directory times: the source's back.
python3 - "$S" "$T/want" <<'PY'
import os, sys
src, want = sys.argv[1:]
for d, _, _ in os.walk(want):
    st = os.lstat(os.path.join(src, os.path.relpath(d, want)))
    os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))
PY

say "patterns, an exclude file, cache tags, marker files, one filesystem"
snapctl -r "$repo" backup --label excl -q --exclude node_modules \
	--exclude "$S/var/cache" --exclude 'logs/**/*.log' --exclude-file "$T/exclude-list" \
	--exclude-caches --exclude-if-present .nobackup \
	--exclude-if-present '.skip:snapfs: skip' --one-file-system "$S"
snapctl -r "$repo" restore excl -q --target "$T/r1"
same_tree "$T/want" "$T/r1/src"
[ -d "$T/r1/src/mnt" ] || fail "the mount point itself was not kept"
[ -L "$T/r1/src/app/link-to-excluded" ] || fail "a symlink to an excluded file was dropped"
echo "   restored: $(find "$T/r1/src" -type f | wc -l) files, as expected"

say "the manifest records what was left out"
snapctl -r "$repo" show excl --json >"$T/m.json"
python3 - "$T/m.json" "$S" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
x = m.get("excludes")
assert x, "no excludes in the manifest"
want = ["node_modules", sys.argv[2] + "/var/cache", "logs/**/*.log", "*.o", "/**/build/obj"]
assert x["patterns"] == want, x["patterns"]
assert x["if_present"] == ["CACHEDIR.TAG:Signature: 8a477f597d28d172789f06886806bc55",
                           ".nobackup", ".skip:snapfs: skip"], x["if_present"]
assert x["one_file_system"] is True
PY
snapctl -r "$repo" show excl | grep -q '^excluded:  {"if_present"' || fail "show does not say what was excluded"

say "the next backup without excludes takes everything again, and records none"
snapctl -r "$repo" backup --label excl -q "$S"
snapctl -r "$repo" restore excl -q --target "$T/r2"
same_tree "$S" "$T/r2/src"
snapctl -r "$repo" show excl --json | python3 -c 'import json,sys; assert "excludes" not in json.load(sys.stdin)'

say "bad excludes are usage errors that write nothing"
before=$(repo_bytes "$repo")
expect_fail 2 "exclude pattern '' matches nothing or everything" snapctl -r "$repo" backup --label excl --exclude '' "$S"
expect_fail 2 "exclude pattern '/' matches nothing or everything" snapctl -r "$repo" backup --label excl --exclude / "$S"
expect_fail 2 "exclude file $T/none: No such file" snapctl -r "$repo" backup --label excl --exclude-file "$T/none" "$S"
expect_fail 2 "exclude-if-present 'a/b': want a file name" snapctl -r "$repo" backup --label excl --exclude-if-present a/b "$S"
tar -cf "$T/src.tar" -C "$T" src/app
expect_fail 2 "src.tar is an archive; excludes apply to directories" \
	snapctl -r "$repo" backup --label excl --group src --exclude '*.o' "$T/src.tar"
[ "$(repo_bytes "$repo")" = "$before" ] || fail "a refused backup wrote to the repository"
echo "exclude: all passed"
