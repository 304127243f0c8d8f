#!/usr/bin/env python3
"""Builds a test tree with every kind of entry snapfs must carry.

usage: mkcorpus.py DIR [--small N] [--large-mib M] [--large-count K] [--seed S]

Thousands of small files, a few large ones (random, partly compressible),
sparse files (a ZooKeeper-like 64 MiB preallocated log holding 4 KiB, and a
file with data islands), empty files and directories, names with spaces,
UTF-8 and newlines, symlinks (relative, absolute, dangling), hardlinks,
xattrs, odd modes, a FIFO, and (as root) foreign owners, a setuid file and
character and block devices.
mtimes get nanosecond parts.
"""
import argparse, os, random, stat, sys

def write(path, data):
    with open(path, "wb") as f:
        f.write(data)

def rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--small", type=int, default=3000)
    ap.add_argument("--large-mib", type=int, default=0)
    ap.add_argument("--large-count", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    root = a.dir
    os.makedirs(root, exist_ok=True)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"snap", b"zk", b"posting"]

    # Many small files over a few levels.
    for i in range(a.small):
        d = os.path.join(root, "small", "d%02d" % (i % 37), "e%d" % (i % 5))
        os.makedirs(d, exist_ok=True)
        n = rng.choice([0, 1, 17, 100, 4096, 5000, 30000])
        if i % 3:
            data = b" ".join(rng.choice(words) for _ in range(n // 5 + 1))[:n]
        else:
            data = rand_bytes(rng, n)
        write(os.path.join(d, "f%05d.dat" % i), data)

    # Large files: a random one and a compressible one.
    for k in range(a.large_count if a.large_mib else 0):
        p = os.path.join(root, "large-%d.bin" % k)
        with open(p, "wb") as f:
            for _ in range(a.large_mib):
                if k % 2 == 0:
                    f.write(os.urandom(1 << 20))
                else:
                    f.write(b"".join(b"record %08d %s\n" % (rng.randrange(10**8),
                            rng.choice(words)) for _ in range(40000))[: 1 << 20])

    # Sparse: a ZooKeeper-style preallocated log and data islands.
    zk = os.path.join(root, "zk", "version-2")
    os.makedirs(zk, exist_ok=True)
    with open(os.path.join(zk, "log.100000001"), "wb") as f:
        f.write(rand_bytes(rng, 4096))
        f.truncate(64 << 20)
    write(os.path.join(zk, "snapshot.100000000"), rand_bytes(rng, 20000))
    with open(os.path.join(root, "islands.sparse"), "wb") as f:
        for off in (0, 10 << 20, 30 << 20):
            f.seek(off)
            f.write(rand_bytes(rng, 300000))
        f.truncate(50 << 20)
    with open(os.path.join(root, "all-hole.sparse"), "wb") as f:
        f.truncate(8 << 20)

    # Names.
    odd = os.path.join(root, "names")
    os.makedirs(odd, exist_ok=True)
    for name in ["with space", "tab\there", "new\nline", "ünïcødé-файл-文件",
                 "-leading-dash", ".hidden", "trailing space ", "a" * 255,
                 "quote'\"s", "back\\slash", "*star?"]:
        write(os.path.join(odd, name), name.encode() * 3)
    os.makedirs(os.path.join(odd, "empty dir"), exist_ok=True)
    write(os.path.join(odd, "empty file"), b"")

    # Links.
    ln = os.path.join(root, "links")
    os.makedirs(ln, exist_ok=True)
    write(os.path.join(ln, "target"), b"target data\n")
    os.symlink("target", os.path.join(ln, "rel"))
    os.symlink("/etc/hostname", os.path.join(ln, "abs"))
    os.symlink("does/not/exist", os.path.join(ln, "dangling"))
    os.symlink("../names", os.path.join(ln, "dirlink"))
    os.link(os.path.join(ln, "target"), os.path.join(ln, "hard1"))
    os.link(os.path.join(ln, "target"), os.path.join(root, "small", "hard2"))

    # Modes, xattrs, owners.
    md = os.path.join(root, "modes")
    os.makedirs(md, exist_ok=True)
    for m in (0o600, 0o644, 0o755, 0o700, 0o444, 0o1777, 0o2750):
        p = os.path.join(md, "m%o" % m)
        write(p, b"mode %o\n" % m)
        os.chmod(p, m)
    os.makedirs(os.path.join(md, "ro-dir"), exist_ok=True)
    write(os.path.join(md, "ro-dir", "inside"), b"x")
    os.chmod(os.path.join(md, "ro-dir"), 0o555)
    xa = os.path.join(root, "xattrs")
    os.makedirs(xa, exist_ok=True)
    write(os.path.join(xa, "file"), b"has xattrs\n")
    try:
        os.setxattr(os.path.join(xa, "file"), "user.one", b"1")
        os.setxattr(os.path.join(xa, "file"), "user.bin", bytes(range(256)))
        os.setxattr(xa, "user.dir", b"on a directory")
    except OSError as e:
        print("mkcorpus: xattrs unsupported here: %s" % e, file=sys.stderr)
    if os.geteuid() == 0:
        p = os.path.join(md, "owned")
        write(p, b"owned\n")
        os.chown(p, 1234, 5678)
        os.lchown(os.path.join(ln, "rel"), 4321, 8765)
        p = os.path.join(md, "setuid")
        write(p, b"#!/bin/sh\n")
        os.chown(p, 0, 0)
        os.chmod(p, 0o4755)

    # Special files: a FIFO always; (as root) a character device like
    # /dev/null and a block device, foreign owners and odd modes.  Only
    # trusted.* attributes go on them (Linux refuses user.* there).
    sp = os.path.join(root, "special")
    os.makedirs(sp, exist_ok=True)
    os.mkfifo(os.path.join(sp, "fifo"), 0o640)
    os.chmod(os.path.join(sp, "fifo"), 0o640)
    if os.geteuid() == 0:
        os.mknod(os.path.join(sp, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(os.path.join(sp, "null"), 0o666)
        os.chown(os.path.join(sp, "null"), 1234, 5678)
        os.mknod(os.path.join(sp, "loop"), 0o660 | stat.S_IFBLK, os.makedev(7, 1048575))
        os.chmod(os.path.join(sp, "loop"), 0o2660)
        try:
            os.setxattr(os.path.join(sp, "fifo"), "trusted.snapfs", b"on a FIFO")
        except OSError as e:
            print("mkcorpus: trusted xattrs unsupported here: %s" % e, file=sys.stderr)

    # Nanosecond mtimes everywhere, deepest first so directory times stick.
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            p = os.path.join(dirpath, n)
            t = 1_600_000_000_000_000_000 + rng.randrange(10**17)
            os.utime(p, ns=(t, t), follow_symlinks=False)
        t = 1_600_000_000_000_000_000 + rng.randrange(10**17)
        os.utime(dirpath, ns=(t, t))

main()
