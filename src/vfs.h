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
#include <sys/statvfs.h>
#include <sys/uio.h>

#include "cache.h"
#include "control.h"
#include "fileread.h"
#include "overlay.h"
#include "vattr.h"
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
	int kernel_times; /* see ovl_opts */
	struct control_cfg ctl; /* control/ (control.h) */
	/* The frontend: invalidation of the kernel's caches (a name in a
	 * directory; an inode's attributes and data), and log lines. */
	void (*inval_entry)(void *ctx, uint64_t parent, const char *name);
	void (*inval_inode)(void *ctx, uint64_t ino);
	void (*log)(void *ctx, const char *msg);
	void (*resume_write)(void *req, size_t n); /* ovl_opts */
	void *ctx;
};


struct vfs;
struct vfs_dir;
struct vfs_file;

/* The attributes of a stored entry (long-lived: backups never change). */
void vfs_tent_attr(const struct tent *e, struct vfs_attr *a);

/* Lists the catalog; fails (with the store's error) when it cannot. */
int vfs_open(struct repo *r, struct cache *c, const struct vfs_opts *o,
	     struct vfs **out);
void vfs_close(struct vfs *v);
/* control/, for the mount's metrics (mountmetrics.h). */
struct control *vfs_control(struct vfs *v);
/* Waits until control/ runs no commit (see control_drain()). */
void vfs_drain(struct vfs *v);

int vfs_lookup(struct vfs *v, uint64_t parent, const char *name,
	       struct vfs_attr *a);
void vfs_forget(struct vfs *v, uint64_t ino, uint64_t nlookup);
int vfs_getattr(struct vfs *v, uint64_t ino, struct vfs_attr *a);
/* The target of a symlink, NUL-terminated, malloc'd. */
int vfs_readlink(struct vfs *v, uint64_t ino, char **target);

int vfs_opendir(struct vfs *v, uint64_t ino, struct vfs_dir **d);
/* Entry idx of an open directory ("." and ".." first): 0, 1 past the end,
 * or VFS_DIRENT_SKIP when the entry went away since opendir.  With plus the entry gains a lookup reference (undo it with
 * vfs_forget() when it cannot be delivered). */
int vfs_dirent(struct vfs *v, struct vfs_dir *d, size_t idx, int plus,
	       const char **name, struct vfs_attr *a);
void vfs_closedir(struct vfs *v, struct vfs_dir *d);

/* flags are open(2)'s: anything but a read-only open is SNAP_EROFS outside
 * control/.  *direct: read it without the page cache (its size is not
 * known ahead). */
int vfs_open_file(struct vfs *v, uint64_t ino, int flags, struct vfs_file **f,
		  int *direct);
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

/*
 * Changes: only below control/ (control.h, overlay.h); anywhere else they
 * are SNAP_EROFS.  Entry-making calls fill *a like vfs_lookup() (with a
 * lookup reference).
 */
int vfs_mknod(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, uint32_t rmajor,
	      uint32_t rminor, struct vfs_attr *a);
int vfs_mkdir(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, struct vfs_attr *a);
int vfs_symlink(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
		const char *name, const char *target, struct vfs_attr *a);
int vfs_link(struct vfs *v, uint64_t ino, uint64_t parent, const char *name,
	     struct vfs_attr *a);
int vfs_unlink(struct vfs *v, uint64_t parent, const char *name);
int vfs_rmdir(struct vfs *v, uint64_t parent, const char *name);
int vfs_rename(struct vfs *v, uint64_t parent, const char *name,
	       uint64_t nparent, const char *nname, unsigned flags);
int vfs_setattr(struct vfs *v, uint64_t ino, const struct vfs_setattr *sa,
		struct vfs_file *f, struct vfs_attr *a);
int vfs_setxattr(struct vfs *v, uint64_t ino, const char *name,
		 const void *val, size_t len, int flags);
int vfs_removexattr(struct vfs *v, uint64_t ino, const char *name);
int vfs_create(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
	       const char *name, uint32_t mode, int flags, struct vfs_attr *a,
	       struct vfs_file **f, int *direct);
/* 1: req is held back and replied to later (ovl_write()). */
int vfs_write(struct vfs *v, struct vfs_file *f, const void *buf, size_t n,
	      uint64_t off, void *req);
/* The error a close must report (a commit that failed, for one). */
int vfs_flush(struct vfs *v, struct vfs_file *f);
/* May it take long?  (A commit may: others should go on meanwhile.) */
int vfs_flush_slow(struct vfs *v, struct vfs_file *f);
int vfs_fsync(struct vfs *v, struct vfs_file *f, int datasync);
/* copy_file_range into a file of control/: by reference when it can be
 * (ovl_copy_ref), else SNAP_EUNSUPP and the caller copies bytes. */
int vfs_copy_range(struct vfs *v, struct vfs_file *in, uint64_t off_in,
		   struct vfs_file *out, uint64_t off_out, uint64_t len,
		   uint64_t *copied);
int vfs_fallocate(struct vfs *v, struct vfs_file *f, int mode, uint64_t off,
		  uint64_t len);
/* The filesystem's numbers for ino: SNAP_ENOENT where nothing can be
 * written (the frontend answers for a read-only mount then). */
int vfs_statfs(struct vfs *v, uint64_t ino, struct statvfs *sv);

#endif
