/*
 * vattr.h - the attributes of a mounted entry as the core hands them to
 * the FUSE frontend, what a setattr changes, and who asks.  Plain data,
 * shared by vfs.h (every entry) and overlay.h (control/'s trees).
 */
#ifndef SNAPFS_VATTR_H
#define SNAPFS_VATTR_H

#include <stdint.h>

struct vfs_attr {
	uint64_t ino;
	uint32_t mode, nlink, uid, gid;
	uint64_t size, blocks; /* blocks of 512 bytes actually stored */
	int64_t mtime_ns, ctime_ns;
	uint32_t rdev_major, rdev_minor; /* device nodes */
	double timeout; /* how long entry and attributes may be cached */
};

/* What a setattr changes (VFS_SET_* bits). */
#define VFS_SET_MODE 1
#define VFS_SET_UID 2
#define VFS_SET_GID 4
#define VFS_SET_SIZE 8
#define VFS_SET_ATIME 16
#define VFS_SET_MTIME 32
#define VFS_SET_ATIME_NOW 64
#define VFS_SET_MTIME_NOW 128
#define VFS_SET_CTIME 256
/* Drop setuid, and setgid where group execute makes it setgid-on-exec:
 * what a write or truncate by a writer without CAP_FSETID does.  (A
 * chown does it without being asked, as in Linux.) */
#define VFS_SET_KILL_SUIDGID 512
struct vfs_setattr {
	unsigned valid;
	uint32_t mode, uid, gid;
	uint64_t size;
	int64_t atime_ns, mtime_ns, ctime_ns;
};

/* Who is asking (for new entries' owner and setgid directories). */
struct ovl_ctx {
	uint32_t uid, gid, umask;
};

/* A listing's entry that went away since the directory was opened. */
#define VFS_DIRENT_SKIP 2

#endif
