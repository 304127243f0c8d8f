#!/bin/sh
# The main job on the embedded default (a local directory repository, no
# servers): init an encrypted repository, back up a sample tree, change it,
# back up again, list, restore both backups and compare them with what was
# backed up, then mount the repository and browse it.  Prints each step.
# Uses ./snapctl and ./snapfs from the build tree.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
snapctl=${SNAPCTL:-$top/snapctl}
work=${SNAPFS_DEMO_DIR:-$(mktemp -d /tmp/snapfs-demo.XXXXXX)}
mkdir -p "$work"
run() { printf '\n$ %s\n' "$*"; "$@"; }

echo "snapfs demo in $work"
cp -a /usr/share/doc "$work/sample" 2>/dev/null || true
python3 "$top/tests/mkcorpus.py" "$work/sample/generated" --small 2000 >/dev/null
head -c 32 /dev/urandom >"$work/key"; chmod 600 "$work/key"
export SNAPFS_REPOSITORY="$work/repo" SNAPFS_KEY_FILE="$work/key"

run "$snapctl" init
run "$snapctl" backup --label demo "$work/sample"
cp -a "$work/sample" "$work/sample-at-1"
echo "a change after backup 1" >>"$work/sample/generated/names/with space"
run "$snapctl" backup --label demo "$work/sample"
run "$snapctl" list
run "$snapctl" show demo
run "$snapctl" restore demo/1 --target "$work/restore-1"
run "$snapctl" restore demo --target "$work/restore-2"
run "$snapctl" check --read-data
printf '\n$ compare backups with their sources\n'
python3 "$top/tests/treesum.py" "$work/sample-at-1" >"$work/a"
python3 "$top/tests/treesum.py" "$work/restore-1/sample" >"$work/b"
cmp -s "$work/a" "$work/b" && echo "backup 1: identical (content and metadata)"
python3 "$top/tests/treesum.py" "$work/sample" >"$work/a"
python3 "$top/tests/treesum.py" "$work/restore-2/sample" >"$work/b"
cmp -s "$work/a" "$work/b" && echo "backup 2: identical (content and metadata)"
snapfs=${SNAPFS:-$top/snapfs}
if [ -x "$snapfs" ] && [ -c /dev/fuse ]; then
	mkdir -p "$work/mnt"
	run "$snapfs" "$work/repo" "$work/mnt"
	run ls "$work/mnt/series" "$work/mnt/labels"
	run ls -l "$work/mnt/labels/demo/"
	python3 "$top/tests/treesum.py" "$work/sample-at-1" >"$work/a"
	python3 "$top/tests/treesum.py" "$work/mnt/labels/demo/1/sample" >"$work/b"
	cmp -s "$work/a" "$work/b" && echo "backup 1 through the mount: identical (content and metadata)"
	run fusermount3 -u "$work/mnt"
fi
echo "repository size: $(du -sh "$work/repo" | cut -f1) for $(du -sh --apparent-size "$work/sample" | cut -f1) of data"
echo "demo files are in $work"
