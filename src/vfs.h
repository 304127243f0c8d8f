/*
 * vfs.h - a repository as a read-only tree of inodes (what the mount shows).
 *
 *   /series/<seriesId>/<backupNum>/<group>/...    every backup, whole
 *   /series/<seriesId>/<backupNum>/manifest.json  the manifest as stored
 *   /series/<seriesId>/latest -> <n>
 *   /labels/<label> -> ../series/<newest series of the label>
 *   /control/                                     empty (the write side)
 *
 * Nothing is read until asked for: a directory costs its directory object,
 * a read costs the chunks under the byte range (through the cache), plus a
 * growing read-ahead window while the reader stays sequential.
 *
 * Inode numbers are a hash of (parent inode, name) seeded by the
 * repository id, so they are the same on every lookup and every mount of
 * the repository; entries of one group that share a hardlink id share an
 * inode.  Reference counting follows the FUSE low-level contract:
 * vfs_lookup() and vfs_dirent(plus) add one lookup reference, vfs_forget()
 * removes them, and a node is freed at zero.  Handles (vfs_dir, vfs_file)
 * hold what they need and survive their node.
 *
 * The catalog (the list of backups) is read at vfs_open() and again, at
 * most every opts.refresh seconds, when series/, labels/ or a series
 * directory is looked into.  Attributes carry the time the kernel may
 * cache them: long inside backups (they never change), opts.refresh for
 * the catalog's views.
 *
 * Errors are core codes with a message: SNAP_ENOENT for absent names
 * (attr->timeout then says how long the absence may be cached),
 * SNAP_ECORRUPT / SNAP_EIO / SNAP_ENET for a read that failed (the message
 * names the object), SNAP_EINVAL for operations on the wrong kind of node.
 * Thread-safe; no lock is held while the store is read.
 */
#ifndef SNAPFS_VFS_H
#define SNAPFS_VFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "cache.h"
#include "fileread.h"
#include "repo.h"

#define VFS_ROOT_INO 1

struct vfs_opts {
	double refresh;      /* seconds between catalog listings */
	uid_t uid;           /* owner shown for the virtual directories */
	gid_t gid;
	size_t readahead_max; /* largest read-ahead window, bytes */
	/* The kernel checks POSIX ACLs (FUSE_CAP_POSIX_ACL): it asks for
	 * system.posix_acl_* on permission checks and takes "not supported"
	 * for a failure, so absent ACLs must be ENOENT, never SNAP_EUNSUPP. */
	int kernel_acl;
};

struct vfs_attr {
	uint64_t ino;
	uint32_t mode, nlink, uid, gid;
	uint64_t size, blocks; /* blocks of 512 bytes actually stored */
	int64_t mtime_ns, ctime_ns;
	double timeout; /* how long entry and attributes may be cached */
};

struct vfs;
struct vfs_dir;
struct vfs_file;

/* Lists the catalog; fails (with the store's error) when it cannot. */
int vfs_open(struct repo *r, struct cache *c, const struct vfs_opts *o,
	     struct vfs **out);
void vfs_close(struct vfs *v);

int vfs_lookup(struct vfs *v, uint64_t parent, const char *name,
	       struct vfs_attr *a);
void vfs_forget(struct vfs *v, uint64_t ino, uint64_t nlookup);
int vfs_getattr(struct vfs *v, uint64_t ino, struct vfs_attr *a);
/* The target of a symlink, NUL-terminated, malloc'd. */
int vfs_readlink(struct vfs *v, uint64_t ino, char **target);

int vfs_opendir(struct vfs *v, uint64_t ino, struct vfs_dir **d);
/* Entry idx of an open directory ("." and ".." first): 0, or 1 past the
 * end.  With plus the entry gains a lookup reference (undo it with
 * vfs_forget() when it cannot be delivered). */
int vfs_dirent(struct vfs *v, struct vfs_dir *d, size_t idx, int plus,
	       const char **name, struct vfs_attr *a);
void vfs_closedir(struct vfs *v, struct vfs_dir *d);

int vfs_open_file(struct vfs *v, uint64_t ino, struct vfs_file **f);
/* Up to size bytes at off (fewer only at end of file). */
int vfs_read(struct vfs *v, struct vfs_file *f, uint64_t off, size_t size,
	     struct vfs_read *rd);
void vfs_read_done(struct vfs *v, struct vfs_read *rd);
void vfs_close_file(struct vfs *v, struct vfs_file *f);
/* A printable name of what the handle reads, for log lines. */
const char *vfs_file_name(const struct vfs_file *f);

/* An extended attribute's value.  When absent: SNAP_EUNSUPP if the
 * backup's manifest says no entry uses the name's namespace (except ACLs
 * under opts.kernel_acl), else SNAP_ENOENT.  On the root, "user.snapfs.stats" reports the cache
 * counters as text. */
int vfs_getxattr(struct vfs *v, uint64_t ino, const char *name,
		 struct buf *out);
/* The names, each NUL-terminated, concatenated. */
int vfs_listxattr(struct vfs *v, uint64_t ino, struct buf *out);

#endif
