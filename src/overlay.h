/*
 * overlay.h - the writable tree of one label: control/<label>/, its base
 * backup seen through its stage (stage.h).
 *
 * The tree starts as the base (the label's newest backup, read lazily
 * through the mount's cache, or nothing with the "empty" flag).  Every
 * change copies up only what it touches: the entry, and its directories up
 * to the label directory get stage rows; a directory's listing is then its
 * base directory object merged with its staged names (and whiteouts for
 * removed base names).  Untouched directories are never read beyond what
 * the kernel asks for, and a commit (commit.c) takes them by reference.
 *
 * Inode numbers (all >= OVL_INO_MIN, the range vfs.c gives control/):
 *   - an entry that a backup written through control/ stored with bit 63
 *     of its inode set keeps that number (bits 0..62);
 *   - any other base entry: a hash of its directory's number and its name
 *     (of its group and hardlink id for hardlinks), so every name of a
 *     hardlinked file shares one number;
 *   - a created entry: the stage's counter mixed with root_ino (labels
 *     share the kernel's number space), in its own sub-range; bare
 *     counters that older backups stored are mixed the same way.
 * A staged entry keeps its number through renames and commits (a commit
 * stores it with bit 63 set), so numbers are stable while the mount lives.
 *
 * Writes: a file opened for writing gets a local copy, data/<ino> in the
 * stage (whole, except with O_TRUNC, and except a base file of
 * STREAM_START bytes or more when the next backup continues its series:
 * its copy starts as holes over the base's chunks, recorded as stored
 * ones, so a write brings back only the chunks it touches, and a rewrite
 * from the start streams); reads of it come from there, so a reader sees
 * every write.  Errors reach the caller: a failed local write
 * is the write's error, and one that could not be reported (none today)
 * would be flush's.  A file filled by reference (ovl_copy_ref) has no
 * local copy until its next change.
 *
 * Streaming: a file written from its start streams into the store while
 * it is written (overlay_stream.c).  Once it holds STREAM_START bytes,
 * what lies more than STREAM_WINDOW behind its furthest write is cut into
 * chunks and stored through the label's session (the writers' threads do
 * it, at most STREAM_BUSY at once; a writer waits while uploads catch
 * up, unless the mount's writers already hold ovl_holds.max loop
 * threads that way: then it goes on, its bytes staying local).  Chunks whose pack has been uploaded are recorded in the stage
 * (stage.h: srefs) and their bytes punched out of data/<ino>, so a file
 * of any size occupies about STREAM_WINDOW plus the packs in flight on
 * local disk.  The last writer's close cuts the rest.  Holes the writer
 * leaves (rsync -S) stay holes.  A write behind the cut point (the
 * writeback cache sends pages in any order) makes the chunks it touches
 * stale: cut ones are forgotten, recorded ones come back into
 * data/<ino> (read from the store), and the stream goes on; the commit
 * chunks what is local.  A truncate or punched hole behind it stops the
 * stream the same way.  Reads of stored ranges come from the
 * store.  A store failure stops streaming for the label until its next
 * commit (the data is still local); flush and fsync of files that were
 * streaming then fail once with SNAP_EIO, and the commit reports the
 * error.
 *
 * Durability: the stage batches the label's changes (stage.h).  The
 * overlay commits the batch where it owes durability: the create of a
 * file, the last writer's flush (a file whose close(2) returned survives
 * kill -9), fsync, a write after either; a thread commits the rest
 * within BATCH_AGE (20 ms) of the batch's first change.
 *
 * Locking: one mutex per label guards the stage and the node table.  It is
 * held while the store is read only to bring a base file's bytes into the
 * stage (its first open for writing, or a change after a copy by
 * reference): other changes of the label wait meanwhile.  While a commit runs
 * (ovl_gate_close) every change waits; lookups, listings and reads never
 * do.  Errors are core codes with a message, the POSIX ones (SNAP_EPERM,
 * SNAP_ENOTEMPTY, SNAP_EXDEV, ...) mapped to their errno at the edge.
 */
#ifndef SNAPFS_OVERLAY_H
#define SNAPFS_OVERLAY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "backup.h"
#include "cache.h"
#include "stage.h"
#include "fileread.h"
#include "vattr.h"

#define OVL_INO_MIN (1ULL << 62)

struct ovl;
struct ovl_file;

/* The base a label's tree starts from. */
struct ovl_base {
	char series[SERIES_MAX]; /* "" when none */
	uint32_t num;
	const struct manifest *m; /* NULL when none */
};

/* Loop threads that writers may hold back while uploads catch up (a
 * pass, a wait for one, the cut at close), shared by every label of a
 * mount.  Past max a writer goes on and its bytes stay local (stage_max
 * bounds them; the commit stores them), so status, RELEASE and reads
 * always find a thread. */
struct ovl_holds {
	atomic_int n;
	int max; /* 0: no bound */
};

struct ovl_opts {
	struct repo *r;
	struct cache *c;
	const char *label;
	uint64_t root_ino;   /* control/<label>'s number */
	size_t readahead_max;
	int kernel_acl;      /* the kernel keeps modes and ACLs in step */
	/* The kernel caches writes (writeback) and keeps files' mtime and
	 * ctime, sending them with setattr: writes leave them alone, or a
	 * write the kernel sends after a utimensat would undo it. */
	int kernel_times;
	int read_only;       /* every change is SNAP_EROFS */
	uint32_t uid, gid;   /* owner of the label directory */
	/* Streaming (see below): opens the session the label's files
	 * stream into, its next backup (the overlay holds it until
	 * ovl_stream_take()).  SNAP_EBUSY: not yet (asked again later);
	 * another error: not until the tree starts afresh.  Called with no
	 * lock held.  NULL: files are staged whole. */
	int (*stream_open)(void *ctx, struct bsession **s);
	void *stream_ctx;
	/* The most local disk the label's data files may take (0: as much
	 * as the disk has): past it, writes fail with SNAP_ENOSPC.  Known
	 * from a walk of the stage at each ovl_sync() plus what was written
	 * since, so it may be passed by one sync period's writes. */
	uint64_t stage_max;
	struct ovl_holds *holds; /* NULL: no bound */
	/* Replies to a write that ovl_write() held back (see there); called
	 * with the label's lock held, so it must not call into the overlay.
	 * NULL: writes held back wait in their thread. */
	void (*resume_write)(void *req, size_t n);
};

/* Opens the label's tree over an opened stage (the overlay takes it over,
 * closing it at ovl_close) with base b (copied).  The stage's meta must
 * already name b. */
int ovl_open(const struct ovl_opts *o, struct stage *st,
	     const struct ovl_base *b, struct ovl **out);
void ovl_close(struct ovl *o);

struct stage *ovl_stage(struct ovl *o);
void ovl_lock(struct ovl *o);
void ovl_unlock(struct ovl *o);


int ovl_lookup(struct ovl *o, uint64_t dir, const char *name,
	       struct vfs_attr *a);
void ovl_forget(struct ovl *o, uint64_t ino, uint64_t n);
int ovl_getattr(struct ovl *o, uint64_t ino, struct vfs_attr *a);
int ovl_readlink(struct ovl *o, uint64_t ino, char **target);
/* Does this overlay hold the node? */
int ovl_has(struct ovl *o, uint64_t ino);

/* Listings: the names are a snapshot taken at opendir, each resolved
 * when listed. */
struct ovl_dir;
int ovl_opendir(struct ovl *o, uint64_t ino, struct ovl_dir **d);
/* Entry idx (after "." and ".."): 0, 1 past the end, VFS_DIRENT_SKIP for
 * a name removed since opendir, or an error.  With plus the entry gains a
 * lookup reference. */
int ovl_dirent(struct ovl *o, struct ovl_dir *d, size_t idx, int plus,
	       const char **name, struct vfs_attr *a);
void ovl_closedir(struct ovl *o, struct ovl_dir *d);

int ovl_mknod(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	      const char *name, uint32_t mode, uint32_t rmajor,
	      uint32_t rminor, struct vfs_attr *a);
int ovl_mkdir(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	      const char *name, uint32_t mode, struct vfs_attr *a);
int ovl_symlink(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
		const char *name, const char *target, struct vfs_attr *a);
int ovl_link(struct ovl *o, uint64_t ino, uint64_t dir, const char *name,
	     struct vfs_attr *a);
int ovl_unlink(struct ovl *o, uint64_t dir, const char *name);
int ovl_rmdir(struct ovl *o, uint64_t dir, const char *name);
/* flags: RENAME_NOREPLACE, RENAME_EXCHANGE. */
int ovl_rename(struct ovl *o, uint64_t dir, const char *name, uint64_t ndir,
	       const char *nname, unsigned flags);

int ovl_setattr(struct ovl *o, uint64_t ino, const struct vfs_setattr *sa,
		struct ovl_file *f, struct vfs_attr *a);

int ovl_getxattr(struct ovl *o, uint64_t ino, const char *name,
		 struct buf *out);
int ovl_listxattr(struct ovl *o, uint64_t ino, struct buf *out);
/* flags: XATTR_CREATE, XATTR_REPLACE. */
int ovl_setxattr(struct ovl *o, uint64_t ino, const char *name,
		 const void *val, size_t len, int flags);
int ovl_removexattr(struct ovl *o, uint64_t ino, const char *name);

/* Files.  flags are open(2)'s. */
int ovl_create(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	       const char *name, uint32_t mode, int flags, struct vfs_attr *a,
	       struct ovl_file **f);
int ovl_open_file(struct ovl *o, uint64_t ino, int flags,
		  struct ovl_file **f);
int ovl_read(struct ovl *o, struct ovl_file *f, uint64_t off, size_t size,
	     struct vfs_read *rd);
/* A write far ahead of its stream's uploads is held back while a pass of
 * the label runs: with req (the frontend's request) ovl_write() then
 * returns 1 and the reply comes later, through ovl_opts.resume_write(req,
 * n) from the thread that ended the pass, so a held write takes no
 * thread; without req, or when no pass runs, it waits in its thread (an
 * ovl_holds). */
int ovl_write(struct ovl *o, struct ovl_file *f, const void *buf, size_t n,
	      uint64_t off, void *req);
int ovl_flush(struct ovl *o, struct ovl_file *f);
/* May ovl_flush() take long (it seals a stream, waiting for uploads)? */
int ovl_flush_slow(struct ovl *o, struct ovl_file *f);
int ovl_fsync(struct ovl *o, struct ovl_file *f, int datasync);
int ovl_fallocate(struct ovl *o, struct ovl_file *f, int mode, uint64_t off,
		  uint64_t len);
void ovl_release(struct ovl *o, struct ovl_file *f);
const char *ovl_file_name(const struct ovl_file *f);

/* Copies by reference (copy_file_range): a stored file, named by the
 * directory object that holds it, its name there and its series. */
struct ovl_src {
	char series[SERIES_MAX];
	struct ref dir;
	char name[256];
	uint64_t size;
};
/* A file of the tree as stored (a base file, or one whose content is
 * still its origin's); SNAP_EUNSUPP when its content is staged. */
int ovl_file_src(struct ovl *o, struct ovl_file *f, struct ovl_src *src);
/* Makes f's file, new, empty and open only through f, src's content by
 * reference: no byte is read or stored, and the next commit takes the
 * chunk list as it is.  Only the whole of src from offset 0 to 0, in the
 * series the label continues; SNAP_EUNSUPP otherwise (the caller copies
 * bytes).  The file then counts as fsynced; its next change brings the
 * bytes back into the stage. */
int ovl_copy_ref(struct ovl *o, struct ovl_file *f, const struct ovl_src *src,
		 uint64_t off_in, uint64_t off_out, uint64_t len,
		 uint64_t *copied);

int ovl_statfs(struct ovl *o, struct statvfs *sv);

/* Commits: ovl_gate_close() makes further changes wait and waits (at most
 * wait_s seconds) until no file is open for writing; SNAP_EBUSY then, with
 * the open paths in the message.  ovl_gate_open() lets changes go on. */
int ovl_gate_close(struct ovl *o, double wait_s);
void ovl_gate_open(struct ovl *o);
/* SNAP_EIO, once, when a failed batch undid changes since the last
 * commit (the commit must not go on as if they were there); else 0. */
int ovl_lost_commit(struct ovl *o);

/* The streaming session, now the caller's (NULL when none); call it
 * with the gate closed, so that nothing streams meanwhile.  The tree
 * streams again after ovl_rebase(). */
struct bsession *ovl_stream_take(struct ovl *o);
/* Why streaming stopped for the label ("" when it did not), until the
 * tree starts afresh; each() is called with the path (under the label
 * directory) of every file that was streaming then, whose close or fsync
 * failed for it.  Returns each()'s first error. */
int ovl_stream_error(struct ovl *o, char *buf, size_t n,
		     int (*each)(void *ctx, const char *path), void *ctx);

/* Is anything staged? */
int ovl_dirty(struct ovl *o);
/* For idle commits: 0 when nothing is staged or a file is open for
 * writing or a commit runs; otherwise the count of changes so far (it
 * grows with every change) and, in *idle_s, the seconds since the last. */
uint64_t ovl_quiet(struct ovl *o, double *idle_s);
/* Makes the stage durable if anything changed since the last time, and
 * takes the measure of its local disk (stage_max).  *refused: the writes
 * stage_max refused since the last call. */
int ovl_sync(struct ovl *o, uint64_t *refused);
/* Counts for status: staged files and their bytes. */
void ovl_counts(struct ovl *o, uint64_t *files, uint64_t *bytes);

/* After a commit landed (or an abort): the tree starts afresh from base
 * b; the stage must have been cleared.  Nodes the kernel holds are bound
 * again lazily, keeping their numbers. */
int ovl_rebase(struct ovl *o, const struct ovl_base *b);

/* Calls fn(parent, name) for every name of a node the kernel may cache,
 * so the frontend can invalidate them (after abort or empty).  fn runs
 * with no lock held: it may wait for the kernel. */
void ovl_each_name(struct ovl *o,
		   void (*fn)(void *ctx, uint64_t parent, const char *name),
		   void *ctx);

/* For commit.c: the base, and a directory's merged listing.  Base
 * entries come as tents of the base tree (valid during the call); staged
 * ones as the inode number. */
const struct ovl_base *ovl_get_base(struct ovl *o);
uint64_t ovl_root(struct ovl *o);
/* The next number a created entry would get (recorded by commits). */
uint64_t ovl_next_ino(struct ovl *o);
/* Hardlink groups of the base copied up in group g (a group root's
 * number): the commit then walks that whole group. */
int ovl_group_has_hl(struct ovl *o, uint64_t g);
int ovl_staged_hl(struct ovl *o, uint64_t g, uint64_t hl, uint64_t *ino);
/* The number a base entry e of directory dir has. */
uint64_t ovl_base_ino(struct ovl *o, uint64_t dir, uint64_t group,
		      const struct tent *e);

#endif
