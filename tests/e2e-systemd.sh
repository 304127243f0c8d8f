#!/bin/sh
# The shipped systemd units and the fstab line of snapfs(1): systemd-analyze
# verify finds nothing to say about them (systemd is not PID 1 here, so
# they are verified, not started), and the backup unit's command line, as
# systemd expands it from an environment file, makes a backup.
. "$TESTLIB"

command -v systemd-analyze >/dev/null || { echo "no systemd-analyze: skipped"; exit 77; }
src="$TOP_SRCDIR/contrib/systemd"
u="$T/units"
mkdir -p "$u" "$T/man/man1" "$T/man/man5"
cp "$TOP_SRCDIR/man/snapctl.1" "$TOP_SRCDIR/man/snapfs.1" "$T/man/man1/"
sed "s|@bindir@|$(dirname "$SNAPCTL")|g" "$src/snapctl-backup@.service.in" >"$u/snapctl-backup@.service"
cp "$src/snapctl-backup@.timer" "$u/"
ln -s snapctl-backup@.service "$u/snapctl-backup@zk1.service"
ln -s snapctl-backup@.timer "$u/snapctl-backup@zk1.timer"

say "systemd-analyze verify: the backup service and its timer"
(cd "$u" && MANPATH="$T/man" systemd-analyze verify snapctl-backup@zk1.service \
	snapctl-backup@zk1.timer) >"$T/verify" 2>&1 || { cat "$T/verify"; fail "verify failed"; }
[ ! -s "$T/verify" ] || { cat "$T/verify"; fail "verify has something to say"; }

say "the service's command line, expanded from an environment file, makes a backup"
mkdir -p "$T/a" "$T/b"
echo one >"$T/a/f"
echo two >"$T/b/g"
head -c 32 /dev/urandom >"$T/key"
chmod 600 "$T/key"
snapctl -r "$T/repo" init -q --encryption-key-file "$T/key"
cat >"$T/zk1.env" <<EOF
# as in contrib/systemd/example.env
SNAPFS_REPOSITORY=$T/repo
SNAPFS_KEY_FILE=$T/key
SNAPFS_LABEL=zk1
SNAPFS_PATHS=$T/a $T/b
SNAPFS_BACKUP_OPTS=--parallel 2
EOF
# systemd's rules: ${VAR} is one word, $VAR splits on whitespace.
python3 - "$u/snapctl-backup@zk1.service" "$T/zk1.env" >"$T/cmd" <<'EOF'
import re, shlex, sys
env = {}
for line in open(sys.argv[2]):
    line = line.strip()
    if line and not line.startswith("#"):
        k, v = line.split("=", 1)
        env[k] = v
exec_line = next(l for l in open(sys.argv[1]) if l.startswith("ExecStart="))
words = []
for w in exec_line.split("=", 1)[1].split():
    m = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", w)
    if m and m.group(1):
        words.append(env.get(m.group(1), ""))
    elif m:
        words.extend(env.get(m.group(2), "").split())
    else:
        words.append(w)
print(" ".join(shlex.quote(w) for w in words))
EOF
env -i PATH="$PATH" $(grep -v '^#' "$T/zk1.env" | grep -E '^SNAPFS_(REPOSITORY|KEY_FILE)=' | tr '\n' ' ') \
	sh -c "$(cat "$T/cmd")" || fail "the unit's command: $(cat "$T/cmd")"
SNAPFS_KEY_FILE="$T/key" snapctl -r "$T/repo" show zk1 --json >"$T/show"
grep -q '"a"' "$T/show" && grep -q '"b"' "$T/show" || { cat "$T/show"; fail "groups a and b not in the backup"; }

say "the fstab line of snapfs(1), with x-systemd.automount"
line=$(MANWIDTH=300 man -l "$TOP_SRCDIR/man/snapfs.1" 2>/dev/null | grep -E "^ +/[^ ]+ +/[^ ]+ +fuse\.snapfs " | head -n 1)
[ -n "$line" ] || fail "no fstab line in snapfs(1)"
echo "$line" | grep -q "x-systemd.automount" || fail "the fstab line has no x-systemd.automount: $line"
echo "$line" >"$T/fstab"
gen=/usr/lib/systemd/system-generators/systemd-fstab-generator
[ -x "$gen" ] || gen=/lib/systemd/system-generators/systemd-fstab-generator
mkdir -p "$T/gen"
SYSTEMD_FSTAB="$T/fstab" "$gen" "$T/gen" "$T/gen" "$T/gen" || fail "the fstab generator"
mnt=$(ls "$T/gen" | grep '\.mount$' | head -n 1)
auto=$(ls "$T/gen" | grep '\.automount$' | head -n 1)
[ -n "$mnt" ] && [ -n "$auto" ] || fail "the generator made no mount and automount units"
grep -q "^Type=fuse.snapfs" "$T/gen/$mnt" || fail "$mnt is not fuse.snapfs"
(cd "$T/gen" && systemd-analyze verify "$mnt" "$auto") >"$T/verify" 2>&1 ||
	{ cat "$T/verify"; fail "verify of the generated units"; }
[ ! -s "$T/verify" ] || { cat "$T/verify"; fail "verify has something to say about $mnt"; }
say "systemd: all checks passed"
