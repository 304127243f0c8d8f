/* restore.c - the restore engine; see restore.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "err.h"
#include "restore.h"
#include "treefetch.h"
#include "workq.h"

/* A job is one ranged read per pack it touches, and a request costs a
 * server about what a megabyte does (measured on the RADOS Gateway): small
 * files need many to a job, or their requests, not their bytes, set the
 * pace.  JOB_BYTES is the bound that binds for files of 8 KiB and up. */
#define JOB_ITEMS 2048        /* chunks per job */
#define JOB_BYTES (16u << 20) /* plaintext per job */
#define PREFETCH_TREES 16     /* subdirectory trees fetched ahead per level */
/* Descriptors left to directories, connections and the rest when files in
 * flight are bounded by RLIMIT_NOFILE. */
#define FD_RESERVE 128

struct meta {
	char *rel; /* path below the target */
	uint32_t mode, uid, gid;
	int64_t mtime_ns;
	struct xattr *xattrs;
	size_t nxattrs;
};

struct bufset {
	struct bufset *next;
	struct blob_bufs b;
};

struct reng {
	struct repo *r;
	const struct restore_opts *o;
	struct restore_result *res;
	const char *series;
	int rootfd, is_root, overwrite;
	struct workq *q;

	struct errstate es;
	pthread_mutex_t lock; /* file refcounts, buffer pool, nfiles */
	struct bufset *free_bufs;
	/* Files open for writing, at most max_files: each holds a descriptor
	 * until its last chunk is in, and a tree of small files can have
	 * thousands in the queued jobs. */
	size_t nfiles, max_files;
	pthread_cond_t files_cv;

	struct treefetch *tf; /* directory objects, ahead of the walk */

	/* walker thread only */
	struct rjob *job; /* being filled */
	struct meta *dirs;
	size_t ndirs, dircap;
	struct linkmap links; /* hardlink id -> first name, per group */
};

struct rfile {
	struct reng *e;
	int fd, refs, failed;
	struct meta m;
};

/* A job: chunks in the order the walk met them, of one big file or of many
 * small ones.  Small files written one after another sit side by side in
 * a pack, so one ranged read serves many files. */
struct rjob {
	size_t n;
	uint64_t bytes;
	struct {
		struct rfile *f;
		struct chunk c;
	} it[JOB_ITEMS];
};

int open_beneath(int root, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS,
	};
	char *copy, *comp, *save = NULL;
	int fd, dfd, e;

	fd = (int)syscall(SYS_openat2, root, *rel ? rel : ".", &how,
			  sizeof(how));
	/* openat2 unavailable: ENOSYS before Linux 5.6, under valgrind and
	 * from seccomp profiles that say so; EPERM from container profiles
	 * that deny what they do not list (Docker before 20.10, podman,
	 * systemd's SystemCallFilter=).  An EPERM of the open itself (an
	 * immutable file) comes back from the walk below as well.  EXDEV and
	 * ELOOP mean a hostile path and are final; E2BIG cannot mean an old
	 * kernel, as how is the first open_how, which every openat2 takes. */
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return fd;
	/* Walk one component at a time, refusing symlinks and "..", which
	 * is what RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS guarantee. */
	copy = strdup(rel);
	if (!copy)
		return -1;
	dfd = dup(root);
	for (comp = strtok_r(copy, "/", &save); comp && dfd >= 0;) {
		char *next = strtok_r(NULL, "/", &save);

		if (!strcmp(comp, "..")) {
			close(dfd);
			dfd = -1;
			errno = EXDEV;
			break;
		}
		fd = openat(dfd, comp,
			    (next ? O_RDONLY | O_DIRECTORY : flags) |
				    O_NOFOLLOW | O_CLOEXEC);
		e = errno;
		close(dfd);
		dfd = fd;
		errno = e;
		comp = next;
	}
	free(copy);
	return dfd;
}

#define fail(e, rc) errstate_fail(&(e)->es, (rc))
#define failed(e) errstate_failed(&(e)->es)
#define warn(e, ...) errstate_warn(&(e)->es, __VA_ARGS__)

static void meta_free(struct meta *m)
{
	free(m->rel);
	for (size_t i = 0; i < m->nxattrs; i++) {
		free(m->xattrs[i].name);
		free(m->xattrs[i].val);
	}
	free(m->xattrs);
	memset(m, 0, sizeof(*m));
}

static int meta_copy(struct meta *m, const char *rel, uint32_t mode,
		     uint32_t uid, uint32_t gid, int64_t mtime,
		     const struct xattr *x, size_t nx)
{
	memset(m, 0, sizeof(*m));
	m->rel = strdup(rel);
	m->mode = mode;
	m->uid = uid;
	m->gid = gid;
	m->mtime_ns = mtime;
	if (nx)
		m->xattrs = calloc(nx, sizeof(*x));
	if (!m->rel || (nx && !m->xattrs))
		goto nomem;
	for (size_t i = 0; i < nx; i++) {
		m->xattrs[i].name = strdup(x[i].name);
		m->xattrs[i].val = malloc(x[i].len ? x[i].len : 1);
		m->nxattrs++;
		if (!m->xattrs[i].name || !m->xattrs[i].val)
			goto nomem;
		memcpy(m->xattrs[i].val, x[i].val, x[i].len);
		m->xattrs[i].len = x[i].len;
	}
	return 0;
nomem:
	meta_free(m);
	return snap_seterr(SNAP_ENOMEM, "out of memory");
}

/* Owner first (chown clears set-id bits and capabilities), then xattrs,
 * mode, and times last (everything else would bump them). */
static uint32_t owner_uid(const struct reng *e, uint32_t uid)
{
	return e->o->set_owner ? e->o->uid : uid;
}

static uint32_t owner_gid(const struct reng *e, uint32_t gid)
{
	return e->o->set_owner ? e->o->gid : gid;
}

static void ns_to_times(int64_t ns, struct timespec ts[2])
{
	ts[0].tv_sec = ts[1].tv_sec = ns / 1000000000;
	ts[0].tv_nsec = ts[1].tv_nsec = ns % 1000000000;
	if (ts[0].tv_nsec < 0) {
		ts[0].tv_sec = ts[1].tv_sec -= 1;
		ts[0].tv_nsec = ts[1].tv_nsec += 1000000000;
	}
}

/* Sets m's xattrs on fd, or (fd < 0) on path, not following it. */
static int set_xattrs(struct reng *e, int fd, const char *path,
		      const struct meta *m)
{
	for (size_t i = 0; i < m->nxattrs; i++) {
		const struct xattr *x = &m->xattrs[i];

		if ((fd >= 0 ? fsetxattr(fd, x->name, x->val, x->len, 0)
			     : lsetxattr(path, x->name, x->val, x->len, 0)) == 0)
			continue;
		/* A target filesystem without xattrs, or a namespace we
		 * may not write, loses the attribute, not the restore. */
		if (errno != ENOTSUP && errno != EPERM)
			return snap_syserr(errno, "%s: xattr %s", m->rel,
					   x->name);
		warn(e, "%s: xattr %s not restored: %s", m->rel, x->name,
		     strerror(errno));
	}
	return 0;
}

static int apply_meta(struct reng *e, int fd, const struct meta *m)
{
	struct timespec ts[2];

	if ((e->is_root || e->o->set_owner) &&
	    fchown(fd, owner_uid(e, m->uid), owner_gid(e, m->gid)))
		return snap_syserr(errno, "%s: chown", m->rel);
	SNAP_TRY(set_xattrs(e, fd, NULL, m));
	if (fchmod(fd, m->mode & 07777))
		return snap_syserr(errno, "%s: chmod", m->rel);
	ns_to_times(m->mtime_ns, ts);
	if (futimens(fd, ts))
		return snap_syserr(errno, "%s: setting times", m->rel);
	return 0;
}

/* An open beneath the target that met a symlink or a non-directory where
 * the restore made a directory: the target changed under the restore,
 * and following it could leave the target. */
static int beneath_err(int err, const char *rel)
{
	if (err == ELOOP || err == ENOTDIR || err == EXDEV)
		return snap_seterr(SNAP_EUNSAFE,
				   "%s: refusing to restore through a symlink "
				   "or non-directory",
				   rel);
	return snap_syserr(err, "%s", rel);
}

/* Opens the directory that holds rel, beneath the target, and points
 * *base at rel's last component.  Returns an fd or -1 with errno set. */
static int open_parent(const struct reng *e, const char *rel,
		       const char **base)
{
	const char *slash = strrchr(rel, '/');
	char *dir = strndup(rel, slash ? (size_t)(slash - rel) : 0);
	int fd, err;

	*base = slash ? slash + 1 : rel;
	if (!dir) {
		errno = ENOMEM;
		return -1;
	}
	fd = open_beneath(e->rootfd, dir, O_RDONLY | O_DIRECTORY);
	err = errno;
	free(dir);
	errno = err;
	return fd;
}

/* Removes a file the restore could not finish. */
static void remove_partial(struct reng *e, const char *rel)
{
	const char *base;
	int dfd = open_parent(e, rel, &base);

	if (dfd >= 0) {
		unlinkat(dfd, base, 0);
		close(dfd);
	}
}

/* How many files may be open at once under the descriptor limit. */
static size_t max_open_files(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 65536 + FD_RESERVE)
		return 65536;
	if (rl.rlim_cur > 2 * FD_RESERVE)
		return (size_t)rl.rlim_cur - FD_RESERVE;
	return rl.rlim_cur > 16 ? (size_t)rl.rlim_cur / 2 : 8;
}

static void files_release(struct reng *e)
{
	pthread_mutex_lock(&e->lock);
	e->nfiles--;
	pthread_cond_signal(&e->files_cv);
	pthread_mutex_unlock(&e->lock);
}

static void file_put(struct rfile *f)
{
	struct reng *e = f->e;
	int rc = 0;

	if (__atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL))
		return;
	if (!f->failed && !failed(e)) {
		rc = apply_meta(e, f->fd, &f->m);
		if (rc) {
			fail(e, rc);
			f->failed = 1;
		}
	}
	if (close(f->fd) && !f->failed) {
		fail(e, snap_syserr(errno, "%s: close", f->m.rel));
		f->failed = 1;
	}
	files_release(e);
	if (f->failed || failed(e))
		remove_partial(e, f->m.rel);
	else
		progress_add(e->o->progress, 1, 0);
	meta_free(&f->m);
	free(f);
}

static struct bufset *bufs_get(struct reng *e)
{
	struct bufset *b;

	pthread_mutex_lock(&e->lock);
	b = e->free_bufs;
	if (b)
		e->free_bufs = b->next;
	pthread_mutex_unlock(&e->lock);
	return b ? b : calloc(1, sizeof(*b));
}

static void bufs_put(struct reng *e, struct bufset *b)
{
	pthread_mutex_lock(&e->lock);
	b->next = e->free_bufs;
	e->free_bufs = b;
	pthread_mutex_unlock(&e->lock);
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= w;
		off += w;
	}
	return 0;
}

static ssize_t pread_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, p + got, n - got, off + got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += r;
	}
	return got;
}

/* 1 when [start, end) of fd reads as zeros.  Holes are skipped with
 * SEEK_DATA, so a 64 MiB preallocated log costs what it holds. */
static int zeros_between(int fd, uint64_t start, uint64_t end, struct buf *b)
{
	static const uint8_t zero[4096];

	while (start < end) {
		off_t data = lseek(fd, start, SEEK_DATA), hole;
		uint64_t upto;

		if (data < 0 && errno == ENXIO)
			return 1;
		if (data < 0)
			data = start;
		if ((uint64_t)data >= end)
			return 1;
		hole = lseek(fd, data, SEEK_HOLE);
		upto = hole < 0 || (uint64_t)hole > end ? end : (uint64_t)hole;
		for (uint64_t at = data; at < upto;) {
			size_t n = upto - at < (1u << 20) ? upto - at : (1u << 20);
			ssize_t r;

			b->len = 0;
			SNAP_TRY(buf_reserve(b, n));
			r = pread_full(fd, b->p, n, at);
			if (r < 0)
				return snap_syserr(-r, "reading");
			if ((size_t)r < n)
				return 0;
			for (size_t k = 0; k < n; k += sizeof(zero))
				if (memcmp(b->p + k, zero,
					   n - k < sizeof(zero) ? n - k
								: sizeof(zero)))
					return 0;
			at += n;
		}
		start = upto;
	}
	return 1;
}

/* 1 when fd holds exactly the contents of t (every chunk hashes to its id,
 * everything between chunks is zero), 0 when not, < 0 on a read error. */
static int content_matches(const struct repo *r, int fd, const struct tent *t,
			   struct buf *b)
{
	uint8_t id[ID_LEN];
	uint64_t pos = 0;
	struct stat st;
	int z;

	if (fstat(fd, &st))
		return snap_syserr(errno, "stat");
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != t->size)
		return 0;
	for (size_t i = 0;; i++) {
		const struct chunk *c = i < t->nchunks ? &t->chunks[i] : NULL;
		ssize_t n;

		z = zeros_between(fd, pos, c ? c->off : t->size, b);
		if (z <= 0 || !c)
			return z;
		b->len = 0;
		SNAP_TRY(buf_reserve(b, c->r.raw));
		n = pread_full(fd, b->p, c->r.raw, c->off);
		if (n < 0)
			return snap_syserr(-n, "reading");
		if ((size_t)n != c->r.raw)
			return 0;
		chunk_id(&r->keys, b->p, c->r.raw, id);
		if (memcmp(id, c->r.id, ID_LEN))
			return 0;
		pos = c->off + c->r.raw;
	}
}

struct wctx {
	struct reng *e;
	struct rjob *j;
};

static int write_chunk(void *ctx, size_t i, const uint8_t *raw, size_t len)
{
	struct wctx *w = ctx;
	struct rfile *f = w->j->it[i].f;
	int rc;

	if (failed(w->e))
		return failed(w->e);
	rc = pwrite_all(f->fd, raw, len, w->j->it[i].c.off);
	if (rc)
		return snap_syserr(-rc, "writing %s", f->m.rel);
	progress_add(w->e->o->progress, 0, len);
	__atomic_fetch_add(&w->e->res->bytes, len, __ATOMIC_RELAXED);
	return 0;
}

/* Fetches a job's chunks and writes each into its file. */
static int fetch_write(struct reng *e, struct rjob *j, struct blob_bufs *b)
{
	const struct ref *refs[JOB_ITEMS];
	struct wctx w = {e, j};

	for (size_t k = 0; k < j->n; k++)
		refs[k] = &j->it[k].c.r;
	return repo_read_blobs(e->r, e->series, refs, j->n, write_chunk, &w, b);
}

static void job_work(void *arg)
{
	struct rjob *j = arg;
	struct reng *e = j->it[0].f->e;
	struct bufset *b;
	int rc = 0;

	if (!failed(e)) {
		b = bufs_get(e);
		rc = b ? fetch_write(e, j, &b->b)
		       : snap_seterr(SNAP_ENOMEM, "out of memory");
		if (b)
			bufs_put(e, b);
		if (rc)
			fail(e, rc);
	}
	for (size_t i = 0; i < j->n; i++) {
		if (rc)
			j->it[i].f->failed = 1;
		file_put(j->it[i].f);
	}
	free(j);
}

/* An existing file met by a skip_existing restore: kept when it verifies,
 * else rewritten in place by the worker that checked it. */
struct vjob {
	struct rfile *f;
	uint64_t size;
	size_t n;
	struct chunk c[];
};

static int rewrite_file(struct reng *e, struct rfile *f, const struct vjob *v,
			struct bufset *b)
{
	struct rjob *j = malloc(sizeof(*j));
	int rc = 0;

	if (!j)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	/* Empty first, so whatever was between chunks becomes holes again. */
	if (ftruncate(f->fd, 0) || ftruncate(f->fd, (off_t)v->size))
		rc = snap_syserr(errno, "%s: setting size", f->m.rel);
	for (size_t i = 0; rc == 0 && i < v->n; i += JOB_ITEMS) {
		j->n = v->n - i < JOB_ITEMS ? v->n - i : JOB_ITEMS;
		for (size_t k = 0; k < j->n; k++) {
			j->it[k].f = f;
			j->it[k].c = v->c[i + k];
		}
		rc = fetch_write(e, j, &b->b);
	}
	free(j);
	return rc;
}

static void verify_work(void *arg)
{
	struct vjob *v = arg;
	struct rfile *f = v->f;
	struct reng *e = f->e;
	struct tent t = {.size = v->size, .chunks = v->c, .nchunks = v->n};
	struct bufset *b = NULL;
	int rc = 0, same;

	if (failed(e))
		goto out;
	b = bufs_get(e);
	if (!b) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	same = content_matches(e->r, f->fd, &t, &b->b.raw);
	if (same < 0) {
		rc = snap_preerr(same, "%s", f->m.rel);
	} else if (same) {
		__atomic_fetch_add(&e->res->files_kept, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&e->res->bytes_kept, v->size,
				   __ATOMIC_RELAXED);
		progress_add(e->o->progress, 0, v->size);
	} else {
		rc = rewrite_file(e, f, v, b);
	}
	bufs_put(e, b);
out:
	if (rc) {
		fail(e, rc);
		f->failed = 1;
	}
	file_put(f);
	free(v);
}

static void job_flush(struct reng *e)
{
	if (e->job && e->job->n)
		workq_submit(e->q, job_work, e->job);
	else
		free(e->job);
	e->job = NULL;
}

/* Queues one chunk of f; the job holds a reference to f until written. */
static int job_add(struct reng *e, struct rfile *f, const struct chunk *c)
{
	if (!e->job) {
		e->job = malloc(sizeof(*e->job));
		if (!e->job)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		e->job->n = 0;
		e->job->bytes = 0;
	}
	__atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
	e->job->it[e->job->n].f = f;
	e->job->it[e->job->n].c = *c;
	e->job->n++;
	e->job->bytes += c->r.raw;
	if (e->job->n == JOB_ITEMS || e->job->bytes >= JOB_BYTES)
		job_flush(e);
	return 0;
}

/* Waits for a free file slot.  The job being filled is queued first: its
 * files hold slots, and nothing else would ever release them. */
static int files_reserve(struct reng *e)
{
	int rc;

	pthread_mutex_lock(&e->lock);
	if (e->nfiles >= e->max_files) {
		pthread_mutex_unlock(&e->lock);
		job_flush(e);
		pthread_mutex_lock(&e->lock);
		while (e->nfiles >= e->max_files && !failed(e))
			pthread_cond_wait(&e->files_cv, &e->lock);
	}
	rc = failed(e);
	if (rc == 0)
		e->nfiles++;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

static int add_dir_meta(struct reng *e, const char *rel, uint32_t mode,
			uint32_t uid, uint32_t gid, int64_t mtime,
			const struct xattr *x, size_t nx)
{
	SNAP_TRY(array_grow(&e->dirs, &e->dircap, e->ndirs, sizeof(*e->dirs),
			    64));
	SNAP_TRY(meta_copy(&e->dirs[e->ndirs], rel, mode, uid, gid, mtime, x,
			   nx));
	e->ndirs++;
	return 0;
}

/* Creates name in dfd with create(); with overwrite, a non-directory in
 * the way is removed first. */
static int make_entry(struct reng *e, int dfd, const char *name,
		      const char *rel, int is_dir)
{
	struct stat st;

	if (!e->overwrite ||
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	if (S_ISDIR(st.st_mode)) {
		if (is_dir)
			return 0;
		return snap_seterr(SNAP_EEXIST,
				   "%s: a directory is in the way", rel);
	}
	if (unlinkat(dfd, name, 0))
		return snap_syserr(errno, "%s: removing old entry", rel);
	return 0;
}

/* With skip_existing, opens the regular file already at name for
 * verification; -1 when there is none (or it is something else). */
static int open_existing(struct reng *e, int dfd, const char *name)
{
	struct stat st;
	int fd;

	if (!e->o->skip_existing ||
	    fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
		return -1;
	fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Opens rel for writing (or, for --skip-existing, the file already there
 * into *v); one file slot is held on success. */
static int open_file(struct reng *e, int dfd, const char *rel,
		     const struct tent *t, struct vjob **v)
{
	int fd, rc;

	SNAP_TRY(files_reserve(e));
	fd = open_existing(e, dfd, t->name);
	if (fd >= 0) {
		*v = malloc(sizeof(**v) + t->nchunks * sizeof((*v)->c[0]));
		if (!*v) {
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
			goto fail;
		}
		(*v)->size = t->size;
		(*v)->n = t->nchunks;
		if (t->nchunks)
			memcpy((*v)->c, t->chunks,
			       t->nchunks * sizeof((*v)->c[0]));
		return fd;
	}
	rc = make_entry(e, dfd, t->name, rel, 0);
	if (rc)
		goto fail;
	fd = openat(dfd, t->name,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = snap_syserr(errno, "%s", rel);
		goto fail;
	}
	/* Setting the size first leaves the holes of sparse files as
	 * holes: only chunk ranges are ever written. */
	if (ftruncate(fd, (off_t)t->size) == 0)
		return fd;
	rc = snap_syserr(errno, "%s: setting size", rel);
	unlinkat(dfd, t->name, 0);
fail:
	if (fd >= 0)
		close(fd);
	files_release(e);
	return rc;
}

/* Links rel to first, the name its file was restored under.  first is
 * resolved like every other path (beneath the target, no symlinks):
 * linkat from the target root would follow a directory of first's that
 * was swapped for a symlink, and link a file from outside into the
 * restore. */
static int restore_hardlink(struct reng *e, int dfd, const char *rel,
			    const struct tent *t, const char *first)
{
	const char *base;
	int pfd, rc = 0;

	SNAP_TRY(make_entry(e, dfd, t->name, rel, 0));
	pfd = open_parent(e, first, &base);
	if (pfd < 0)
		return snap_preerr(beneath_err(errno, first), "%s: link", rel);
	if (linkat(pfd, base, dfd, t->name, 0))
		rc = snap_syserr(errno, "%s: link to %s", rel, first);
	else
		e->res->links++;
	close(pfd);
	return rc;
}

static int restore_file(struct reng *e, int dfd, const char *rel,
			const struct tent *t)
{
	const char *first = t->hardlink ? linkmap_get(&e->links, t->hardlink) : NULL;
	struct vjob *v = NULL;
	struct rfile *f;
	int fd, rc;

	if (first)
		return restore_hardlink(e, dfd, rel, t, first);
	fd = open_file(e, dfd, rel, t, &v);
	if (fd < 0)
		return fd;
	f = calloc(1, sizeof(*f));
	if (!f || meta_copy(&f->m, rel, t->mode, t->uid, t->gid, t->mtime_ns,
			    t->xattrs, t->nxattrs)) {
		free(f);
		free(v);
		close(fd);
		files_release(e);
		unlinkat(dfd, t->name, 0);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	f->e = e;
	f->fd = fd;
	f->refs = 1; /* ours, until every segment is queued */
	e->res->files++;
	if (t->hardlink)
		SNAP_TRY(linkmap_put(&e->links, t->hardlink, rel));
	if (v) {
		v->f = f;
		return workq_submit(e->q, verify_work, v);
	}
	for (size_t i = 0; i < t->nchunks && !failed(e); i++) {
		rc = job_add(e, f, &t->chunks[i]);
		if (rc) {
			f->failed = 1;
			file_put(f);
			return rc;
		}
	}
	file_put(f);
	return 0;
}

static int restore_link(struct reng *e, int dfd, const char *rel,
			const struct tent *t)
{
	struct timespec ts[2];

	SNAP_TRY(make_entry(e, dfd, t->name, rel, 0));
	if (symlinkat(t->target, dfd, t->name))
		return snap_syserr(errno, "%s: symlink", rel);
	if ((e->is_root || e->o->set_owner) &&
	    fchownat(dfd, t->name, owner_uid(e, t->uid), owner_gid(e, t->gid),
		     AT_SYMLINK_NOFOLLOW))
		return snap_syserr(errno, "%s: chown", rel);
	ns_to_times(t->mtime_ns, ts);
	if (utimensat(dfd, t->name, ts, AT_SYMLINK_NOFOLLOW))
		return snap_syserr(errno, "%s: setting times", rel);
	e->res->links++;
	progress_add(e->o->progress, 1, 0);
	return 0;
}

/* A FIFO or a device node.  It is never opened (that would act on the
 * device, or wait for a FIFO's writer), so its metadata is set by name in
 * dfd without following a symlink, the xattrs through /proc/self/fd
 * since there is no lsetxattrat().  As tar and restic do, a device that
 * may not be made (EPERM: not root) is a warning and the restore goes on,
 * incomplete (exit status 3). */
static int restore_node(struct reng *e, int dfd, const char *rel,
			const struct tent *t)
{
	struct meta m = {.rel = (char *)rel, .xattrs = t->xattrs,
			 .nxattrs = t->nxattrs};
	dev_t dev = t->type == ET_FIFO ? 0
				       : makedev(t->rdev_major, t->rdev_minor);
	struct timespec ts[2];
	char path[4200];

	SNAP_TRY(make_entry(e, dfd, t->name, rel, 0));
	if (mknodat(dfd, t->name, ent_ifmt(t->type) | 0600, dev)) {
		if (errno != EPERM || t->type == ET_FIFO)
			return snap_syserr(errno, "%s: mknod", rel);
		warn(e, "%s: device not restored: %s", rel, strerror(errno));
		return 0;
	}
	if ((e->is_root || e->o->set_owner) &&
	    fchownat(dfd, t->name, owner_uid(e, t->uid), owner_gid(e, t->gid),
		     AT_SYMLINK_NOFOLLOW))
		return snap_syserr(errno, "%s: chown", rel);
	if (t->nxattrs) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dfd,
			 t->name);
		SNAP_TRY(set_xattrs(e, -1, path, &m));
	}
	if (fchmodat(dfd, t->name, t->mode & 07777, AT_SYMLINK_NOFOLLOW))
		return snap_syserr(errno, "%s: chmod", rel);
	ns_to_times(t->mtime_ns, ts);
	if (utimensat(dfd, t->name, ts, AT_SYMLINK_NOFOLLOW))
		return snap_syserr(errno, "%s: setting times", rel);
	e->res->specials++;
	progress_add(e->o->progress, 1, 0);
	return 0;
}

static int restore_tree(struct reng *e, int dfd, const char *rel,
			const struct tree *t);

/* Creates directory name (recorded for its metadata at the end) and
 * returns an fd for it in *out that cannot be a symlink.  On failure *out
 * is -1 and nothing is left open: callers close what they got either way,
 * and a stale number would close a descriptor a worker owns. */
static int make_dir(struct reng *e, int dfd, const char *name, const char *rel,
		    uint32_t mode, uint32_t uid, uint32_t gid, int64_t mtime,
		    const struct xattr *x, size_t nx, int *out)
{
	int fd, rc;

	*out = -1;
	SNAP_TRY(make_entry(e, dfd, name, rel, 1));
	if (mkdirat(dfd, name, 0700) && !(errno == EEXIST && e->overwrite))
		return snap_syserr(errno, "%s: mkdir", rel);
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return beneath_err(errno, rel);
	rc = add_dir_meta(e, rel, mode, uid, gid, mtime, x, nx);
	if (rc) {
		close(fd);
		return rc;
	}
	e->res->dirs++;
	*out = fd;
	return 0;
}

/* Restores one entry; a directory's tree comes from the walk's window
 * (w may be NULL: fetched on the spot). */
static int restore_entry(struct reng *e, int dfd, const char *rel,
			 const struct tent *t, struct tf_window *w,
			 size_t index)
{
	struct tree sub;
	int fd, rc;

	switch (t->type) {
	case ET_REG:
		return restore_file(e, dfd, rel, t);
	case ET_LNK:
		return restore_link(e, dfd, rel, t);
	case ET_FIFO:
	case ET_CHR:
	case ET_BLK:
		return restore_node(e, dfd, rel, t);
	case ET_DIR:
		SNAP_TRY(make_dir(e, dfd, t->name, rel, t->mode, t->uid, t->gid,
				  t->mtime_ns, t->xattrs, t->nxattrs, &fd));
		rc = w ? tfw_take(w, index, &sub)
		       : repo_read_tree(e->r, e->series, &t->sub, &sub);
		if (rc == 0) {
			rc = restore_tree(e, fd, rel, &sub);
			tree_free(&sub);
		}
		close(fd);
		return rc;
	}
	return snap_seterr(SNAP_ECORRUPT, "%s: unknown entry type", rel);
}

static int restore_tree(struct reng *e, int dfd, const char *rel,
			const struct tree *t)
{
	struct tf_window w;
	char *crel = NULL;
	int rc;

	rc = tfw_open(&w, e->tf, t, PREFETCH_TREES);
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		rc = path_join(&crel, rel, t->ents[i].name);
		if (rc)
			break;
		rc = restore_entry(e, dfd, crel, &t->ents[i], &w, i);
		if (rc == 0 && failed(e))
			rc = failed(e);
	}
	tfw_close(&w);
	free(crel);
	return rc;
}

/* Restores opts->path (or everything) of one group into TARGET/<group>. */
static int restore_group(struct reng *e, const struct mgroup *g)
{
	struct tree t, next;
	char *path = NULL, *comp, *save = NULL, *rel = NULL;
	const struct tent *ent = NULL;
	const char *gname = g->name;
	int gfd, dfd, fd, rc;

	linkmap_reset(&e->links);
	if (e->o->flat) {
		/* The target is the group's root: paths are relative to it. */
		gname = "";
		gfd = dup(e->rootfd);
		if (gfd < 0)
			return snap_syserr(errno, "%s", e->o->target);
		rc = add_dir_meta(e, "", g->mode, g->uid, g->gid, g->mtime_ns,
				  g->xattrs, g->nxattrs);
		if (rc) {
			close(gfd);
			return rc;
		}
	} else {
		SNAP_TRY(make_dir(e, e->rootfd, g->name, g->name, g->mode,
				  g->uid, g->gid, g->mtime_ns, g->xattrs,
				  g->nxattrs, &gfd));
	}
	rc = repo_read_tree(e->r, e->series, &g->root, &t);
	if (rc) {
		close(gfd);
		return rc;
	}
	if (!e->o->path || !*e->o->path || !strcmp(e->o->path, "/")) {
		rc = restore_tree(e, gfd, gname, &t);
		goto out;
	}
	/* Walk down to the requested path, creating its parents. */
	path = strdup(e->o->path);
	rel = strdup(gname);
	if (!path || !rel) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	dfd = gfd;
	for (comp = strtok_r(path, "/", &save); comp;) {
		char *nextc = strtok_r(NULL, "/", &save);
		char *nrel;

		ent = tree_find(&t, comp);
		if (!ent) {
			rc = snap_seterr(SNAP_ENOENT,
					 "%s/%s: no such file or directory in "
					 "the backup",
					 rel, comp);
			break;
		}
		nrel = NULL;
		rc = path_join(&nrel, rel, comp);
		if (rc)
			break;
		free(rel);
		rel = nrel;
		if (!nextc) {
			rc = restore_entry(e, dfd, rel, ent, NULL, 0);
			break;
		}
		if (ent->type != ET_DIR) {
			rc = snap_seterr(SNAP_ENOENT, "%s: not a directory",
					 rel);
			break;
		}
		rc = make_dir(e, dfd, ent->name, rel, ent->mode, ent->uid,
			      ent->gid, ent->mtime_ns, ent->xattrs,
			      ent->nxattrs, &fd);
		rc = rc ? rc : repo_read_tree(e->r, e->series, &ent->sub, &next);
		if (dfd != gfd)
			close(dfd);
		dfd = fd; /* -1 when make_dir failed */
		if (rc)
			break;
		tree_free(&t);
		t = next;
		comp = nextc;
	}
	if (dfd != gfd && dfd >= 0)
		close(dfd);
out:
	tree_free(&t);
	close(gfd);
	free(path);
	free(rel);
	return rc;
}

/* Applies directory metadata deepest first, now that nothing more will be
 * written into them. */
static int finish_dirs(struct reng *e)
{
	int rc = 0;

	for (size_t i = e->ndirs; i-- > 0 && rc == 0;) {
		int fd = open_beneath(e->rootfd, e->dirs[i].rel,
				      O_RDONLY | O_DIRECTORY);

		if (fd < 0)
			return beneath_err(errno, e->dirs[i].rel);
		rc = apply_meta(e, fd, &e->dirs[i]);
		close(fd);
	}
	return rc;
}

static int open_target(struct reng *e)
{
	const char *t = e->o->target;
	struct dirent *de;
	DIR *d;
	int fd, dup_fd, nonempty = 0;

	if (!t || !*t)
		return snap_seterr(SNAP_EINVAL, "no --target given");
	if (mkdir(t, 0700) && errno != EEXIST)
		return snap_syserr(errno, "target %s", t);
	fd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return snap_syserr(errno, "target %s", t);
	dup_fd = dup(fd);
	d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			nonempty = 1;
	if (d)
		closedir(d);
	if (nonempty && !e->overwrite) {
		close(fd);
		return snap_seterr(SNAP_EEXIST,
				   "target %s is not empty (use --overwrite "
				   "or --skip-existing to restore into it)",
				   t);
	}
	e->rootfd = fd;
	return 0;
}

int restore_run(struct repo *r, const char *series, uint32_t num,
		const struct restore_opts *o, struct restore_result *res)
{
	struct reng e = {.r = r, .o = o, .res = res, .series = series,
			 .rootfd = -1};
	struct manifest m;
	uint64_t tf = 0, tb = 0;
	size_t matched = 0;
	double t0 = mono_sec();
	int rc, threads;

	memset(res, 0, sizeof(*res));
	e.overwrite = o->overwrite || o->skip_existing;
	if (o->flat && !o->group)
		return snap_seterr(SNAP_EINVAL,
				   "restoring a group as the target itself "
				   "needs the group named");
	errstate_init(&e.es, o->warn, o->warn_ctx);
	pthread_mutex_init(&e.lock, NULL);
	pthread_cond_init(&e.files_cv, NULL);
	e.max_files = max_open_files();
	rc = repo_load_manifest(r, series, num, &m);
	if (rc)
		goto out_nom;
	for (size_t g = 0; g < m.ngroups; g++) {
		if (o->group && strcmp(o->group, m.groups[g].name))
			continue;
		matched++;
		tf += m.groups[g].files;
		tb += m.groups[g].bytes;
	}
	if (!matched) {
		rc = snap_seterr(SNAP_ENOENT, "backup %s/%u has no group '%s'",
				 series, num, o->group ? o->group : "");
		goto out;
	}
	if (!o->path)
		progress_totals(o->progress, tf, tb, 1);
	rc = open_target(&e);
	if (rc)
		goto out;
	e.is_root = geteuid() == 0;
	threads = o->threads > 0 ? o->threads : 2 * cpu_count();
	rc = workq_create(&e.q, threads, 2 * threads);
	rc = rc ? rc : treefetch_new(r, series, threads, &e.tf);
	if (rc)
		goto out;
	for (size_t g = 0; g < m.ngroups && rc == 0; g++) {
		if (o->group && strcmp(o->group, m.groups[g].name))
			continue;
		rc = restore_group(&e, &m.groups[g]);
	}
	if (rc)
		fail(&e, rc);
	job_flush(&e);
	workq_wait(e.q);
	if (!failed(&e)) {
		rc = finish_dirs(&e);
		if (rc)
			fail(&e, rc);
	}
	rc = errstate_result(&e.es);
	res->elapsed = mono_sec() - t0;
out:
	treefetch_free(e.tf);
	workq_destroy(e.q);
	manifest_free(&m);
out_nom:
	while (e.free_bufs) {
		struct bufset *b = e.free_bufs;

		e.free_bufs = b->next;
		blob_bufs_free(&b->b);
		free(b);
	}
	for (size_t i = 0; i < e.ndirs; i++)
		meta_free(&e.dirs[i]);
	free(e.dirs);
	linkmap_free(&e.links);
	if (e.rootfd >= 0)
		close(e.rootfd);
	pthread_cond_destroy(&e.files_cv);
	pthread_mutex_destroy(&e.lock);
	res->warnings = e.es.warnings;
	errstate_destroy(&e.es);
	return rc;
}

/* --- verification ------------------------------------------------------*/

struct vstate {
	struct repo *r;
	const char *series;
	struct restore_result *res;
	struct buf b;
};

static int differs(const char *rel, const char *what)
{
	return snap_seterr(SNAP_ECORRUPT, "verification failed: %s: %s",
			   *rel ? rel : ".", what);
}

static int verify_tree(struct vstate *v, int dfd, const char *rel,
		       const struct tree *t);

static int verify_entry(struct vstate *v, int dfd, const char *rel,
			const struct tent *t)
{
	char target[4097];
	struct tree sub;
	struct stat st;
	ssize_t n;
	int fd, rc;

	if (fstatat(dfd, t->name, &st, AT_SYMLINK_NOFOLLOW))
		return errno == ENOENT ? differs(rel, "missing")
				       : snap_syserr(errno, "%s", rel);
	if ((st.st_mode & S_IFMT) != (t->mode & S_IFMT))
		return differs(rel, "not of the type backed up");
	if (t->type != ET_LNK && (st.st_mode & 07777) != (t->mode & 07777))
		return differs(rel, "permissions differ");
	switch (t->type) {
	case ET_LNK:
		n = readlinkat(dfd, t->name, target, sizeof(target) - 1);
		if (n < 0)
			return snap_syserr(errno, "%s", rel);
		target[n] = 0;
		if (strcmp(target, t->target))
			return differs(rel, "symlink target differs");
		v->res->links++;
		return 0;
	case ET_REG:
		fd = openat(dfd, t->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return snap_syserr(errno, "%s", rel);
		rc = content_matches(v->r, fd, t, &v->b);
		close(fd);
		if (rc < 0)
			return snap_preerr(rc, "%s", rel);
		if (rc == 0)
			return differs(rel, "contents differ");
		v->res->files++;
		v->res->bytes += t->size;
		return 0;
	case ET_FIFO:
	case ET_CHR:
	case ET_BLK:
		if (t->type != ET_FIFO &&
		    st.st_rdev != makedev(t->rdev_major, t->rdev_minor))
			return differs(rel, "device number differs");
		v->res->specials++;
		return 0;
	default:
		fd = openat(dfd, t->name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return snap_syserr(errno, "%s", rel);
		rc = repo_read_tree(v->r, v->series, &t->sub, &sub);
		if (rc == 0) {
			rc = verify_tree(v, fd, rel, &sub);
			tree_free(&sub);
		}
		close(fd);
		return rc;
	}
}

static int verify_tree(struct vstate *v, int dfd, const char *rel,
		       const struct tree *t)
{
	char *crel = NULL;
	struct dirent *de;
	int fd = dup(dfd), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return snap_syserr(errno, "%s", *rel ? rel : ".");
	}
	/* Nothing more than the backup holds... */
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!tree_find(t, de->d_name)) {
			rc = path_join(&crel, rel, de->d_name);
			rc = rc ? rc : differs(crel, "not in the backup");
		}
	}
	closedir(d);
	/* ...and all of it, as it was. */
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		rc = path_join(&crel, rel, t->ents[i].name);
		rc = rc ? rc : verify_entry(v, dfd, crel, &t->ents[i]);
	}
	if (rc == 0)
		v->res->dirs++;
	free(crel);
	return rc;
}

int restore_verify(struct repo *r, const char *series, uint32_t num,
		   const char *group, const char *dir,
		   struct restore_result *res)
{
	struct vstate v = {.r = r, .series = series, .res = res};
	const struct mgroup *g = NULL;
	struct manifest m;
	struct tree t;
	double t0 = mono_sec();
	int fd, rc;

	memset(res, 0, sizeof(*res));
	SNAP_TRY(repo_load_manifest(r, series, num, &m));
	for (size_t i = 0; i < m.ngroups; i++)
		if (!strcmp(m.groups[i].name, group))
			g = &m.groups[i];
	if (!g) {
		rc = snap_seterr(SNAP_ENOENT, "backup %s/%u has no group '%s'",
				 series, num, group);
		goto out;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = snap_syserr(errno, "%s", dir);
		goto out;
	}
	rc = repo_read_tree(r, series, &g->root, &t);
	if (rc == 0) {
		rc = verify_tree(&v, fd, "", &t);
		tree_free(&t);
	}
	close(fd);
	res->elapsed = mono_sec() - t0;
out:
	buf_free(&v.b);
	manifest_free(&m);
	return rc;
}
