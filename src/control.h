/*
 * control.h - the mount's control/ directory: the next backup of every
 * label, written by copying into control/<label>/ (overlay.h), and the
 * reserved control/<label>/.snapfs/ through which it is committed.
 *
 *   control/                  one directory per label that has a series,
 *                             has a stage, or was made with mkdir
 *   control/<label>/<group>/  the label's tree (overlay.h)
 *   control/<label>/.snapfs/  found by lookup, never listed:
 *       status   JSON: state, stage, base, counts, errors (read only)
 *       commit   opening it for writing starts a commit; that
 *                descriptor's flush waits for it and fails (EIO) when
 *                the manifest is not durable
 *       abort    opening it for writing drops what is staged
 *       full     exists while armed: the next commit starts a series
 *       empty    exists while armed: the tree starts empty
 *
 * Each label's stage lives in stage_root/<label>/ (stage.h) and is
 * resumed by the next mount: kept, or discarded with the reason in
 * status when its base backup is gone or the repository's keys or
 * configuration changed.  A commit in progress when the daemon died is
 * found again by the token its manifest records.
 *
 * Commits, aborts and the arming of empty run on a thread of the label,
 * never in a request that holds a directory lock; reading status never
 * waits.  Everything here is thread-safe.  Errors are core codes (see
 * overlay.h); failures other than "absent" are also passed to opts.log
 * with a message that names the path and the rule.
 */
#ifndef SNAPFS_CONTROL_H
#define SNAPFS_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "overlay.h"
#include "retention.h"

struct control;
struct cdir;
struct cfile;

/* What the user sets (snapfs -o). */
struct control_cfg {
	const char *stage_root;
	double commit_wait; /* seconds a commit waits for open writers */
	double commit_idle; /* commit a label idle this long (0: never) */
	int next_on_conflict; /* a lost commit race takes the next number */
	int no_stream;        /* files are staged whole (overlay.h) */
	uint64_t stage_max;   /* per label (overlay.h); 0: none */
	int max_held; /* loop threads writers may hold (ovl_holds); 0: any */
	struct full_policy full; /* when a commit starts a new series */
};

struct control_opts {
	struct repo *r;
	struct cache *c;
	struct control_cfg cfg;
	size_t readahead_max;
	int kernel_acl, kernel_times; /* as in ovl_opts */
	uint32_t uid, gid; /* owner of control/ and the label directories */
	uint64_t ino;      /* control/'s own number */
	/* The frontend: the kernel's caches, a log line. */
	void (*inval_entry)(void *ctx, uint64_t parent, const char *name);
	void (*inval_inode)(void *ctx, uint64_t ino);
	void (*log)(void *ctx, const char *msg);
	void (*resume_write)(void *req, size_t n); /* ovl_opts */
	/* A commit landed: the catalog must show it. */
	void (*committed)(void *ctx, const char *label, const char *series,
			  uint32_t num);
	void *ctx;
};

/* What a label of control/ is doing (its status, in figures), for the
 * mount's metrics.  The strings live until the callback returns. */
struct control_label_info {
	const char *label;
	const char *state;  /* STATUS_READY, _STAGING, _BACKING_UP, _ERROR */
	uint64_t staged_files, staged_bytes;
	uint64_t uploaded_bytes; /* by the running or the last commit */
	/* The last commit this mount made of it (have_last). */
	int have_last;
	double last_end;     /* wall clock, seconds since the epoch */
	double last_elapsed; /* seconds */
	uint64_t last_files, last_bytes_new;
};

/* Calls fn for each label in use (with its stage open); fn must not
 * call back into control.  Stops at fn's first non-zero return, which it
 * returns. */
int control_each_label(struct control *c,
		       int (*fn)(void *ctx, const struct control_label_info *i),
		       void *ctx);

int control_open(const struct control_opts *o, struct control **out);
/* Waits for running commits, syncs and closes every stage. */
void control_close(struct control *c);
/* Waits until no commit, abort or emptying runs or is queued (a daemon
 * told to stop serves requests until then, so the process waiting in the
 * commit's close gets its answer). */
void control_drain(struct control *c);

/* Is ino control/ or below it? */
int control_owns(const struct control *c, uint64_t ino);

int control_lookup(struct control *c, uint64_t parent, const char *name,
		   struct vfs_attr *a);
void control_forget(struct control *c, uint64_t ino, uint64_t n);
int control_getattr(struct control *c, uint64_t ino, struct vfs_attr *a);
int control_readlink(struct control *c, uint64_t ino, char **target);

/* labels: the catalog's labels (for listing control/ itself). */
int control_opendir(struct control *c, uint64_t ino,
		    const char *const *labels, size_t nlabels,
		    struct cdir **d);
int control_dirent(struct control *c, struct cdir *d, size_t idx, int plus,
		   const char **name, struct vfs_attr *a);
void control_closedir(struct control *c, struct cdir *d);

int control_mknod(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		  const char *name, uint32_t mode, uint32_t rmajor,
		  uint32_t rminor, struct vfs_attr *a);
int control_mkdir(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		  const char *name, uint32_t mode, struct vfs_attr *a);
int control_symlink(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		    const char *name, const char *target, struct vfs_attr *a);
int control_link(struct control *c, uint64_t ino, uint64_t dir,
		 const char *name, struct vfs_attr *a);
int control_unlink(struct control *c, uint64_t dir, const char *name);
int control_rmdir(struct control *c, uint64_t dir, const char *name);
int control_rename(struct control *c, uint64_t dir, const char *name,
		   uint64_t ndir, const char *nname, unsigned flags);
int control_setattr(struct control *c, uint64_t ino,
		    const struct vfs_setattr *sa, struct cfile *f,
		    struct vfs_attr *a);
int control_getxattr(struct control *c, uint64_t ino, const char *name,
		     struct buf *out);
int control_listxattr(struct control *c, uint64_t ino, struct buf *out);
int control_setxattr(struct control *c, uint64_t ino, const char *name,
		     const void *val, size_t len, int flags);
int control_removexattr(struct control *c, uint64_t ino, const char *name);

/* Files.  *direct is set for files read without the page cache (status:
 * its size is not known ahead). */
int control_create(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		   const char *name, uint32_t mode, int flags,
		   struct vfs_attr *a, struct cfile **f, int *direct);
int control_open_file(struct control *c, uint64_t ino, int flags,
		      struct cfile **f, int *direct);
int control_read(struct control *c, struct cfile *f, uint64_t off,
		 size_t size, struct vfs_read *rd);
void control_read_done(struct control *c, struct vfs_read *rd);
/* 1: req is held back, as for ovl_write(). */
int control_write(struct control *c, struct cfile *f, const void *buf,
		  size_t n, uint64_t off, void *req);
/* Waits for a commit started by this descriptor. */
int control_flush(struct control *c, struct cfile *f);
/* May control_flush() take long (a commit, a stream's last uploads)? */
int control_flush_slow(struct control *c, struct cfile *f);
int control_fsync(struct control *c, struct cfile *f, int datasync);
/* copy_file_range by reference (ovl_file_src, ovl_copy_ref). */
int control_file_src(struct control *c, struct cfile *f, struct ovl_src *src);
int control_copy_ref(struct control *c, struct cfile *f,
		     const struct ovl_src *src, uint64_t off_in,
		     uint64_t off_out, uint64_t len, uint64_t *copied);
int control_fallocate(struct control *c, struct cfile *f, int mode,
		      uint64_t off, uint64_t len);
void control_release(struct control *c, struct cfile *f);
const char *control_file_name(const struct cfile *f);

int control_statfs(struct control *c, uint64_t ino, struct statvfs *sv);

#endif
