#!/bin/sh
# The file store's own guarantees: what a killed put leaves behind (hidden
# temporary files that no listing shows) is swept when its series is
# deleted or checked, but a put still running keeps its file; directories a
# put creates are synced into their parents before the object goes in.
. "$TESTLIB"

r="$T/repo"
repo_init "$r" --no-encryption
mkdir -p "$T/src"
head -c $((1 << 20)) /dev/urandom >"$T/src/a"
snapctl -r "$r" backup --label gone -q "$T/src"
snapctl -r "$r" backup --label kept -q "$T/src"
G=$(cd "$r/data" && ls -d gone-*)
K=$(cd "$r/data" && ls -d kept-*)

# leftover DIR NAME [AGE]: a temporary file as a put leaves it, its mtime
# AGE ago (default: now, a put still writing).
leftover() {
	head -c 1000 /dev/urandom >"$1/.snapfs-tmp-$2"
	[ -z "${3:-}" ] || touch -d "$3 ago" "$1/.snapfs-tmp-$2"
}

say "check sweeps what a killed put left, and spares a put still running"
leftover "$r/data/$K" 00000000000000aa "2 hours"
leftover "$r/data/$K" 00000000000000bb
snapctl -r "$r" check -q || fail "check failed"
[ ! -e "$r/data/$K/.snapfs-tmp-00000000000000aa" ] || fail "check left a stale temporary file"
[ -e "$r/data/$K/.snapfs-tmp-00000000000000bb" ] || fail "check removed the file of a put still running"

say "delete leaves nothing of the series, stale temporary files included"
leftover "$r/data/$G" 00000000000000cc "2 hours"
leftover "$r/manifests/$G" 00000000000000dd "61 minutes"
snapctl -r "$r" delete "$G" >/dev/null
[ ! -e "$r/data/$G" ] || fail "delete left data/$G: $(ls -A "$r/data/$G")"
[ ! -e "$r/manifests/$G" ] || fail "delete left manifests/$G: $(ls -A "$r/manifests/$G")"

say "a put still running keeps its file (and its directory) through a delete"
snapctl -r "$r" delete "$K" >/dev/null
[ "$(ls -A "$r/data/$K")" = .snapfs-tmp-00000000000000bb ] ||
	fail "data/$K holds '$(ls -A "$r/data/$K" 2>&1)'"
[ ! -e "$r/manifests/$K" ] || fail "delete left manifests/$K"
snapctl -r "$r" restore kept --target "$T/out" 2>/dev/null && fail "deleted series restored"

if strace -o /dev/null true 2>/dev/null; then
	say "a new directory is synced into its parent before objects go in"
	# LeakSanitizer cannot run under ptrace.
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -ff -e trace=mkdir,openat,fsync,rename,link -o "$T/trace" \
		"$SNAPCTL" -r "$r" backup --label fresh -q "$T/src"
	python3 - "$r" "$T"/trace.* <<'PY'
import os, re, sys
repo, files = sys.argv[1], sys.argv[2:]
made = 0
for f in files:
    lines = open(f).read().splitlines()
    for i, l in enumerate(lines):
        m = re.match(r'mkdir\("([^"]+)", \d+\)\s+= 0', l)
        if not m or not m.group(1).startswith(repo + "/"):
            continue
        made += 1
        d, parent, fd, ok = m.group(1), os.path.dirname(m.group(1)), None, False
        for l2 in lines[i + 1:]:
            o = re.match(r'openat\(AT_FDCWD, "([^"]+)", [^)]*O_DIRECTORY[^)]*\)\s+= (\d+)', l2)
            if o and o.group(1) == parent:
                fd = o.group(2)
            elif fd and re.match(r'fsync\(%s\)\s+= 0' % fd, l2):
                ok = True
                break
            elif re.match(r'(rename|link)\("[^"]+", "%s/' % re.escape(d), l2):
                break
        assert ok, "%s made, %s not synced before objects went in (%s)" % (d, parent, f)
assert made >= 2, "no new directories seen (%d)" % made
print("   %d new directories, each synced into its parent" % made)
PY
else
	echo "   (strace cannot run here: directory syncing not checked)"
fi
say "filestore: all checks passed"
