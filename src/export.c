/* export.c - backups as tar archives; see export.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "err.h"
#include "export.h"
#include "treefetch.h"
#include "workq.h"

#define BATCH_BYTES (4u << 20) /* plaintext fetched by one job */
/* Many to a batch: a batch is one ranged read per pack it touches, and
 * small files side by side in a pack then share it (see restore.c). */
#define BATCH_ITEMS 2048
#define DIRS_AHEAD 1024    /* directories planned ahead of the writer */
#define PREFETCH_TREES 16  /* subdirectory trees fetched ahead per level */
#define ZEROS (1u << 20)

static const uint8_t zeros[ZEROS];

struct batch {
	struct xeng *x;
	size_t n;
	const struct chunk *c[BATCH_ITEMS];
	size_t off[BATCH_ITEMS];
	uint8_t *data;
	int done;
};

/*
 * A directory in archive order: its files and symlinks, then each of its
 * subdirectories the same way (preorder).  The walk plans directories
 * ahead of the writer, so that the chunks of the next files, across
 * directory boundaries, are being fetched while this one is written.
 * refs: the writer's queue, the walk's stack, the planner's cursor, and
 * each child (whose header is its entry in our tree).
 */
struct xdir {
	struct xdir *next; /* the writer's queue */
	struct xdir *parent;
	const struct tent *self; /* in parent->t; NULL: header written by
				    the caller */
	char *path;
	struct tree t;
	const char **hard; /* per entry: the first name of a hardlink */
	struct tf_window w; /* subtrees, while on the walk's stack */
	size_t next_sub;
	int refs;
};

struct xeng {
	struct repo *r;
	const char *series;
	const struct export_opts *o;
	struct export_result *res;
	struct archive *a;
	struct archive_entry *ent;
	struct workq *q;
	struct treefetch *tf;
	struct errstate es;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int dcos;

	/* the walk: directories whose subdirectories are still to visit */
	struct xdir **stack;
	size_t depth, stackcap;
	/* directories planned and not yet written, in archive order */
	struct xdir *qhead, *qtail;
	size_t queued;
	/* the planner: next chunk to fetch (a directory, entry, chunk), and
	 * one that did not fit the last batch */
	struct xdir *pdir;
	size_t pent, pchunk;
	const struct chunk *carry;
	/* batches in flight, consumed in order; `took` items of the oldest
	 * are written */
	struct batch *ring;
	size_t window, made, used, took;

	struct linkmap links; /* hardlink id -> first name, per group */
};

static int copy_chunk(void *ctx, size_t i, const uint8_t *raw, size_t len)
{
	struct batch *b = ctx;

	memcpy(b->data + b->off[i], raw, len);
	return 0;
}

static void batch_work(void *arg)
{
	struct batch *b = arg;
	struct xeng *x = b->x;
	const struct ref *refs[BATCH_ITEMS];
	struct blob_bufs bb = {BUF_INIT, BUF_INIT, BUF_INIT};
	int rc = 0;

	if (!errstate_failed(&x->es)) {
		for (size_t i = 0; i < b->n; i++)
			refs[i] = &b->c[i]->r;
		rc = repo_read_blobs(x->r, x->series, refs, b->n, copy_chunk,
				     b, &bb);
		if (rc)
			errstate_fail(&x->es, rc);
	}
	blob_bufs_free(&bb);
	pthread_mutex_lock(&x->lock);
	b->done = 1;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->lock);
}

/* dcos-zk leaves out what identifies or logs the node. */
static int excluded(const struct xeng *x, const struct tent *t)
{
	return x->dcos && (!strcmp(t->name, "myid") ||
			   !strcmp(t->name, "zookeeper.out"));
}

/* Drops one reference; the last frees d and drops its parent's. */
static void xdir_put(struct xdir *d)
{
	while (d && --d->refs == 0) {
		struct xdir *parent = d->parent;

		tree_free(&d->t);
		free(d->hard);
		free(d->path);
		free(d);
		d = parent;
	}
}

/* Queues directory path (tree t, taken over) for writing and pushes it on
 * the walk's stack.  Hardlinks are resolved here, in archive order. */
static int add_dir(struct xeng *x, struct xdir *parent,
		   const struct tent *self, const char *path, struct tree *t)
{
	struct xdir *d = calloc(1, sizeof(*d));
	char *name = NULL;
	int rc = 0;

	if (!d) {
		tree_free(t);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	d->t = *t;
	memset(t, 0, sizeof(*t));
	d->parent = parent;
	d->self = self;
	d->refs = 2; /* queue, stack */
	d->path = strdup(path);
	d->hard = calloc(d->t.n ? d->t.n : 1, sizeof(*d->hard));
	if (!d->path || !d->hard ||
	    array_grow(&x->stack, &x->stackcap, x->depth, sizeof(*x->stack),
		       16)) {
		d->refs = 1;
		xdir_put(d);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < d->t.n && rc == 0; i++) {
		const struct tent *e = &d->t.ents[i];

		if (e->type != ET_REG || !e->hardlink || excluded(x, e))
			continue;
		d->hard[i] = linkmap_get(&x->links, e->hardlink);
		if (!d->hard[i]) {
			rc = path_join(&name, path, e->name);
			rc = rc ? rc : linkmap_put(&x->links, e->hardlink, name);
		}
	}
	free(name);
	rc = rc ? rc : tfw_open(&d->w, x->tf, &d->t, PREFETCH_TREES);
	if (rc) {
		d->refs = 1;
		xdir_put(d);
		return rc;
	}
	if (parent)
		parent->refs++;
	x->stack[x->depth++] = d;
	if (x->qtail)
		x->qtail->next = d;
	else
		x->qhead = d;
	x->qtail = d;
	x->queued++;
	return 0;
}

static void pop_dir(struct xeng *x)
{
	struct xdir *d = x->stack[--x->depth];

	tfw_close(&d->w);
	xdir_put(d);
}

/* Plans the next directory of the walk; *more = 0 once there is none. */
static int discover(struct xeng *x, int *more)
{
	char *path = NULL;
	int rc;

	while (x->depth) {
		struct xdir *d = x->stack[x->depth - 1];
		struct tree sub = {0};
		size_t i;

		while (d->next_sub < d->t.n &&
		       d->t.ents[d->next_sub].type != ET_DIR)
			d->next_sub++;
		if (d->next_sub == d->t.n) {
			pop_dir(x);
			continue;
		}
		i = d->next_sub++;
		rc = tfw_take(&d->w, i, &sub);
		rc = rc ? rc : path_join(&path, d->path, d->t.ents[i].name);
		rc = rc ? rc : add_dir(x, d, &d->t.ents[i], path, &sub);
		tree_free(&sub); /* add_dir took it, unless a step failed */
		free(path);
		*more = 1;
		return rc;
	}
	*more = 0;
	return 0;
}

/* The planner's next chunk in archive order (NULL: none for now, at the
 * end of the walk or DIRS_AHEAD directories ahead of the writer). */
static int next_chunk(struct xeng *x, const struct chunk **c)
{
	int more;

	*c = NULL;
	for (;;) {
		struct xdir *d = x->pdir;

		for (; d && x->pent < d->t.n; x->pent++, x->pchunk = 0) {
			const struct tent *e = &d->t.ents[x->pent];

			if (e->type == ET_REG && !excluded(x, e) &&
			    !d->hard[x->pent] && x->pchunk < e->nchunks) {
				*c = &e->chunks[x->pchunk++];
				return 0;
			}
		}
		if (!(d ? d->next : x->qhead)) {
			if (x->queued >= DIRS_AHEAD)
				return 0;
			SNAP_TRY(discover(x, &more));
			if (!more)
				return 0;
		}
		x->pdir = d ? d->next : x->qhead;
		x->pdir->refs++;
		x->pent = x->pchunk = 0;
		xdir_put(d);
	}
}

/* Fills and queues batches until the window is full or the planner has
 * nothing more for now. */
static int plan(struct xeng *x)
{
	while (x->made - x->used < x->window) {
		struct batch *b = &x->ring[x->made % x->window];
		size_t bytes = 0;
		const struct chunk *c;

		b->x = x;
		b->n = 0;
		b->done = 0;
		while (b->n < BATCH_ITEMS) {
			c = x->carry;
			x->carry = NULL;
			if (!c)
				SNAP_TRY(next_chunk(x, &c));
			if (!c)
				break;
			if (b->n && bytes + c->r.raw > BATCH_BYTES) {
				x->carry = c;
				break;
			}
			b->c[b->n] = c;
			b->off[b->n++] = bytes;
			bytes += c->r.raw;
		}
		if (!b->n)
			return 0;
		b->data = malloc(bytes ? bytes : 1);
		if (!b->data)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		x->made++;
		SNAP_TRY(workq_submit(x->q, batch_work, b));
		if (!x->carry && b->n < BATCH_ITEMS)
			return 0; /* the planner ran dry */
	}
	return 0;
}

/* The plaintext of the next chunk the writer needs. */
static int next_data(struct xeng *x, const uint8_t **p)
{
	for (;;) {
		struct batch *b = &x->ring[x->used % x->window];

		if (x->used == x->made) {
			SNAP_TRY(plan(x));
			if (x->used == x->made)
				return snap_seterr(SNAP_ECORRUPT,
						   "export: chunk plan and "
						   "archive disagree");
			continue;
		}
		pthread_mutex_lock(&x->lock);
		while (!b->done)
			pthread_cond_wait(&x->cv, &x->lock);
		pthread_mutex_unlock(&x->lock);
		if (errstate_failed(&x->es))
			return errstate_result(&x->es);
		if (x->took < b->n) {
			*p = b->data + b->off[x->took++];
			return 0;
		}
		free(b->data);
		b->data = NULL;
		x->used++;
		x->took = 0;
		SNAP_TRY(plan(x));
	}
}

/* Waits for every batch in flight and forgets the walk. */
static void drain(struct xeng *x)
{
	if (x->q)
		workq_wait(x->q);
	for (; x->used < x->made; x->used++) {
		free(x->ring[x->used % x->window].data);
		x->ring[x->used % x->window].data = NULL;
	}
	x->made = x->used = x->took = 0;
	x->carry = NULL;
	xdir_put(x->pdir);
	x->pdir = NULL;
	while (x->qhead) {
		struct xdir *d = x->qhead;

		x->qhead = d->next;
		xdir_put(d);
	}
	x->qtail = NULL;
	x->queued = 0;
	while (x->depth)
		pop_dir(x);
}

static int archive_fail(struct xeng *x, const char *what)
{
	int e = archive_errno(x->a);

	return snap_syserr(e > 0 ? e : EIO, "%s: %s", what,
			   archive_error_string(x->a)
				   ? archive_error_string(x->a)
				   : "archive error");
}

static int write_all(struct xeng *x, const uint8_t *p, uint64_t n,
		     const char *name)
{
	while (n) {
		la_ssize_t w = archive_write_data(x->a, p, n);

		if (w <= 0)
			return archive_fail(x, name);
		if (p != zeros)
			p += w;
		n -= w;
	}
	return 0;
}

static int zero_fill(struct xeng *x, uint64_t n, const char *name)
{
	while (n) {
		uint64_t k = n < ZEROS ? n : ZEROS;

		SNAP_TRY(write_all(x, zeros, k, name));
		n -= k;
	}
	return 0;
}

/* A header for name from t's metadata. */
static int put_header(struct xeng *x, const char *name, const struct tent *t,
		      const char *hardlink)
{
	struct archive_entry *e = x->ent;
	int64_t sec = t->mtime_ns / 1000000000, ns = t->mtime_ns % 1000000000;

	if (ns < 0) {
		sec--;
		ns += 1000000000;
	}
	archive_entry_clear(e);
	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, t->mode);
	archive_entry_set_uid(e, t->uid);
	archive_entry_set_gid(e, t->gid);
	archive_entry_set_mtime(e, sec, ns);
	for (size_t i = 0; i < t->nxattrs; i++)
		archive_entry_xattr_add_entry(e, t->xattrs[i].name,
					      t->xattrs[i].val,
					      t->xattrs[i].len);
	if (hardlink) {
		archive_entry_set_hardlink(e, hardlink);
		archive_entry_set_size(e, 0);
	} else if (t->type == ET_LNK) {
		archive_entry_set_symlink(e, t->target);
	} else if (t->type == ET_CHR || t->type == ET_BLK) {
		archive_entry_set_rdevmajor(e, t->rdev_major);
		archive_entry_set_rdevminor(e, t->rdev_minor);
	} else if (t->type == ET_REG) {
		uint64_t data = 0;

		archive_entry_set_size(e, t->size);
		for (size_t i = 0; i < t->nchunks; i++)
			data += t->chunks[i].r.raw;
		/* Holes: list the data regions (adjacent chunks merged). */
		for (size_t i = 0; data < t->size && i < t->nchunks;) {
			uint64_t start = t->chunks[i].off;
			uint64_t end = start + t->chunks[i].r.raw;

			while (++i < t->nchunks && t->chunks[i].off == end)
				end += t->chunks[i].r.raw;
			archive_entry_sparse_add_entry(e, start, end - start);
		}
		if (data < t->size && !t->nchunks)
			archive_entry_sparse_add_entry(e, t->size, 0);
	}
	/* ARCHIVE_WARN: a name that is not UTF-8 went out as raw bytes
	 * (hdrcharset=BINARY, for this member alone), which is what it is. */
	if (archive_write_header(x->a, e) < ARCHIVE_WARN)
		return archive_fail(x, name);
	return 0;
}

/* Writes the entries of d other than subdirectories (those come later,
 * as directories of their own). */
static int write_dir(struct xeng *x, struct xdir *d)
{
	char *path = NULL;
	int rc = 0;

	x->res->dirs++;
	if (d->self)
		rc = put_header(x, d->path, d->self, NULL);
	for (size_t i = 0; i < d->t.n && rc == 0; i++) {
		const struct tent *e = &d->t.ents[i];
		uint64_t pos = 0;

		if (e->type == ET_DIR || excluded(x, e))
			continue;
		rc = path_join(&path, d->path, e->name);
		rc = rc ? rc : put_header(x, path, e, d->hard[i]);
		if (rc || e->type != ET_REG || d->hard[i]) {
			if (e->type == ET_REG || e->type == ET_LNK)
				x->res->links += !rc;
			else
				x->res->specials += !rc;
			continue;
		}
		for (size_t c = 0; c < e->nchunks && rc == 0; c++) {
			const uint8_t *p = NULL;

			rc = zero_fill(x, e->chunks[c].off - pos, path);
			rc = rc ? rc : next_data(x, &p);
			rc = rc ? rc
				: write_all(x, p, e->chunks[c].r.raw, path);
			pos = e->chunks[c].off + e->chunks[c].r.raw;
		}
		rc = rc ? rc : zero_fill(x, e->size - pos, path);
		x->res->files++;
		x->res->bytes += e->size;
		progress_add(x->o->progress, 1, e->size);
	}
	free(path);
	return rc;
}

/* Writes the tree t (taken over) as directory path and everything below
 * it, in archive order, the walk planning ahead of the writer. */
static int export_tree(struct xeng *x, const char *path, struct tree *t)
{
	int rc = add_dir(x, NULL, NULL, path, t), more = 1;

	while (rc == 0) {
		struct xdir *d = x->qhead;

		if (!d) {
			rc = discover(x, &more);
			if (rc || !more)
				break;
			continue;
		}
		rc = write_dir(x, d);
		x->qhead = d->next;
		if (!x->qhead)
			x->qtail = NULL;
		x->queued--;
		/* Every chunk of d is written, so the planner is past it:
		 * it goes on from the head of the queue. */
		if (x->pdir == d) {
			x->pdir = NULL;
			xdir_put(d);
		}
		xdir_put(d);
	}
	drain(x);
	return rc;
}

static int export_group(struct xeng *x, const struct mgroup *g)
{
	struct tent root = {.type = ET_DIR, .mode = g->mode, .uid = g->uid,
			    .gid = g->gid, .mtime_ns = g->mtime_ns,
			    .xattrs = g->xattrs, .nxattrs = g->nxattrs};
	const char *name = x->o->group ? "." : g->name;
	struct tree t, sub = {0};
	const struct tent *zk;
	int rc;

	linkmap_reset(&x->links);
	SNAP_TRY(repo_read_tree(x->r, x->series, &g->root, &t));
	if (x->dcos) {
		zk = tree_find(&t, "zookeeper");
		if (!zk || zk->type != ET_DIR) {
			tree_free(&t);
			return snap_seterr(SNAP_EINVAL,
					   "group '%s' has no zookeeper/ "
					   "directory: not a DC/OS ZooKeeper "
					   "backup",
					   g->name);
		}
		rc = repo_read_tree(x->r, x->series, &zk->sub, &sub);
		rc = rc ? rc : put_header(x, "./zookeeper", zk, NULL);
		rc = rc ? rc : export_tree(x, "./zookeeper", &sub);
		tree_free(&sub);
	} else {
		rc = put_header(x, name, &root, NULL);
		rc = rc ? rc : export_tree(x, name, &t);
	}
	tree_free(&t);
	return rc;
}

static const struct {
	const char *suffix;
	int (*filter)(struct archive *);
} kinds[] = {
	{".tar.gz", archive_write_add_filter_gzip},
	{".tgz", archive_write_add_filter_gzip},
	{".tar.zst", archive_write_add_filter_zstd},
	{".tzst", archive_write_add_filter_zstd},
	{".tar.xz", archive_write_add_filter_xz},
	{".txz", archive_write_add_filter_xz},
	{".tar.bz2", archive_write_add_filter_bzip2},
	{".tbz2", archive_write_add_filter_bzip2},
	{".tar.lz4", archive_write_add_filter_lz4},
	{".tar", archive_write_add_filter_none},
};

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* Format and compression from opts->format or the output's name. */
static int choose_filter(struct xeng *x)
{
	const char *f = x->o->format;

	if (f && !strcmp(f, "dcos-zk")) {
		x->dcos = 1;
		f = "tar.gz";
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (f ? strcmp(f, kinds[i].suffix + 1)
		      : !ends_with(x->o->output, kinds[i].suffix))
			continue;
		if (kinds[i].filter(x->a) != ARCHIVE_OK)
			return archive_fail(x, kinds[i].suffix);
		return 0;
	}
	if (f)
		return snap_seterr(SNAP_EINVAL,
				   "unknown format '%s' (tar, tar.gz, tar.zst, "
				   "tar.xz, tar.bz2, tar.lz4 or dcos-zk)",
				   f);
	return 0; /* plain tar */
}

int export_run(struct repo *r, const char *series, uint32_t num,
	       const struct export_opts *o, struct export_result *res)
{
	struct xeng x = {.r = r, .series = series, .o = o, .res = res};
	char *tmp = NULL;
	struct manifest m;
	size_t matched = 0;
	double t0 = mono_sec();
	int rc, threads, to_stdout = !strcmp(o->output, "-");
	locale_t loc;

	memset(res, 0, sizeof(*res));
	SNAP_TRY(repo_load_manifest(r, series, num, &m));
	loc = utf8_ctype_begin();
	errstate_init(&x.es, NULL, NULL);
	pthread_mutex_init(&x.lock, NULL);
	pthread_cond_init(&x.cv, NULL);
	threads = o->threads > 0 ? o->threads : 4;
	x.window = 2 * threads;
	x.ring = calloc(x.window, sizeof(*x.ring));
	x.a = archive_write_new();
	x.ent = archive_entry_new();
	if (!x.ring || !x.a || !x.ent) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t g = 0; g < m.ngroups; g++)
		matched += !o->group || !strcmp(o->group, m.groups[g].name);
	rc = choose_filter(&x);
	if (rc == 0 && (!matched || (x.dcos && matched != 1)))
		rc = x.dcos && !o->group
			     ? snap_seterr(SNAP_EINVAL,
					   "backup %s/%u has %zu groups: "
					   "choose one with --group",
					   series, num, m.ngroups)
			     : snap_seterr(SNAP_ENOENT,
					   "backup %s/%u has no group '%s'",
					   series, num, o->group ? o->group : "");
	rc = rc ? rc : workq_create(&x.q, threads, x.window);
	rc = rc ? rc : treefetch_new(r, series, threads, &x.tf);
	if (rc)
		goto out;
	/* Full pax, not pax_restricted: the restricted form writes plain
	 * ustar headers for ordinary members, and they drop the nanoseconds
	 * of every mtime.  Extended attributes as SCHILY.xattr records only,
	 * the ones GNU tar --xattrs reads (libarchive reads them too). */
	archive_write_set_format_pax(x.a);
	if (archive_write_set_format_option(x.a, "pax", "xattrheader",
					    "SCHILY") != ARCHIVE_OK) {
		rc = archive_fail(&x, "tar format");
		goto out;
	}
	if (to_stdout) {
		if (archive_write_open_fd(x.a, STDOUT_FILENO) != ARCHIVE_OK)
			rc = archive_fail(&x, "standard output");
	} else {
		if (asprintf(&tmp, "%s.partial", o->output) < 0) {
			tmp = NULL;
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		} else if (archive_write_open_filename(x.a, tmp) !=
			   ARCHIVE_OK) {
			rc = archive_fail(&x, tmp);
		}
	}
	for (size_t g = 0; g < m.ngroups && rc == 0; g++)
		if (!o->group || !strcmp(o->group, m.groups[g].name))
			rc = export_group(&x, &m.groups[g]);
	if (rc == 0 && archive_write_close(x.a) != ARCHIVE_OK)
		rc = archive_fail(&x, to_stdout ? "standard output" : tmp);
	if (rc == 0 && tmp && rename(tmp, o->output))
		rc = snap_syserr(errno, "renaming %s", tmp);
	res->elapsed = mono_sec() - t0;
out:
	drain(&x);
	workq_destroy(x.q);
	treefetch_free(x.tf);
	if (x.a)
		archive_write_free(x.a);
	if (rc && tmp)
		unlink(tmp);
	free(tmp);
	if (x.ent)
		archive_entry_free(x.ent);
	free(x.ring);
	free(x.stack);
	linkmap_free(&x.links);
	pthread_mutex_destroy(&x.lock);
	pthread_cond_destroy(&x.cv);
	errstate_destroy(&x.es);
	manifest_free(&m);
	utf8_ctype_end(loc);
	return rc;
}
