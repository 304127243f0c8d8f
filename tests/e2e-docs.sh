#!/bin/sh
# The man pages and --help say the same: every option a --help lists is
# in the man page, and every option the man page describes is in a --help
# (snapctl: the common options and each command's; snapfs: its -o options),
# and mandoc finds nothing to say about the pages.
. "$TESTLIB"

man1="$TOP_SRCDIR/man"
S=$SNAPCTL
# Options described as items (.TP) in the given sections of a man page.
items() {
	awk -v secs="$2" '/^\.SH/{f = index(secs, substr($0, 5)) > 0; next}
		f && prev == ".TP" {print} {prev = $0}' "$1" | sed 's/\\-/-/g'
}

# agree HELP LISTED DESCRIBED PAGE: every option in HELP is LISTED in
# PAGE, and every one PAGE DESCRIBES as an item is in HELP (sorted files).
agree() {
	missing=$(comm -23 "$1" "$2")
	[ -z "$missing" ] || fail "in --help, not in $4:" $missing
	extra=$(comm -13 "$1" "$3")
	[ -z "$extra" ] || fail "described in $4, in no --help:" $extra
}

say "snapctl: --help and snapctl(1) list the same options"
cmds=$("$S" --help | sed -n '/^Commands/,/^Options/p' | awk '/^  [a-z]/{print $1}' | sort -u)
[ -n "$cmds" ] || fail "no commands in snapctl --help"
{
	"$S" --help
	for c in $cmds; do "$S" "$c" --help; done
} | grep -oE -- "--[a-z][a-z0-9-]+" | sort -u >"$T/help"
sed 's/\\-/-/g' "$man1/snapctl.1" | grep -oE -- "--[a-z][a-z0-9-]+" | sort -u >"$T/man"
items "$man1/snapctl.1" "COMMON OPTIONS|COMMANDS" | grep -oE -- "--[a-z][a-z0-9-]+" | sort -u >"$T/items"
agree "$T/help" "$T/man" "$T/items" "snapctl(1)"
echo "   $(wc -l <"$T/help") options, $(echo $cmds | wc -w) commands"

say "snapfs: --help and snapfs(1) list the same -o options"
"$SNAPFS" --help 2>&1 | sed -n '/^snapfs options/,$p' | grep -oE "^  [a-z_]+" | tr -d ' ' | sort -u >"$T/fhelp"
[ -s "$T/fhelp" ] || fail "no -o options in snapfs --help"
items "$man1/snapfs.1" "OPTIONS" | grep -E "^\.BR? [a-z_]|^\.BI [a-z_]" |
	sed -E 's/^\.B[IR]? ([a-z_]+).*/\1/' | sort -u >"$T/fman"
agree "$T/fhelp" "$T/fman" "$T/fman" "snapfs(1) OPTIONS"
echo "   $(wc -l <"$T/fhelp") -o options"
say "the man pages are lint-clean (mandoc -T lint)"
command -v mandoc >/dev/null || fail "mandoc is missing (contrib/install-deps.sh installs it)"
mandoc -T lint -W style "$man1"/*.[15] >"$T/lint" 2>&1 || true
[ ! -s "$T/lint" ] || { cat "$T/lint" >&2; fail "mandoc -T lint"; }
say "docs: all checks passed"
