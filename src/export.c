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
#include "workq.h"

#define BATCH_BYTES (4u << 20) /* plaintext fetched by one job */
#define BATCH_ITEMS 256
#define ZEROS (1u << 20)

static const uint8_t zeros[ZEROS];

/* One chunk of a file, in the order the archive needs them. */
struct item {
	const struct chunk *c;
};

struct batch {
	struct xeng *x;
	size_t first, n;
	uint8_t *data;
	size_t off[BATCH_ITEMS];
	int done;
};

struct xeng {
	struct repo *r;
	const char *series;
	const struct export_opts *o;
	struct export_result *res;
	struct archive *a;
	struct archive_entry *ent;
	struct workq *q;
	struct errstate es;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int dcos;

	/* the directory being written: its chunks, fetched ahead */
	struct item *items;
	size_t nitems, itemcap, next_item;
	struct batch *ring;
	size_t window, made, used;

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
			refs[i] = &x->items[b->first + i].c->r;
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

/* Queues batches of the directory's chunks until the window is full. */
static int launch(struct xeng *x)
{
	while (x->made - x->used < x->window && x->next_item < x->nitems) {
		struct batch *b = &x->ring[x->made % x->window];
		size_t bytes = 0;

		b->x = x;
		b->first = x->next_item;
		b->n = 0;
		b->done = 0;
		while (x->next_item < x->nitems && b->n < BATCH_ITEMS) {
			uint32_t raw = x->items[x->next_item].c->r.raw;

			if (b->n && bytes + raw > BATCH_BYTES)
				break;
			b->off[b->n++] = bytes;
			bytes += raw;
			x->next_item++;
		}
		b->data = malloc(bytes ? bytes : 1);
		if (!b->data)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		x->made++;
		SNAP_TRY(workq_submit(x->q, batch_work, b));
	}
	return 0;
}

static void batch_wait(struct xeng *x, struct batch *b)
{
	pthread_mutex_lock(&x->lock);
	while (!b->done)
		pthread_cond_wait(&x->cv, &x->lock);
	pthread_mutex_unlock(&x->lock);
}

/* The plaintext of item k (the next one the writer needs). */
static int item_data(struct xeng *x, size_t k, const uint8_t **p)
{
	struct batch *b = &x->ring[x->used % x->window];

	while (k >= b->first + b->n) {
		batch_wait(x, b);
		free(b->data);
		b->data = NULL;
		x->used++;
		SNAP_TRY(launch(x));
		b = &x->ring[x->used % x->window];
	}
	batch_wait(x, b);
	if (errstate_failed(&x->es))
		return errstate_result(&x->es);
	*p = b->data + b->off[k - b->first];
	return 0;
}

/* Waits for every batch in flight and forgets the directory's chunks. */
static void drain(struct xeng *x)
{
	workq_wait(x->q);
	for (; x->used < x->made; x->used++) {
		free(x->ring[x->used % x->window].data);
		x->ring[x->used % x->window].data = NULL;
	}
	x->nitems = x->next_item = 0;
	x->made = x->used = 0;
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

/* dcos-zk leaves out what identifies or logs the node. */
static int excluded(const struct xeng *x, const struct tent *t)
{
	return x->dcos && (!strcmp(t->name, "myid") ||
			   !strcmp(t->name, "zookeeper.out"));
}

/* Writes the files and symlinks of a directory, with its chunks fetched
 * ahead, then descends into its subdirectories. */
static int export_dir(struct xeng *x, const char *dir, const struct tree *t)
{
	const char **hard = calloc(t->n ? t->n : 1, sizeof(*hard));
	char *path = NULL;
	size_t k = 0;
	int rc = 0;

	if (!hard)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	x->res->dirs++;
	/* Which names are later links to a file met earlier, and the
	 * chunks of the others, in the order they will be written. */
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		const struct tent *e = &t->ents[i];

		if (e->type != ET_REG || excluded(x, e))
			continue;
		if (e->hardlink && (hard[i] = linkmap_get(&x->links, e->hardlink)))
			continue;
		if (e->hardlink) {
			rc = path_join(&path, dir, e->name);
			rc = rc ? rc : linkmap_put(&x->links, e->hardlink, path);
		}
		if (x->nitems + e->nchunks > x->itemcap) {
			size_t cap = 2 * (x->nitems + e->nchunks) + 64;
			void *p = realloc(x->items, cap * sizeof(*x->items));

			if (!p) {
				rc = snap_seterr(SNAP_ENOMEM, "out of memory");
				break;
			}
			x->items = p;
			x->itemcap = cap;
		}
		for (size_t c = 0; c < e->nchunks; c++)
			x->items[x->nitems++].c = &e->chunks[c];
	}
	rc = rc ? rc : launch(x);
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		const struct tent *e = &t->ents[i];
		uint64_t pos = 0;

		if (e->type == ET_DIR || excluded(x, e))
			continue;
		rc = path_join(&path, dir, e->name);
		rc = rc ? rc : put_header(x, path, e, hard[i]);
		if (rc || e->type != ET_REG || hard[i]) {
			x->res->links += !rc;
			continue;
		}
		for (size_t c = 0; c < e->nchunks && rc == 0; c++, k++) {
			const uint8_t *p = NULL;

			rc = zero_fill(x, e->chunks[c].off - pos, path);
			rc = rc ? rc : item_data(x, k, &p);
			rc = rc ? rc
				: write_all(x, p, e->chunks[c].r.raw, path);
			pos = e->chunks[c].off + e->chunks[c].r.raw;
		}
		rc = rc ? rc : zero_fill(x, e->size - pos, path);
		x->res->files++;
		x->res->bytes += e->size;
		progress_add(x->o->progress, 1, e->size);
	}
	drain(x);
	for (size_t i = 0; i < t->n && rc == 0; i++) {
		const struct tent *e = &t->ents[i];
		struct tree sub;

		if (e->type != ET_DIR)
			continue;
		rc = path_join(&path, dir, e->name);
		rc = rc ? rc : put_header(x, path, e, NULL);
		rc = rc ? rc : repo_read_tree(x->r, x->series, &e->sub, &sub);
		if (rc)
			break;
		rc = export_dir(x, path, &sub);
		tree_free(&sub);
	}
	free(path);
	free(hard);
	return rc;
}

static int export_group(struct xeng *x, const struct mgroup *g)
{
	struct tent root = {.type = ET_DIR, .mode = g->mode, .uid = g->uid,
			    .gid = g->gid, .mtime_ns = g->mtime_ns};
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
		if (rc == 0)
			rc = export_dir(x, "./zookeeper", &sub);
		tree_free(&sub);
	} else {
		rc = put_header(x, name, &root, NULL);
		rc = rc ? rc : export_dir(x, name, &t);
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
	if (x.q) {
		drain(&x);
		workq_destroy(x.q);
	}
	if (x.a)
		archive_write_free(x.a);
	if (rc && tmp)
		unlink(tmp);
	free(tmp);
	if (x.ent)
		archive_entry_free(x.ent);
	free(x.ring);
	free(x.items);
	linkmap_free(&x.links);
	pthread_mutex_destroy(&x.lock);
	pthread_cond_destroy(&x.cv);
	errstate_destroy(&x.es);
	manifest_free(&m);
	utf8_ctype_end(loc);
	return rc;
}
