#!/bin/sh
# bash completion (contrib/completion/snapctl): commands as --help lists
# them, a command's options and the common ones, option values, and the
# labels and series ids of the repository the line names.
. "$TESTLIB"

command -v bash >/dev/null || { echo "no bash: skipped"; exit 77; }
comp="$TOP_SRCDIR/contrib/completion/snapctl"
bash -n "$comp" || fail "the completion script does not parse"
PATH="$(dirname "$SNAPCTL"):$PATH"
export PATH
# c WORD...: what completing the last word offers.
c() {
	bash -c '. "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _snapctl
		printf "%s\n" "${COMPREPLY[@]}"' "$comp" "$@" | sort | tr '\n' ' ' | sed 's/ $//'
}
want() { [ "$1" = "$2" ] || fail "completing '$3': got '$1', want '$2'"; }

snapctl -r "$T/repo" init --no-encryption -q
mkdir -p "$T/d"
echo x >"$T/d/f"
snapctl -r "$T/repo" backup -q --label zk1 "$T/d"
snapctl -r "$T/repo" backup -q --label alpha1 "$T/d"
S=$(snapctl -r "$T/repo" list --json | python3 -c 'import json,sys; print(" ".join(sorted(b["series"] for b in json.load(sys.stdin))))')

say "commands, and options"
cmds=$(snapctl --help | sed -n '/^Commands/,/^Options/s/^  \([a-z][a-z]*\).*/\1/p' | sort | tr '\n' ' ' | sed 's/ $//')
want "$(c snapctl "")" "$cmds" "snapctl "
want "$(c snapctl backup --l)" "--label --limit-download --limit-upload" "snapctl backup --l"
want "$(c snapctl restore --z)" "--zk-address --zookeeper" "snapctl restore --z"
want "$(c snapctl --key-format "")" "auto base64 raw" "--key-format "

say "labels and series ids of the repository on the line, or of SNAPFS_REPOSITORY"
all=$(printf '%s\n' alpha1 zk1 $S | sort | tr '\n' ' ' | sed 's/ $//')
want "$(c snapctl -r "$T/repo" show "")" "$all" "snapctl -r REPO show "
want "$(c snapctl -r "$T/repo" backup --label "")" "alpha1 zk1" "backup --label "
want "$(SNAPFS_REPOSITORY="$T/repo" c snapctl restore z)" "$(printf '%s\n' zk1 $S | grep '^z' | sort | tr '\n' ' ' | sed 's/ $//')" "restore z"
want "$(c snapctl -r "$T/nothere" show "")" "" "show on a missing repository"
say "completion: all checks passed"
