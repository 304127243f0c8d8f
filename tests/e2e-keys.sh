#!/bin/sh
# Keys from where keys live: a key file raw or base64 (detected; where both
# readings are valid, said with --key-format for a new repository and told
# apart by an existing one's key check), a command's output
# (--key-command, --password-command, their SNAPFS_* variables, the
# mount's -o key_command=), a warning for a key file others can read, and
# clear errors for a failing or silent command.
. "$TESTLIB"

STORE=file
unset SNAPFS_KEY_FILE SNAPFS_PASSWORD_FILE SNAPFS_KEY_COMMAND \
	SNAPFS_PASSWORD_COMMAND SNAPFS_KEY_FORMAT
mkdir -p "$T/src"
echo hello >"$T/src/f"
head -c 32 /dev/urandom >"$T/raw"
chmod 600 "$T/raw"
base64 -w0 "$T/raw" >"$T/b64"
chmod 600 "$T/b64"
r="$T/repo"

say "a key from a command, then the same key as a file, raw and base64"
snapctl -r "$r" init -q --key-command "cat '$T/raw'"
snapctl -r "$r" backup -q --label keys --key-command "cat '$T/raw'" "$T/src"
snapctl -r "$r" list --encryption-key-file "$T/raw" | grep -q keys || fail "raw key file"
snapctl -r "$r" list --encryption-key-file "$T/b64" | grep -q keys || fail "base64 key file, detected"
SNAPFS_KEY_COMMAND="base64 -d '$T/b64'" snapctl -r "$r" list | grep -q keys || fail "SNAPFS_KEY_COMMAND"
expect_fail 5 "must hold 16, 24 or 32 bytes" snapctl -r "$r" list --key-format raw --encryption-key-file "$T/b64"

say "a key valid both ways is refused until --key-format says which"
printf 'AAAAAAAAAAAAAAAAAAAAAA==' >"$T/both"
chmod 600 "$T/both"
r2="$T/repo2"
expect_fail 5 "also base64 of 16.*--key-format" snapctl -r "$r2" init -q --encryption-key-file "$T/both"
snapctl -r "$r2" init -q --key-format raw --encryption-key-file "$T/both"
SNAPFS_KEY_FORMAT=raw snapctl -r "$r2" list --encryption-key-file "$T/both" >/dev/null || fail "SNAPFS_KEY_FORMAT=raw"
# An existing repository's key check tells the readings apart: a text key
# file that opened it before base64 was read still does.
snapctl -r "$r2" list --encryption-key-file "$T/both" >/dev/null || fail "auto on an existing repository"
openssl rand -hex 16 >"$T/hex"
chmod 600 "$T/hex"
snapctl -r "$T/repo4" init -q --key-format raw --encryption-key-file "$T/hex"
snapctl -r "$T/repo4" list --encryption-key-file "$T/hex" >/dev/null || fail "a hex text key file, auto"
expect_fail 5 "wrong encryption key" snapctl -r "$r2" list --key-format base64 --encryption-key-file "$T/both"

say "a key file others can read: a warning"
chmod 644 "$T/raw"
snapctl -r "$r" list --encryption-key-file "$T/raw" >/dev/null 2>"$T/err" || fail "a world-readable key file"
grep -q "warning: key file $T/raw can be read by its group and others (mode 0644)" "$T/err" || { cat "$T/err"; fail "no warning"; }
chmod 604 "$T/raw"
snapctl -r "$r" list --encryption-key-file "$T/raw" >/dev/null 2>"$T/err"
grep -q "can be read by others (mode 0604)" "$T/err" || fail "no warning for others"
chmod 600 "$T/raw"
snapctl -r "$r" list --encryption-key-file "$T/raw" >/dev/null 2>"$T/err"
[ ! -s "$T/err" ] || fail "a warning for a private key file: $(cat "$T/err")"

say "a command that fails or prints nothing, and two sources: clear errors"
expect_fail 5 "key command 'exit 3' failed \(exit status 3\)" snapctl -r "$r" list --key-command "exit 3"
expect_fail 5 "key command 'true' printed nothing" snapctl -r "$r" list --key-command true
expect_fail 5 "key command 'head -c 31 /dev/zero': must hold" snapctl -r "$r" list --key-command "head -c 31 /dev/zero"
expect_fail 2 "not both" snapctl -r "$r" list --key-command "cat '$T/raw'" --encryption-key-file "$T/raw"
# The command's stdin is not the terminal's or ours.
snapctl -r "$r" list --key-command "cat - >/dev/null; cat '$T/raw'" </dev/zero >/dev/null ||
	fail "a key command that reads its stdin"

say "a passphrase from a command"
r3="$T/repo3"
snapctl -r "$r3" init -q --password-command "echo 'correct horse'"
snapctl -r "$r3" backup -q --label pwd --password-command "printf 'correct horse\n'" "$T/src"
echo "correct horse" >"$T/pw"
chmod 600 "$T/pw"
SNAPFS_PASSWORD_FILE="$T/pw" snapctl -r "$r3" list | grep -q pwd || fail "the passphrase as a file"
expect_fail 5 "wrong passphrase" snapctl -r "$r3" list --password-command "echo staple"

say "the mount takes -o key_command= and key_format="
if [ "$(id -u)" = 0 ] && [ -x "${SNAPFS:-}" ]; then
	m="$T/m"
	mount_repo "$r" "$m" -o "key_command=base64 -d $T/b64"
	S=$(ls "$m/series")
	[ "$(cat "$m/series/$S/1/src/f")" = hello ] || fail "a file through a mount keyed by a command"
	unmount_repo "$m" "$MOUNT_PID"
	mount_repo "$r2" "$m" -o "key_file=$T/both,key_format=raw"
	unmount_repo "$m" "$MOUNT_PID"
else
	echo "   (needs root and FUSE: skipped)"
fi
say "keys: all checks passed"
