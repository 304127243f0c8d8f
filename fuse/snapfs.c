/*
 * snapfs.c - the FUSE daemon: mounts a repository (snapfs(1)).
 *
 * A thin libfuse3 low-level frontend over the core's vfs: every handler
 * calls one vfs function and turns its result into exactly one reply,
 * mapping core codes to errno here and nowhere else.  Reads reply with an
 * iovec straight from the cache's decoded chunks (no copy on our side);
 * entries, attributes and negative lookups inside backups are cached by
 * the kernel for a day and file pages are kept (keep_cache), since a
 * backup never changes.  The session loop (loop.h) is multithreaded, so
 * a slow fetch holds one thread while others serve unrelated requests.
 *
 * Start-up errors (bad location, wrong key, unreachable store, bad
 * mountpoint) are printed by the invoking process and make it exit non-zero,
 * also when daemonising: the child reports its outcome through a pipe.
 */
#define FUSE_USE_VERSION 312
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include "cache.h"
#include "err.h"
#include "mountmetrics.h"
#include "repo.h"
#include "retention.h"
#include "vfs.h"
#include "loop.h"
#include "wire.h"

struct options {
	char *key_file, *password_file, *key_command, *password_command;
	char *key_format;
	char *refresh, *cache_mem, *cache_dir, *cache_size, *parallel;
	char *readahead, *stage_dir, *commit_wait, *commit_idle, *on_conflict;
	char *stage_max, *limit_upload, *limit_download;
	char *metrics_file, *metrics_interval, *full_every, *full_after;
	int anonymous, no_disk_cache, no_writeback, no_stream;
	int allow_other;
	int dropped_suid, dropped_dev; /* asked for, and refused */
	char *repo;
};

static struct {
	struct vfs *v;
	struct fuse_session *se;
	int use_syslog;
	int acl; /* the kernel enforces POSIX ACLs (allow_other) */
	int writeback; /* the kernel caches writes to control/ */
} G;

static void logmsg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (G.use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		fputs("snapfs: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* Stopping: SIGTERM, SIGINT and SIGHUP end the session once no commit
 * runs.  The daemon serves requests until then, so the process waiting in
 * a commit's close gets its answer: a commit is never cut off by a stop
 * (systemctl stop, Ctrl-C).  The handler only writes to a pipe; a thread
 * does the waiting. */
static int stop_pipe[2] = {-1, -1};

static void on_stop(int sig)
{
	char c = (char)sig;

	if (write(stop_pipe[1], &c, 1) < 0) {
		/* nothing to do in a handler */
	}
}

static void *stopper(void *arg)
{
	struct fuse_session *se = arg;
	char c = 0;

	while (read(stop_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	if (!c)
		return NULL; /* the session ended first */
	vfs_drain(G.v);
	loop_exit(se);
	return NULL;
}

static int stop_handlers(struct fuse_session *se, pthread_t *th)
{
	struct sigaction sa;

	if (pipe2(stop_pipe, O_CLOEXEC))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL) ||
	    sigaction(SIGHUP, &sa, NULL))
		return -1;
	signal(SIGPIPE, SIG_IGN);
	return pthread_create(th, NULL, stopper, se) ? -1 : 0;
}

static void stop_handlers_end(pthread_t th)
{
	char c = 0;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (write(stop_pipe[1], &c, 1) == 1)
		pthread_join(th, NULL);
	close(stop_pipe[0]);
	close(stop_pipe[1]);
}

/* errno for a core code; failures other than "absent" are logged, since
 * the kernel passes on only the number. */
static int fail(int rc, const char *what)
{
	int e = snap_errno(rc);

	/* A file's data could not be fetched: to a reader that is EIO, not
	 * "host unreachable" or "permission denied" (the store's words). */
	if (e == EHOSTUNREACH || e == EACCES)
		e = EIO;

	if (rc != SNAP_ENOENT && rc != SNAP_EINVAL)
		logmsg(LOG_ERR, "%s: %s", what, snap_errmsg());
	return e;
}

/* errno for a change below control/: the core logged why already. */
static int cerr(int rc)
{
	return snap_errno(rc);
}

static void to_stat(const struct vfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_rdev = makedev(a->rdev_major, a->rdev_minor);
	st->st_blksize = 1 << 20;
	st->st_mtim.tv_sec = a->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = a->mtime_ns % 1000000000;
	if (st->st_mtim.tv_nsec < 0) {
		st->st_mtim.tv_sec--;
		st->st_mtim.tv_nsec += 1000000000;
	}
	st->st_atim = st->st_mtim;
	st->st_ctim.tv_sec = a->ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = a->ctime_ns % 1000000000;
	if (st->st_ctim.tv_nsec < 0) {
		st->st_ctim.tv_sec--;
		st->st_ctim.tv_nsec += 1000000000;
	}
}

static void to_entry(const struct vfs_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->attr_timeout = e->entry_timeout = a->timeout;
	to_stat(a, &e->attr);
}

/* The mount's bdi.  Larger kernel read-ahead means 1 MiB requests for
 * sequential readers instead of 128 KiB ones.  The kernel sets the
 * mount's read-ahead when it receives our reply to INIT, so the sysfs
 * writes wait for the first request after that.  They need root and are
 * skipped otherwise.  The device number comes from mountinfo: a stat()
 * of the mountpoint would wait for this very daemon. */
static char bdi_path[64];
static pthread_once_t ra_once = PTHREAD_ONCE_INIT;

static void find_bdi(const char *mnt)
{
	char real[PATH_MAX], line[8192], mp[PATH_MAX];
	unsigned maj = 0, min = 0, m1, m2;
	int found = 0;
	FILE *f;

	if (!realpath(mnt, real) || !(f = fopen("/proc/self/mountinfo", "r")))
		return;
	while (fgets(line, sizeof(line), f))
		/* The last match is the mount on top. */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &m1, &m2, mp) ==
			    3 &&
		    strcmp(mp, real) == 0) {
			maj = m1;
			min = m2;
			found = 1;
		}
	fclose(f);
	if (found)
		snprintf(bdi_path, sizeof(bdi_path), "/sys/class/bdi/%u:%u",
			 maj, min);
}

static FILE *bdi_open(const char *name, const char *mode)
{
	char path[sizeof(bdi_path) + 32];

	if (!bdi_path[0])
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", bdi_path, name);
	return fopen(path, mode);
}

static void bdi_set(const char *name, const char *val)
{
	FILE *f = bdi_open(name, "w");

	if (f) {
		fputs(val, f);
		fclose(f);
	}
}

/* Read-ahead as large as a sequential reader's requests; at most 32 MiB
 * dirty (the kernel's default is 1 % of the dirty limit, which grows
 * with memory), which bounds the writes held back, in the stage already:
 * see max_background in sl_init(). */
static void set_bdi(void)
{
	unsigned long long cur = 0;
	FILE *f = bdi_open("max_bytes", "r");

	bdi_set("read_ahead_kb", "1024\n");
	if (f) {
		if (fscanf(f, "%llu", &cur) != 1)
			cur = 0;
		fclose(f);
	}
	if (cur > (32ULL << 20))
		bdi_set("max_bytes", "33554432\n");
}

static void after_init(void)
{
	pthread_once(&ra_once, set_bdi);
}

static void sl_init(void *ud, struct fuse_conn_info *conn)
{
	(void)ud;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Always plus: one round trip lists a directory with attributes. */
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	/* Other users are let in: a file whose ACL denies one of them must
	 * stay closed to them, so the kernel checks ACLs too (from the
	 * stored system.posix_acl_* attributes). */
	/* Writes to control/ land in the page cache and come in large
	 * WRITEs; the kernel keeps mtimes (vfs_opts.kernel_times).  Backups
	 * never change, so series/ loses nothing by it. */
	if (G.writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else if (G.writeback)
		logmsg(LOG_WARNING, "this kernel has no writeback cache: "
		       "files written to control/ keep the mtime of their "
		       "last setattr");
	conn->max_write = 1u << 20;
	/* Writes held back by uploads (ovl_write()) keep their slots in
	 * the kernel's queue of background requests, which RELEASE and
	 * read-ahead share: of the default 12, a large rsync could take
	 * all.  The bdi's dirty limit (max_bytes, set in after_init())
	 * bounds the writes in flight to 32 of 1 MiB. */
	conn->max_background = 64;
	conn->congestion_threshold = 56;
	if (G.acl && (conn->capable & FUSE_CAP_POSIX_ACL))
		conn->want |= FUSE_CAP_POSIX_ACL;
	else if (G.acl)
		logmsg(LOG_WARNING, "this kernel cannot check POSIX ACLs: "
		       "other users are checked against modes only");
}

static void sl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct vfs_attr a;
	int rc;

	after_init();
	rc = vfs_lookup(G.v, parent, name, &a);

	if (rc == SNAP_ENOENT) {
		/* A negative entry: the kernel remembers the absence. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = a.timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc) {
		fuse_reply_err(req, fail(rc, name));
		return;
	}
	to_entry(&a, &e);
	fuse_reply_entry(req, &e);
}

static void sl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	vfs_forget(G.v, ino, nlookup);
	fuse_reply_none(req);
}

static void sl_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		vfs_forget(G.v, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void sl_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vfs_attr a;
	struct stat st;
	int rc;

	(void)fi;
	after_init();
	rc = vfs_getattr(G.v, ino, &a);
	if (rc) {
		fuse_reply_err(req, fail(rc, "getattr"));
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, a.timeout);
}

static void sl_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char *target;
	int rc = vfs_readlink(G.v, ino, &target);

	if (rc)
		fuse_reply_err(req, fail(rc, "readlink"));
	else
		fuse_reply_readlink(req, target);
	free(target);
}

static void sl_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct vfs_dir *d;
	int rc = vfs_opendir(G.v, ino, &d);

	if (rc) {
		fuse_reply_err(req, rc == SNAP_EINVAL ? ENOTDIR
						       : fail(rc, "opendir"));
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		vfs_closedir(G.v, d); /* interrupted */
}

static void do_readdir(fuse_req_t req, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct vfs_dir *d = (struct vfs_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size), *p = buf;
	size_t rem = size;
	int rc = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t idx = (size_t)off;; idx++) {
		struct vfs_attr a;
		const char *name;
		size_t need;

		rc = vfs_dirent(G.v, d, idx, plus, &name, &a);
		if (rc == VFS_DIRENT_SKIP)
			continue;
		if (rc)
			break;
		if (plus) {
			struct fuse_entry_param e;

			to_entry(&a, &e);
			need = fuse_add_direntry_plus(req, p, rem, name, &e,
						      (off_t)idx + 1);
		} else {
			struct stat st;

			to_stat(&a, &st);
			need = fuse_add_direntry(req, p, rem, name, &st,
						 (off_t)idx + 1);
		}
		if (need > rem) {
			/* Not delivered: take back the reference. */
			if (plus && idx >= 2)
				vfs_forget(G.v, a.ino, 1);
			rc = 1;
			break;
		}
		p += need;
		rem -= need;
	}
	/* Whatever fitted is a valid answer; an error with nothing listed
	 * is the error. */
	if (rc < 0 && p == buf)
		fuse_reply_err(req, fail(rc, "readdir"));
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

static void sl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 0);
}

static void sl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	do_readdir(req, size, off, fi, 1);
}

static void sl_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	vfs_closedir(G.v, (struct vfs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Files of backups never change: the kernel keeps their pages.  Files of
 * control/ may, and .snapfs/status has no size ahead of reading it. */
static void file_opened(fuse_req_t req, struct fuse_file_info *fi,
			struct vfs_file *f, int direct, int writable_tree)
{
	fi->fh = (uintptr_t)f;
	fi->keep_cache = !writable_tree;
	fi->direct_io = direct;
	fi->noflush = !writable_tree;
}

/* Drops setuid and setgid if the kernel asked this request to (wire.h).
 * The kernel's copy of the mode is then stale: it is told (attributes
 * only, which takes no lock the writer holds). */
static int kill_suidgid(fuse_ino_t ino)
{
	struct vfs_setattr sa = {.valid = VFS_SET_KILL_SUIDGID};
	struct vfs_attr a;
	int rc;

	if (!wire_kills())
		return 0;
	rc = vfs_setattr(G.v, ino, &sa, NULL, &a);
	if (rc == 0)
		fuse_lowlevel_notify_inval_inode(G.se, ino, -1, 0);
	return rc;
}

static void sl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vfs_file *f;
	int rc, direct;

	rc = kill_suidgid(ino);
	rc = rc ? rc : vfs_open_file(G.v, ino, fi->flags, &f, &direct);
	if (rc) {
		fuse_reply_err(req, rc == SNAP_EINVAL ? EISDIR
			       : rc == SNAP_EROFS     ? EROFS
			       : ino >= OVL_INO_MIN   ? cerr(rc)
						      : fail(rc, "open"));
		return;
	}
	file_opened(req, fi, f, direct, ino >= OVL_INO_MIN);
	if (fuse_reply_open(req, fi) == -ENOENT)
		vfs_close_file(G.v, f);
}

static void sl_create(fuse_req_t req, fuse_ino_t p, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	struct ovl_ctx c = {fc->uid, fc->gid, fc->umask};
	struct fuse_entry_param e;
	struct vfs_attr a;
	struct vfs_file *f;
	int rc, direct;

	rc = vfs_create(G.v, &c, p, name, mode, fi->flags, &a, &f, &direct);
	if (rc) {
		fuse_reply_err(req, cerr(rc));
		return;
	}
	to_entry(&a, &e);
	file_opened(req, fi, f, direct, 1);
	if (fuse_reply_create(req, &e, fi) == -ENOENT)
		vfs_close_file(G.v, f);
}

static void sl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct vfs_file *f = (struct vfs_file *)(uintptr_t)fi->fh;
	struct vfs_read rd;
	int rc;

	(void)ino;
	loop_handoff();
	rc = vfs_read(G.v, f, (uint64_t)off, size, &rd);
	if (rc) {
		fuse_reply_err(req, fail(rc, vfs_file_name(f)));
		return;
	}
	if (rd.fd >= 0 && rd.len) {
		/* A staged file: the kernel gets its bytes from the stage's
		 * file, spliced where it can be. */
		struct fuse_bufvec bv = FUSE_BUFVEC_INIT(rd.len);

		bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		bv.buf[0].fd = rd.fd;
		bv.buf[0].pos = (off_t)rd.fd_off;
		fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
	} else if (rd.niov) {
		fuse_reply_iov(req, rd.iov, rd.niov);
	} else {
		fuse_reply_buf(req, NULL, 0);
	}
	vfs_read_done(G.v, &rd);
}

static void sl_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	vfs_close_file(G.v, (struct vfs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void reply_xattr(fuse_req_t req, int rc, const struct buf *b,
			size_t size)
{
	if (rc == SNAP_ENOENT || rc == SNAP_ENODATA)
		fuse_reply_err(req, ENODATA);
	else if (rc == SNAP_EUNSUPP) /* a namespace the backup never uses */
		fuse_reply_err(req, EOPNOTSUPP);
	else if (rc)
		fuse_reply_err(req, fail(rc, "xattr"));
	else if (size == 0)
		fuse_reply_xattr(req, b->len);
	else if (b->len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, (const char *)b->p, b->len);
}

static void sl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct buf b = BUF_INIT;

	reply_xattr(req, vfs_getxattr(G.v, ino, name, &b), &b, size);
	buf_free(&b);
}

static void sl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct buf b = BUF_INIT;

	reply_xattr(req, vfs_listxattr(G.v, ino, &b), &b, size);
	buf_free(&b);
}

static void sl_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (vfs_statfs(G.v, ino, &sv) == 0) {
		fuse_reply_statfs(req, &sv);
		return;
	}
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_namemax = 255;
	sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &sv);
}

/* ---- changes: control/ only (the core answers EROFS elsewhere) -------- */

static void reply_entry(fuse_req_t req, int rc, const struct vfs_attr *a)
{
	struct fuse_entry_param e;

	if (rc) {
		fuse_reply_err(req, cerr(rc));
		return;
	}
	to_entry(a, &e);
	if (fuse_reply_entry(req, &e) == -ENOENT)
		vfs_forget(G.v, a->ino, 1);
}

static void req_ctx(fuse_req_t req, struct ovl_ctx *c)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);

	c->uid = fc->uid;
	c->gid = fc->gid;
	c->umask = fc->umask;
}

static void sl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct vfs_setattr sa;
	struct vfs_attr a;
	struct stat st;
	int rc;

	memset(&sa, 0, sizeof(sa));
	if (to_set & FUSE_SET_ATTR_MODE)
		sa.valid |= VFS_SET_MODE, sa.mode = attr->st_mode;
	if (to_set & FUSE_SET_ATTR_UID)
		sa.valid |= VFS_SET_UID, sa.uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		sa.valid |= VFS_SET_GID, sa.gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_SIZE)
		sa.valid |= VFS_SET_SIZE, sa.size = (uint64_t)attr->st_size;
	if (to_set & FUSE_SET_ATTR_MTIME)
		sa.valid |= VFS_SET_MTIME,
			sa.mtime_ns = (int64_t)attr->st_mtim.tv_sec * 1000000000 +
				      attr->st_mtim.tv_nsec;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		sa.valid |= VFS_SET_MTIME | VFS_SET_MTIME_NOW;
	if (to_set & FUSE_SET_ATTR_ATIME)
		sa.valid |= VFS_SET_ATIME;
	/* FATTR_KILL_SUIDGID: a truncate by a writer without CAP_FSETID. */
	if (to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID))
		sa.valid |= VFS_SET_KILL_SUIDGID;
	if (to_set & FUSE_SET_ATTR_CTIME)
		sa.valid |= VFS_SET_CTIME,
			sa.ctime_ns = (int64_t)attr->st_ctim.tv_sec * 1000000000 +
				      attr->st_ctim.tv_nsec;
	rc = vfs_setattr(G.v, ino, &sa,
			 fi ? (struct vfs_file *)(uintptr_t)fi->fh : NULL, &a);
	if (rc) {
		fuse_reply_err(req, cerr(rc));
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, a.timeout);
}

static void sl_mknod(fuse_req_t req, fuse_ino_t p, const char *name,
		     mode_t mode, dev_t rdev)
{
	struct ovl_ctx c;
	struct vfs_attr a;

	req_ctx(req, &c);
	reply_entry(req, vfs_mknod(G.v, &c, p, name, mode, major(rdev),
				   minor(rdev), &a),
		    &a);
}

static void sl_mkdir(fuse_req_t req, fuse_ino_t p, const char *name,
		     mode_t mode)
{
	struct ovl_ctx c;
	struct vfs_attr a;

	req_ctx(req, &c);
	reply_entry(req, vfs_mkdir(G.v, &c, p, name, mode, &a), &a);
}

static void sl_symlink(fuse_req_t req, const char *link, fuse_ino_t p,
		       const char *name)
{
	struct ovl_ctx c;
	struct vfs_attr a;

	req_ctx(req, &c);
	reply_entry(req, vfs_symlink(G.v, &c, p, name, link, &a), &a);
}

static void sl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t np,
		    const char *nname)
{
	struct vfs_attr a;

	reply_entry(req, vfs_link(G.v, ino, np, nname, &a), &a);
}

static void sl_unlink(fuse_req_t req, fuse_ino_t p, const char *name)
{
	fuse_reply_err(req, cerr(vfs_unlink(G.v, p, name)));
}

static void sl_rmdir(fuse_req_t req, fuse_ino_t p, const char *name)
{
	fuse_reply_err(req, cerr(vfs_rmdir(G.v, p, name)));
}

static void sl_rename(fuse_req_t req, fuse_ino_t p, const char *name,
		      fuse_ino_t np, const char *nname, unsigned int flags)
{
	fuse_reply_err(req, cerr(vfs_rename(G.v, p, name, np, nname, flags)));
}

static void sl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	fuse_reply_err(req,
		       cerr(vfs_setxattr(G.v, ino, name, value, size, flags)));
}

static void sl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, cerr(vfs_removexattr(G.v, ino, name)));
}

static void sl_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct vfs_file *f = (struct vfs_file *)(uintptr_t)fi->fh;
	int rc;

	rc = kill_suidgid(ino);
	rc = rc ? rc : vfs_write(G.v, f, buf, size, (uint64_t)off, req);
	if (rc < 0)
		fuse_reply_err(req, cerr(rc));
	else if (rc == 0)
		fuse_reply_write(req, size);
}

/* A write held back while the store caught up (ovl_write()). */
static void resume_write(void *req, size_t n)
{
	fuse_reply_write(req, n);
}

static void sl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct vfs_file *f = (struct vfs_file *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	/* A commit can take long: others go on meanwhile (a handoff per
	 * close would cost a wakeup per file copied). */
	if (vfs_flush_slow(G.v, f))
		loop_handoff();
	rc = vfs_flush(G.v, f);
	if (rc)
		logmsg(LOG_ERR, "%s", snap_errmsg());
	/* A commit that did not land is EIO to the closing process;
	 * status says why.  A full stage is ENOSPC, as for a disk. */
	fuse_reply_err(req, rc == SNAP_ENOSPC ? ENOSPC : rc ? EIO : 0);
}

static void sl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, cerr(vfs_fsync(G.v,
					   (struct vfs_file *)(uintptr_t)fi->fh,
					   datasync)));
}

static void sl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			 off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, cerr(vfs_fallocate(
				    G.v, (struct vfs_file *)(uintptr_t)fi->fh,
				    mode, (uint64_t)off, (uint64_t)len)));
}

/* cp(1) and others copy with copy_file_range: a whole stored file into a
 * new one in control/ becomes a reference to its chunks.  Anything else
 * is EOPNOTSUPP, on which the kernel copies the bytes itself. */
static void sl_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			       off_t off_out, struct fuse_file_info *fi_out,
			       size_t len, int flags)
{
	uint64_t copied = 0;
	int rc;

	(void)ino_in, (void)ino_out;
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = vfs_copy_range(G.v, (struct vfs_file *)(uintptr_t)fi_in->fh,
			    (uint64_t)off_in,
			    (struct vfs_file *)(uintptr_t)fi_out->fh,
			    (uint64_t)off_out, len, &copied);
	if (rc)
		fuse_reply_err(req, cerr(rc));
	else
		fuse_reply_write(req, (size_t)copied);
}

static const struct fuse_lowlevel_ops ops = {
	.init = sl_init,
	.lookup = sl_lookup,
	.forget = sl_forget,
	.forget_multi = sl_forget_multi,
	.getattr = sl_getattr,
	.readlink = sl_readlink,
	.opendir = sl_opendir,
	.readdir = sl_readdir,
	.readdirplus = sl_readdirplus,
	.releasedir = sl_releasedir,
	.open = sl_open,
	.read = sl_read,
	.release = sl_release,
	.getxattr = sl_getxattr,
	.listxattr = sl_listxattr,
	.statfs = sl_statfs,
	.setattr = sl_setattr,
	.mknod = sl_mknod,
	.mkdir = sl_mkdir,
	.unlink = sl_unlink,
	.rmdir = sl_rmdir,
	.symlink = sl_symlink,
	.rename = sl_rename,
	.link = sl_link,
	.create = sl_create,
	.setxattr = sl_setxattr,
	.removexattr = sl_removexattr,
	.write = sl_write,
	.flush = sl_flush,
	.fsync = sl_fsync,
	.fallocate = sl_fallocate,
	.copy_file_range = sl_copy_file_range,
};

/* ---- start-up --------------------------------------------------------- */

static const char usage[] =
	"usage: snapfs [-f] [-d] [-o OPTION[,OPTION...]] LOCATION MOUNTPOINT\n"
	"\n"
	"Mounts the snapfs repository at LOCATION: series/<id>/<n>/<group>/\n"
	"shows every backup, labels/<label> the newest series of a label.\n"
	"\n"
	"  -f                    stay in the foreground, log to stderr\n"
	"  -d                    debug: foreground, log every request\n"
	"  -s                    single-threaded (for debugging)\n"
	"  -h, --help            this help;  -V, --version  versions\n"
	"\n"
	"snapfs options (-o):\n"
	"  key_file=F            16/24/32-byte key, raw or base64 (or\n"
	"                        SNAPFS_KEY_FILE)\n"
	"  key_command=CMD       the key is what CMD prints (or\n"
	"                        SNAPFS_KEY_COMMAND; a comma in CMD is \\,)\n"
	"  key_format=FMT        auto (default), raw or base64 (or\n"
	"                        SNAPFS_KEY_FORMAT)\n"
	"  password_file=F       passphrase file (or SNAPFS_PASSWORD_FILE)\n"
	"  password_command=CMD  the passphrase is what CMD prints (or\n"
	"                        SNAPFS_PASSWORD_COMMAND)\n"
	"  refresh=SECONDS       list new backups at most this often (30)\n"
	"  cache_mem=SIZE        decoded chunks kept in memory (64M)\n"
	"  cache_dir=DIR         disk cache (remote stores: ~/.cache/snapfs,\n"
	"                        or /var/cache/snapfs for root)\n"
	"  cache_size=SIZE       disk cache bound (2G)\n"
	"  no_disk_cache         no disk cache\n"
	"  readahead=SIZE        largest read-ahead of a sequential reader (32M)\n"
	"  parallel=N            concurrent store requests (8; 4 for local)\n"
	"  limit_upload=RATE     cap uploads, bytes/s (e.g. 20M; off)\n"
	"  limit_download=RATE   cap downloads, bytes/s (off)\n"
	"  max_threads=N         threads serving requests (10); writers held\n"
	"                        back by uploads take at most half\n"
	"  anonymous             unsigned requests (public buckets)\n"
	"  no_writeback          no kernel write cache for control/ (each\n"
	"                        write(2) is a request; for comparison)\n"
	"  no_stream             stage files written into control/ whole on\n"
	"                        local disk instead of streaming them into the\n"
	"                        store while they are written\n"
	"  stage_dir=DIR         where control/'s labels keep their stages\n"
	"                        (default: CACHE_DIR/<repository id>/stage)\n"
	"  commit_wait=SECONDS   how long a commit waits for files still open\n"
	"                        for writing (60)\n"
	"  stage_max=SIZE        local disk a label's stage may take; past it\n"
	"                        writes that grow files fail with ENOSPC\n"
	"                        (default: as much as the disk has)\n"
	"  commit_idle=SECONDS   commit a label that has had no change and no\n"
	"                        writer for this long (off)\n"
	"  on_conflict=error|next  a commit that finds its number taken by\n"
	"                        another writer fails (error, the default) or\n"
	"                        becomes the next number (next)\n"
	"  full_every=N          a commit starts a new series (a full backup)\n"
	"                        when the label's series holds N backups (off)\n"
	"  full_after=SPAN       ... or when its first backup is older than\n"
	"                        SPAN: 7d, 2w, 1m, 36h (off)\n"
	"  metrics_file=FILE     a Prometheus textfile (node_exporter) of the\n"
	"                        caches and control/'s labels (off)\n"
	"  metrics_interval=SECONDS  how often it is rewritten (15)\n"
	"  allow_other           let other users in (off; needs user_allow_other\n"
	"                        in /etc/fuse.conf unless root); modes, owners\n"
	"                        and POSIX ACLs are then checked by the kernel\n"
	"Mounts are always nosuid,nodev ('suid' and 'dev' are ignored).\n"
	"Credentials come from the environment as for snapctl(1).  See snapfs(1).\n";

enum { KEY_SUID, KEY_DEV, KEY_ALLOW_OTHER };

#define OPT(t, f) {t, offsetof(struct options, f), 1}
static const struct fuse_opt opt_spec[] = {
	FUSE_OPT_KEY("suid", KEY_SUID),
	FUSE_OPT_KEY("dev", KEY_DEV),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	OPT("key_file=%s", key_file),
	OPT("password_file=%s", password_file),
	OPT("key_command=%s", key_command),
	OPT("password_command=%s", password_command),
	OPT("key_format=%s", key_format),
	OPT("refresh=%s", refresh),
	OPT("cache_mem=%s", cache_mem),
	OPT("cache_dir=%s", cache_dir),
	OPT("cache_size=%s", cache_size),
	OPT("readahead=%s", readahead),
	OPT("stage_dir=%s", stage_dir),
	OPT("commit_wait=%s", commit_wait),
	OPT("commit_idle=%s", commit_idle),
	OPT("stage_max=%s", stage_max),
	OPT("on_conflict=%s", on_conflict),
	OPT("parallel=%s", parallel),
	OPT("limit_upload=%s", limit_upload),
	OPT("limit_download=%s", limit_download),
	OPT("anonymous", anonymous),
	OPT("no_disk_cache", no_disk_cache),
	OPT("no_writeback", no_writeback),
	OPT("no_stream", no_stream),
	OPT("metrics_file=%s", metrics_file),
	OPT("metrics_interval=%s", metrics_interval),
	OPT("full_every=%s", full_every),
	OPT("full_after=%s", full_after),
	FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct options *o = data;

	(void)outargs;
	(void)arg;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (o->repo)
			return 1;
		o->repo = strdup(arg);
		return 0;
	/* mount(8) passes "dev,suid" unless told otherwise.  A backup holds
	 * old setuid binaries and device nodes: run from the mount they
	 * must never gain privilege or open a device, so both are dropped
	 * (and nosuid,nodev forced in main()). */
	case KEY_SUID:
		o->dropped_suid = 1;
		return 0;
	case KEY_DEV:
		o->dropped_dev = 1;
		return 0;
	case KEY_ALLOW_OTHER:
		o->allow_other = 1;
		return 1;
	default:
		return 1;
	}
}

/* The daemon's start-up reports to the invoking process through a pipe:
 * "" (closed) or a message means failure, "ok" success. */
static int report_fd = -1;

/* A key or password file others may read. */
static void key_warning(const char *msg)
{
	logmsg(LOG_WARNING, "warning: %s", msg);
}

static void startup_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void startup_error(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (report_fd >= 0) {
		if (write(report_fd, msg, strlen(msg)) < 0)
			syslog(LOG_ERR, "%s", msg);
	} else {
		fprintf(stderr, "snapfs: %s\n", msg);
	}
}

/* Forks; the parent waits for the child's verdict and exits with it. */
static void daemonize_early(void)
{
	int p[2];
	pid_t pid;
	char msg[2048];
	ssize_t n, got = 0;

	if (pipe(p)) {
		perror("snapfs: pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("snapfs: fork");
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		while ((n = read(p[0], msg + got, sizeof(msg) - 1 - (size_t)got)) > 0)
			got += n;
		msg[got] = 0;
		if (strcmp(msg, "ok") == 0)
			_exit(0);
		fprintf(stderr, "snapfs: %s\n",
			got ? msg : "the daemon died while starting");
		_exit(1);
	}
	close(p[0]);
	report_fd = p[1];
	setsid();
}

static void daemon_ready(void)
{
	int fd;

	if (report_fd < 0)
		return;
	if (chdir("/") == 0 && (fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (write(report_fd, "ok", 2) != 2)
		syslog(LOG_WARNING, "could not report start-up");
	close(report_fd);
	report_fd = -1;
}

static int size_opt(const char *name, const char *s, uint64_t def,
		    uint64_t *out)
{
	*out = def;
	if (s && parse_size(s, out)) {
		startup_error("bad %s '%s': a size such as 64M or 2G", name, s);
		return -1;
	}
	return 0;
}

static int secs_opt(const char *name, const char *s, double *out)
{
	char *end;
	double v;

	if (!s)
		return 0;
	v = strtod(s, &end);
	if (end == s || *end || !(v >= 0) || v > 1e9) {
		startup_error("bad %s '%s': seconds", name, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* The core's requests to the kernel: forget a name, an inode's data. */
static void inval_entry(void *ctx, uint64_t parent, const char *name)
{
	(void)ctx;
	if (G.se)
		fuse_lowlevel_notify_inval_entry(G.se, parent, name,
						 strlen(name));
}

static void inval_inode(void *ctx, uint64_t ino)
{
	(void)ctx;
	if (G.se)
		fuse_lowlevel_notify_inval_inode(G.se, ino, 0, 0);
}

static void core_log(void *ctx, const char *msg)
{
	(void)ctx;
	logmsg(LOG_NOTICE, "%s", msg);
}

static char *default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char path[PATH_MAX];

	if (geteuid() == 0)
		return strdup("/var/cache/snapfs");
	if (xdg && *xdg)
		snprintf(path, sizeof(path), "%s/snapfs", xdg);
	else if (home && *home)
		snprintf(path, sizeof(path), "%s/.cache/snapfs", home);
	else
		return NULL;
	return strdup(path);
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co;
	struct fuse_session *se = NULL;
	struct options o;
	struct open_opts ko;
	struct repo *r = NULL;
	struct cache *c = NULL;
	struct cache_opts cop;
	struct vfs_opts vo;
	uint64_t mem, disk, ra, stage_max;
	char warning[512], fsname[1200], *cache_dir = NULL, *stage_root = NULL;
	double refresh = 30, commit_wait = 60, commit_idle = 0, every = 15;
	struct full_policy full = {0};
	struct mountmetrics *mm = NULL;
	int rc, ret = 1, mounted = 0, handlers = 0;
	pthread_t stop_th;

	prctl(PR_SET_DUMPABLE, 0); /* no core dump may hold the key */
	/* A fixed threshold: glibc raises it to the size of each large
	 * buffer freed, and then the streams' 4 MiB chunk and 16 MiB pack
	 * buffers stay in the heaps of a dozen threads: a 10 GiB rsync into
	 * control/ peaked at 429 MB of RSS instead of ~190. */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	raise_fd_limit();
	memset(&o, 0, sizeof(o));
	memset(&co, 0, sizeof(co));
	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) ||
	    fuse_parse_cmdline(&args, &co)) {
		fputs(usage, stderr);
		goto out_free;
	}
	if (co.show_help) {
		fputs(usage, stdout);
		ret = 0;
		goto out_free;
	}
	if (co.show_version) {
		printf("snapfs %s, libfuse %s\n", PACKAGE_VERSION,
		       fuse_pkgversion());
		ret = 0;
		goto out_free;
	}
	if (!o.repo || !co.mountpoint) {
		fprintf(stderr, "snapfs: %s\n%s",
			o.repo ? "no mountpoint" : "no repository location",
			usage);
		goto out_free;
	}
	/* Relative to where snapfs was started, as the user meant it. */
	if (o.metrics_file && o.metrics_file[0] != '/') {
		char cwd[PATH_MAX], *abs = NULL;

		if (!getcwd(cwd, sizeof(cwd)) ||
		    asprintf(&abs, "%s/%s", cwd, o.metrics_file) < 0) {
			fprintf(stderr, "snapfs: metrics_file: %s\n",
				strerror(errno));
			goto out_free;
		}
		free(o.metrics_file);
		o.metrics_file = abs;
	}
	if (!co.foreground) {
		openlog("snapfs", LOG_PID, LOG_DAEMON);
		daemonize_early();
	}

	if (secs_opt("refresh", o.refresh, &refresh) ||
	    secs_opt("commit_wait", o.commit_wait, &commit_wait) ||
	    secs_opt("commit_idle", o.commit_idle, &commit_idle) ||
	    secs_opt("metrics_interval", o.metrics_interval, &every))
		goto out;
	if ((o.full_every && ret_parse_count("full_every", o.full_every, 0,
					      &full.every)) ||
	    (o.full_after && ret_parse_span(o.full_after, &full.after))) {
		startup_error("bad %s", snap_errmsg());
		goto out;
	}
	if (o.on_conflict && strcmp(o.on_conflict, "error") &&
	    strcmp(o.on_conflict, "next")) {
		startup_error("bad on_conflict '%s': error or next",
			      o.on_conflict);
		goto out;
	}
	if (size_opt("stage_max", o.stage_max, 0, &stage_max) ||
	    size_opt("cache_mem", o.cache_mem, 64u << 20, &mem) ||
	    size_opt("cache_size", o.cache_size, 2ULL << 30, &disk) ||
	    size_opt("readahead", o.readahead, 32u << 20, &ra))
		goto out;
	memset(&ko, 0, sizeof(ko));
	if (size_opt("limit_upload", o.limit_upload, 0, &ko.store.limit_up) ||
	    size_opt("limit_download", o.limit_download, 0,
		     &ko.store.limit_down))
		goto out;
	ko.key.file = o.key_file;
	ko.key.command = o.key_command;
	keysrc_env(&ko.key, "SNAPFS_KEY_FILE", "SNAPFS_KEY_COMMAND");
	ko.pass.file = o.password_file;
	ko.pass.command = o.password_command;
	keysrc_env(&ko.pass, "SNAPFS_PASSWORD_FILE", "SNAPFS_PASSWORD_COMMAND");
	if ((o.key_format || getenv("SNAPFS_KEY_FORMAT")) &&
	    keysrc_format(o.key_format ? o.key_format
				       : getenv("SNAPFS_KEY_FORMAT"),
			  &ko.key.format)) {
		startup_error("%s", snap_errmsg());
		goto out;
	}
	ko.key.warn = ko.pass.warn = key_warning;
	ko.store.anonymous = o.anonymous;
	if (o.parallel) {
		char *end;

		ko.store.parallel = (int)strtol(o.parallel, &end, 10);
		if (*end || ko.store.parallel < 1 || ko.store.parallel > 256) {
			startup_error("bad parallel '%s': 1..256", o.parallel);
			goto out;
		}
	}
	/* The kernel caches the decoded files: bypass the page cache for
	 * the packs of a local repository (see store.h). */
	ko.store.direct_read = 1;
	rc = repo_open(o.repo, &ko, &r);
	if (rc) {
		startup_error("%s", snap_errmsg());
		goto out;
	}

	memset(&cop, 0, sizeof(cop));
	cop.mem_bytes = mem;
	cop.disk_bytes = disk;
	cop.prefetch_threads = ko.store.parallel
				       ? ko.store.parallel
				       : store_is_remote(r->st) ? 8 : 4;
	/* A local repository is already on disk: caching it again only
	 * costs writes, so the disk cache is for remote stores unless a
	 * directory is named. */
	if (o.cache_dir)
		cache_dir = strdup(o.cache_dir);
	else if (store_is_remote(r->st) && !o.no_disk_cache)
		cache_dir = default_cache_dir();
	cop.dir = o.no_disk_cache ? NULL : cache_dir;
	rc = cache_open(r, &cop, &c, warning, sizeof(warning));
	if (rc) {
		startup_error("%s", snap_errmsg());
		goto out;
	}
	if (warning[0])
		logmsg(LOG_WARNING, "%s", warning);
	memset(&vo, 0, sizeof(vo));
	vo.refresh = refresh;
	vo.uid = getuid();
	vo.gid = getgid();
	vo.readahead_max = ra < mem / 2 ? ra : mem / 2;
	vo.kernel_acl = o.allow_other;
	vo.kernel_times = !o.no_writeback;
	/* control/'s stages: local repositories have a cache directory for
	 * them too. */
	if (o.stage_dir) {
		stage_root = strdup(o.stage_dir);
	} else {
		char *base = o.cache_dir ? strdup(o.cache_dir)
					 : default_cache_dir();

		if (base && asprintf(&stage_root, "%s/%s/stage", base, r->id) < 0)
			stage_root = NULL;
		free(base);
	}
	if (!stage_root) {
		startup_error("no directory for control/'s stages: set "
			      "-o stage_dir=DIR (or HOME)");
		goto out;
	}
	vo.ctl.stage_root = stage_root;
	vo.ctl.commit_wait = commit_wait;
	vo.ctl.commit_idle = commit_idle;
	vo.ctl.next_on_conflict = o.on_conflict && !strcmp(o.on_conflict, "next");
	vo.ctl.no_stream = o.no_stream;
	vo.ctl.full = full;
	vo.ctl.stage_max = stage_max;
	/* Half the loop's threads stay free of writers held back by
	 * uploads (overlay.h: ovl_holds). */
	vo.ctl.max_held = co.singlethread || co.max_threads < 4
				  ? 1
				  : (int)co.max_threads / 2;
	vo.inval_entry = inval_entry;
	vo.inval_inode = inval_inode;
	vo.log = core_log;
	vo.resume_write = resume_write;
	rc = vfs_open(r, c, &vo, &G.v);
	if (rc) {
		startup_error("%s", snap_errmsg());
		goto out;
	}
	if (o.metrics_file &&
	    mountmetrics_start(o.metrics_file, every, co.mountpoint, c,
			       vfs_control(G.v), core_log, NULL, &mm)) {
		startup_error("%s", snap_errmsg());
		goto out;
	}

	/* Backups hold other users' files: the kernel checks their modes
	 * (and, with allow_other, their ACLs: sl_init). */
	G.acl = o.allow_other;
	G.writeback = !o.no_writeback;
	snprintf(fsname, sizeof(fsname), "-ofsname=%s,subtype=snapfs",
		 strchr(r->st->url, ',') ? "snapfs" : r->st->url);
	if (fuse_opt_add_arg(&args, "-odefault_permissions") ||
	    fuse_opt_add_arg(&args, "-onosuid,nodev") ||
	    fuse_opt_add_arg(&args, fsname)) {
		startup_error("out of memory");
		goto out;
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se) {
		startup_error("bad FUSE options (see snapfs --help)");
		goto out;
	}
	if (stop_handlers(se, &stop_th)) {
		startup_error("cannot install signal handlers");
		goto out;
	}
	handlers = 1;
	if (fuse_session_mount(se, co.mountpoint)) {
		startup_error("cannot mount on %s (is it an existing "
			      "directory, and is /dev/fuse usable?)",
			      co.mountpoint);
		goto out;
	}
	mounted = 1;
	if (wire_attach(se))
		logmsg(LOG_WARNING, "cannot hook the FUSE device: every write "
		       "asks for security.capability first");
	G.se = se;
	find_bdi(co.mountpoint);
	G.use_syslog = !co.foreground;
	logmsg(LOG_INFO, "mounted %s on %s", r->st->url, co.mountpoint);
	if (o.dropped_suid || o.dropped_dev)
		logmsg(LOG_NOTICE, "ignored option%s %s%s%s: backups are always "
		       "mounted nosuid,nodev",
		       o.dropped_suid && o.dropped_dev ? "s" : "",
		       o.dropped_suid ? "suid" : "",
		       o.dropped_suid && o.dropped_dev ? "," : "",
		       o.dropped_dev ? "dev" : "");
	daemon_ready();

	if (co.singlethread)
		rc = fuse_session_loop(se);
	else
		rc = leader_loop(se, (int)co.max_threads);
	ret = rc < 0 ? 1 : 0;
	logmsg(LOG_INFO, "unmounting %s", co.mountpoint);
out:
	G.se = NULL;
	if (mounted)
		fuse_session_unmount(se);
	if (handlers)
		stop_handlers_end(stop_th);
	if (se)
		fuse_session_destroy(se);
	mountmetrics_stop(mm);
	vfs_close(G.v);
	cache_close(c);
	repo_close(r);
	free(cache_dir);
	free(stage_root);
	if (report_fd >= 0)
		close(report_fd);
out_free:
	free(co.mountpoint);
	free(o.key_file);
	free(o.password_file);
	free(o.key_command);
	free(o.password_command);
	free(o.key_format);
	free(o.refresh);
	free(o.cache_mem);
	free(o.cache_dir);
	free(o.cache_size);
	free(o.readahead);
	free(o.stage_dir);
	free(o.commit_wait);
	free(o.commit_idle);
	free(o.stage_max);
	free(o.limit_upload);
	free(o.limit_download);
	free(o.on_conflict);
	free(o.parallel);
	free(o.metrics_file);
	free(o.metrics_interval);
	free(o.full_every);
	free(o.full_after);
	free(o.repo);
	fuse_opt_free_args(&args);
	return ret;
}
