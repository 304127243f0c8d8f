#!/bin/sh
# The whole test suite, as CI runs it: installs dependencies, runs
# autoreconf (a warning fails the run), builds with gcc and clang at
# -Wall -Wextra -Werror, runs `make check` (unit tests and
# end-to-end tests; those against S3 and Azure servers only in the next
# build), the whole suite under AddressSanitizer and
# UndefinedBehaviorSanitizer, the unit tests under valgrind, and
# `make distcheck`.  Ends with one "N passed, N failed" line.
#
# The builds are VPATH builds in _build/<variant>.  A tree configured in
# place, as the README's first command leaves it (./configure && make),
# cannot be their source: automake refuses it ("source directory already
# configured"), and make would find the in-place objects through VPATH and
# link them into the wrong build.  The builds then use a copy, in
# _build/src, of what git tracks plus the new files it does not ignore
# (what a fresh clone holds once they are committed), and the in-place
# build is left as it is.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/contrib/install-deps.sh"
jobs=$(nproc)

passed=0 failed=0 skipped=0
tally() { # tally LOGDIR: add automake's counts from test-suite.log
	log="$1/test-suite.log"
	[ -f "$log" ] || return 0
	p=$(sed -n 's/^# PASS: *//p' "$log")
	f=$(sed -n 's/^# FAIL: *//p' "$log")
	e=$(sed -n 's/^# ERROR: *//p' "$log")
	s=$(sed -n 's/^# SKIP: *//p' "$log")
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0}))
	skipped=$((skipped + ${s:-0}))
}
status=0
step() { printf '\n=== %s\n' "$*"; }

mkdir -p _build
src=$top
if [ -f config.status ]; then
	step "sources: configured in place, so the builds use a copy in _build/src"
	if [ ! -e .git ]; then
		echo "not a git checkout, so sources cannot be told from build" \
			"products: run 'make distclean' here first" >&2
		exit 1
	fi
	rm -rf _build/src && mkdir -p _build/src
	git ls-files -z -c -o --exclude-standard |
		tar -cf - --null -T - --ignore-failed-read | tar -xf - -C _build/src
	src=$top/_build/src
	# What .gitignore lets through is copied: no build product may be.
	left=$(cd "$src" && find . \( -name config.status -o -name Makefile -o \
		-name '*.o' -o -name '*.lo' -o -name .deps \) -print | head -n 5)
	if [ -z "$left" ]; then
		passed=$((passed + 1))
	else
		echo "FAIL: .gitignore lets the in-place build into the copy:" $left
		failed=$((failed + 1))
		status=1
	fi
fi

step "autoreconf (a warning fails the run)"
ok=yes
(cd "$src" && autoreconf -fi) >_build/autoreconf.log 2>&1 || ok=no
cat _build/autoreconf.log
grep -qi 'warning' _build/autoreconf.log && ok=no
if [ "$ok" = yes ]; then
	passed=$((passed + 1))
else
	echo "FAIL: autoreconf failed or warned (above)"
	failed=$((failed + 1))
	status=1
fi

step "configure names no placeholder address"
# RFC 2606 names (example.*, *.invalid) send reports nowhere.
if "$src/configure" --help | grep -i '^report bugs' |
	grep -Eq '(^|[./@])(example|invalid|test)([./>]|$)'; then
	"$src/configure" --help | grep -i '^report bugs'
	failed=$((failed + 1))
	status=1
else
	passed=$((passed + 1))
fi

step ".gitignore: build products ignored, sources never"
# ignored PATH: git would ignore PATH (tracked or not, present or not).
ignored() { git -C "$top" check-ignore -q --no-index "$1"; }
gitignore_ok() {
	ok=yes
	for p in snapctl snapfs contrib/bench/storebench tests/unit; do
		ignored "$p" || { echo "not ignored: $p"; ok=no; }
	done
	# Unanchored names would hide a source named like a program.
	for p in src/snapctl src/snapctl.c fuse/snapfs contrib/completion/snapctl; do
		! ignored "$p" || { echo "ignored: $p"; ok=no; }
	done
	bad=$(git -C "$top" ls-files -ci --exclude-standard)
	[ -z "$bad" ] || { echo "tracked but ignored: $bad"; ok=no; }
	[ "$ok" = yes ]
}
if [ ! -e "$top/.git" ]; then
	echo "not a git checkout: skipped"
	skipped=$((skipped + 1))
elif gitignore_ok; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	status=1
fi

step "clang build, warnings are errors"
rm -rf _build/clang && mkdir -p _build/clang
if (cd _build/clang && "$src/configure" -q CC=clang CFLAGS="-O2 -g -Werror" &&
	make -s -j"$jobs" all && make -s -j"$jobs" tests/unit tests/mkhostile); then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	status=1
fi

step "gcc build and make check (the suites that need no server)"
# The remote-store suites (RGW, Azurite) run once, in the sanitizer
# build below, which checks their memory as well: twice cost 11 of the
# 40 minutes CI may take.
rm -rf _build/gcc && mkdir -p _build/gcc
if (cd _build/gcc && "$src/configure" -q CFLAGS="-O2 -g -Werror" &&
	make -s -j"$jobs" && make -s check TESTS='$(OFFLINE_TESTS)'); then :; else status=1; fi
tally _build/gcc
[ -f _build/gcc/test-suite.log ] && grep -E '^(FAIL|ERROR):' _build/gcc/test-suite.log || true

step "AddressSanitizer + UndefinedBehaviorSanitizer"
rm -rf _build/asan && mkdir -p _build/asan
if (cd _build/asan && "$src/configure" -q --enable-sanitizers CC=gcc CFLAGS="-O1 -g" &&
	make -s -j"$jobs" &&
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		SNAPFS_SANITIZED=1 SNAPFS_LARGE_MIB=64 make -s check); then :; else status=1; fi
tally _build/asan

step "valgrind on the unit tests and a backup/restore round trip"
# unit-stage forks children that die holding a stage (a crash, on
# purpose): their leaks are not ours to count.
if (cd _build/gcc && valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite ./tests/unit >/dev/null &&
	valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --child-silent-after-fork=yes \
	./tests/unit-stage >/dev/null &&
	SNAPFS_VALGRIND=1 SNAPCTL="$PWD/snapctl" MKHOSTILE="$PWD/tests/mkhostile" \
		TESTLIB="$src/tests/lib.sh" TOP_SRCDIR="$src" \
		sh "$src/tests/e2e-errors.sh" >valgrind-e2e.log 2>&1); then
	passed=$((passed + 2))
else
	failed=$((failed + 1))
	status=1
	tail -n 30 _build/gcc/valgrind-e2e.log 2>/dev/null || true
fi

step "make distcheck"
# The tarball must build and pass the offline suite; the remote-store
# suites already ran above against the same sources.
if (cd _build/gcc && make -s distcheck \
	TESTS="tests/unit tests/e2e-basic.sh tests/e2e-errors.sh" >distcheck.log 2>&1); then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	status=1
	tail -n 30 _build/gcc/distcheck.log
fi

printf '\n%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
[ "$failed" = 0 ] || status=1
exit $status
