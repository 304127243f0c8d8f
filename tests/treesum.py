#!/usr/bin/env python3
"""Prints one line per entry of a tree: everything snapfs promises to keep.

usage: treesum.py DIR [--no-owner]

Path (escaped), type and mode, owner, size, mtime in ns, link target,
device number, xattrs, content SHA-256, allocated blocks class (sparse or
not), and hardlink group (the first path of the group), sorted by path.
Two trees hold the same backup-relevant state exactly when their outputs
are equal.  Sockets are left out: snapfs skips them by design.
"""
import hashlib, os, stat, sys

def main():
    root = sys.argv[1]
    owner = "--no-owner" not in sys.argv
    rows, inodes = [], {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISSOCK(st.st_mode):
                continue
            fields = [repr(rel), "%o" % st.st_mode]
            if owner:
                fields.append("%d:%d" % (st.st_uid, st.st_gid))
            if not stat.S_ISDIR(st.st_mode):
                fields.append("mtime=%d" % st.st_mtime_ns)
            if stat.S_ISLNK(st.st_mode):
                fields.append("-> " + repr(os.readlink(p)))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                fields.append("rdev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for b in iter(lambda: f.read(1 << 20), b""):
                        h.update(b)
                fields.append("size=%d" % st.st_size)
                fields.append(h.hexdigest()[:16])
                # Sparse files must stay sparse: compare allocation coarsely.
                alloc = st.st_blocks * 512
                fields.append("sparse" if alloc + (1 << 20) < st.st_size else "dense")
                if st.st_nlink > 1:
                    key = (st.st_dev, st.st_ino)
                    inodes.setdefault(key, rel)
                    fields.append("link=" + repr(inodes[key]))
            if not stat.S_ISLNK(st.st_mode):
                try:
                    xs = sorted(os.listxattr(p))
                    fields += ["x:%s=%s" % (x, os.getxattr(p, x).hex()) for x in xs]
                except OSError:
                    pass
            rows.append(" ".join(fields))
    # Directory mtimes are checked separately (the walk itself is fine,
    # but they are listed here too for exactness).
    for dirpath, dirnames, _ in os.walk(root):
        for n in dirnames:
            p = os.path.join(dirpath, n)
            rows.append("D %r mtime=%d" % (os.path.relpath(p, root), os.lstat(p).st_mtime_ns))
    for r in sorted(rows):
        print(r)

main()
