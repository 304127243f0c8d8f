/* commit.c - a label's tree as the backup engine's source; see commit.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commit.h"
#include "err.h"

#define INO_STORED (1ULL << 63)
#define HL_DEFAULT_NEXT (1ULL << 32)

struct hlid {
	uint64_t ino, id;
};

struct cw {
	struct ovl *o;
	struct stage *st;
	struct repo *r;
	struct cache *c;
	struct bsession *s;
	const char *bseries; /* the tree's base series (reads) */
	const char *sseries; /* the series of stored chunks (streamed) */
	int full;
	uint64_t group;    /* the group being walked */
	int walk_all;      /* descend into every directory of it */
	uint64_t hl_next;  /* the group's next new hardlink id */
	struct hlid *ids;  /* staged inode -> its new hardlink id */
	size_t nids, idcap;
};

/* A staged directory's names, copied out of the stage under its lock. */
struct sname {
	char *name;
	uint64_t ino;
};

struct snames {
	struct sname *v;
	size_t n, cap;
};

static int collect(void *ctx, const char *name, uint64_t ino)
{
	struct snames *l = ctx;

	SNAP_TRY(array_grow(&l->v, &l->cap, l->n, sizeof(*l->v), 32));
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	l->v[l->n++].ino = ino;
	return 0;
}

static void snames_free(struct snames *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
}

static int staged_names(struct cw *w, uint64_t dir, struct snames *l)
{
	int rc;

	memset(l, 0, sizeof(*l));
	ovl_lock(w->o);
	rc = stage_dirent_each(w->st, dir, collect, l);
	ovl_unlock(w->o);
	return rc;
}

static int staged_row(struct cw *w, uint64_t ino, struct sinode *si)
{
	int rc;

	ovl_lock(w->o);
	rc = stage_inode_get(w->st, ino, si);
	ovl_unlock(w->o);
	return rc;
}

/* ---- reading base files again (a new series) -------------------------- */

struct baseread {
	struct cw *w;
	const struct tent *e;
	size_t ci;       /* chunk held in blob */
	int have;
	struct buf blob, scratch;
};

/* Extents are runs of chunks without a hole between them. */
static int base_extent(void *src, uint64_t off, struct bseg *g)
{
	struct baseread *b = src;
	const struct tent *e = b->e;
	size_t i = tent_chunk_at(e, off);

	if (i >= e->nchunks)
		return 0;
	g->start = e->chunks[i].off > off ? e->chunks[i].off : off;
	g->end = e->chunks[i].off + e->chunks[i].r.raw;
	while (i + 1 < e->nchunks && e->chunks[i + 1].off == g->end) {
		i++;
		g->end += e->chunks[i].r.raw;
	}
	return 1;
}

static ssize_t base_read(void *src, uint8_t *buf, size_t n, uint64_t off)
{
	struct baseread *b = src;
	const struct tent *e = b->e;
	size_t done = 0;

	while (done < n) {
		size_t i = tent_chunk_at(e, off + done);
		const struct chunk *ch;
		uint64_t in, k;

		if (i >= e->nchunks || e->chunks[i].off > off + done)
			break; /* a hole: the extent ends here */
		ch = &e->chunks[i];
		if (!b->have || b->ci != i) {
			b->have = 0;
			if (repo_read_blob(b->w->r, b->w->bseries, &ch->r,
					   &b->blob, &b->scratch))
				return -EIO;
			b->ci = i;
			b->have = 1;
		}
		in = off + done - ch->off;
		k = ch->r.raw - in < n - done ? ch->r.raw - in : n - done;
		memcpy(buf + done, b->blob.p + in, (size_t)k);
		done += (size_t)k;
	}
	return (ssize_t)done;
}

static int add_base_file(struct cw *w, struct bdir *d, const struct tent *meta,
			 const struct tent *content)
{
	struct baseread b = {.w = w, .e = content};
	int rc;

	if (!w->full) {
		struct tent t = *meta;

		t.chunks = content->chunks;
		t.nchunks = content->nchunks;
		t.size = content->size;
		return bdir_add(w->s, d, &t);
	}
	rc = bdir_add_read(w->s, d, meta, base_extent, base_read, &b);
	if (rc == SNAP_EIO && b.have == 0)
		snap_preerr(rc, "reading %s again for the new series",
			    meta->name);
	buf_free(&b.blob);
	buf_free(&b.scratch);
	return rc;
}

/* ---- streamed files ------------------------------------------------------ */

/* A staged file with stored chunks (overlay_stream.c): they are taken as
 * they are when the backup is of their series, else read back from it;
 * the rest is read from data/<ino>, whose holes are the stored ranges
 * and the file's own holes. */
struct sread {
	struct cw *w;
	int fd, take;
	uint64_t size;
	struct chunk *v;
	size_t n, i;
	struct buf blob, scratch;
	size_t bi; /* chunk held in blob, + 1 */
};

static int sread_next(void *src, uint64_t off, struct bseg *g)
{
	struct sread *x = src;
	const struct chunk *c;
	uint64_t limit;
	off_t d, h;

	while (x->i < x->n && x->v[x->i].off + x->v[x->i].r.raw <= off)
		x->i++;
	c = x->i < x->n ? &x->v[x->i] : NULL;
	limit = c ? c->off : x->size;
	if (c && c->off <= off)
		goto chunk;
	d = lseek(x->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno != ENXIO)
		d = (off_t)off; /* no SEEK_DATA here: all data */
	if (d < 0 || (uint64_t)d >= limit) {
		if (c)
			goto chunk;
		return 0;
	}
	h = lseek(x->fd, d, SEEK_HOLE);
	g->start = (uint64_t)d;
	g->end = h < 0 || (uint64_t)h > limit ? limit : (uint64_t)h;
	return 1;
chunk:
	g->start = c->off;
	g->end = c->off + c->r.raw;
	if (x->take)
		g->ref = &c->r;
	return 1;
}

static ssize_t sread_read(void *src, uint8_t *buf, size_t n, uint64_t off)
{
	struct sread *x = src;
	const struct chunk *c = x->i < x->n ? &x->v[x->i] : NULL;
	ssize_t r;

	/* Segments are a chunk or local bytes before the next one. */
	if (!c || off < c->off) {
		r = pread(x->fd, buf, n, (off_t)off);
		return r < 0 ? -errno : r;
	}
	if (x->bi != x->i + 1) {
		x->bi = 0;
		if (repo_read_blob(x->w->r, x->w->sseries, &c->r, &x->blob,
				   &x->scratch))
			return -EIO;
		x->bi = x->i + 1;
	}
	if (off - c->off + n > c->r.raw)
		n = (size_t)(c->r.raw - (off - c->off));
	memcpy(buf, x->blob.p + (off - c->off), n);
	return (ssize_t)n;
}

static int add_streamed(struct cw *w, struct bdir *d, const struct tent *meta,
			int fd, const struct sinode *si)
{
	struct sread x = {.w = w, .fd = fd, .size = si->size};
	int rc;

	x.take = !strcmp(w->sseries, bsession_series(w->s));
	ovl_lock(w->o);
	rc = stage_sref_range(w->st, si->ino, 0, si->size, 0, &x.v, &x.n);
	ovl_unlock(w->o);
	rc = rc ? rc : bdir_add_read(w->s, d, meta, sread_next, sread_read,
				     &x);
	free(x.v);
	buf_free(&x.blob);
	buf_free(&x.scratch);
	return rc;
}

/* ---- the walk --------------------------------------------------------- */

static int walk_dir(struct cw *w, uint64_t dino, uint8_t bkind,
		    const struct ref *bref, int staged, struct bdir *d);

static int base_listing(struct cw *w, uint8_t bkind, const struct ref *ref,
			struct centry **pin, const struct tree **t)
{
	static const struct tree none;

	*pin = NULL;
	*t = &none;
	if (bkind != B_TREE)
		return 0;
	return cache_tree(w->c, w->bseries, ref, pin, t);
}

static int emit_base(struct cw *w, uint64_t dino, const struct tent *e,
		     struct bdir *d)
{
	struct bdir *child;
	int rc;

	if (e->type == ET_REG)
		return add_base_file(w, d, e, e);
	if (e->type != ET_DIR || !(w->full || w->walk_all))
		return bdir_add(w->s, d, e);
	SNAP_TRY(bdir_add_dir(w->s, d, e, &child));
	rc = walk_dir(w, ovl_base_ino(w->o, dino, w->group, e), B_TREE, &e->sub,
		      0, child);
	bdir_close(w->s, child);
	return rc;
}

static int hardlink_of(struct cw *w, const struct sinode *si, uint64_t *id)
{
	*id = si->bhl;
	if (si->bhl || si->type != ET_REG || si->nlink < 2)
		return 0;
	for (size_t i = 0; i < w->nids; i++)
		if (w->ids[i].ino == si->ino) {
			*id = w->ids[i].id;
			return 0;
		}
	SNAP_TRY(array_grow(&w->ids, &w->idcap, w->nids, sizeof(*w->ids), 16));
	w->ids[w->nids++] = (struct hlid){si->ino, w->hl_next};
	*id = w->hl_next++;
	return 0;
}

struct xlist {
	struct xattr *v;
	size_t n;
};

static int xcollect(void *ctx, const char *name, const void *val, size_t len)
{
	struct xlist *l = ctx;

	return xattr_append(&l->v, &l->n, name, val, len);
}

static void xlist_free(struct xlist *l)
{
	xattrs_free(l->v, l->n);
}

/* A staged inode under name: its row, its attributes, its content. */
static int emit_staged(struct cw *w, uint64_t ino, const char *name,
		       struct bdir *d)
{
	struct sinode si;
	struct tent meta;
	struct xlist xl = {0};
	struct centry *pin = NULL;
	const struct tent *orig = NULL;
	const struct tree *t;
	struct bdir *child;
	char path[300];
	int rc, fd;

	SNAP_TRY(staged_row(w, ino, &si));
	memset(&meta, 0, sizeof(meta));
	meta.name = (char *)name;
	meta.type = si.type;
	meta.mode = si.mode;
	meta.uid = si.uid;
	meta.gid = si.gid;
	meta.mtime_ns = si.mtime_ns;
	meta.ctime_ns = si.ctime_ns;
	meta.ino = si.ino | INO_STORED;
	meta.size = si.size;
	meta.target = si.target;
	meta.rdev_major = si.rdev_major;
	meta.rdev_minor = si.rdev_minor;
	rc = hardlink_of(w, &si, &meta.hardlink);
	if (rc == 0 && si.has_orig && si.oname) {
		rc = cache_tree(w->c, w->bseries, &si.otree, &pin, &t);
		orig = rc ? NULL : tree_find(t, si.oname);
		if (rc == 0 && !orig)
			rc = snap_seterr(SNAP_ECORRUPT, "%s vanished from its "
					 "directory object", si.oname);
	}
	if (rc)
		goto out;
	if (si.own_xattrs) {
		ovl_lock(w->o);
		rc = stage_xattr_each(w->st, ino, xcollect, &xl);
		ovl_unlock(w->o);
		meta.xattrs = xl.v;
		meta.nxattrs = xl.n;
	} else if (orig) {
		meta.xattrs = orig->xattrs;
		meta.nxattrs = orig->nxattrs;
	}
	if (rc)
		goto out;
	snprintf(path, sizeof(path), "control/%s", name);
	switch (si.type) {
	case ET_DIR:
		rc = bdir_add_dir(w->s, d, &meta, &child);
		if (rc)
			break;
		rc = walk_dir(w, ino, si.bkind, &si.btree, 1, child);
		bdir_close(w->s, child);
		break;
	case ET_REG:
		if (si.data) {
			rc = stage_data_open(w->st, ino, O_RDONLY, &fd);
			if (rc == 0) {
				rc = si.srefs ? add_streamed(w, d, &meta, fd, &si)
					      : bdir_add_fd(w->s, d, &meta, fd,
							    path);
				close(fd);
			}
		} else if (orig && orig->type == ET_REG) {
			rc = add_base_file(w, d, &meta, orig);
		} else {
			rc = bdir_add(w->s, d, &meta);
		}
		break;
	default:
		rc = bdir_add(w->s, d, &meta);
	}
out:
	cache_release(w->c, pin);
	xlist_free(&xl);
	sinode_free(&si);
	return rc;
}

/* A directory: its base entries merged with its staged names, in order. */
static int walk_dir(struct cw *w, uint64_t dino, uint8_t bkind,
		    const struct ref *bref, int staged, struct bdir *d)
{
	const struct tree *t;
	struct centry *pin;
	struct snames l = {0};
	size_t bi = 0, si = 0;
	uint64_t x;
	int rc;

	SNAP_TRY(base_listing(w, bkind, bref, &pin, &t));
	rc = staged ? staged_names(w, dino, &l) : 0;
	while (rc == 0 && (bi < t->n || si < l.n)) {
		const struct tent *e = bi < t->n ? &t->ents[bi] : NULL;
		int c = !e ? 1 : si >= l.n ? -1 : strcmp(e->name, l.v[si].name);

		if (c < 0) {
			bi++;
			if (e->type == ET_REG && e->hardlink &&
			    ovl_staged_hl(w->o, w->group, e->hardlink, &x))
				rc = emit_staged(w, x, e->name, d);
			else
				rc = emit_base(w, dino, e, d);
			continue;
		}
		if (c == 0)
			bi++; /* the staged name (or its whiteout) wins */
		if (l.v[si].ino)
			rc = emit_staged(w, l.v[si].ino, l.v[si].name, d);
		si++;
	}
	cache_release(w->c, pin);
	snames_free(&l);
	return rc;
}

/* ---- groups ----------------------------------------------------------- */

static const struct mgroup *base_group(const struct manifest *m,
				       const char *name)
{
	for (size_t i = 0; m && i < m->ngroups; i++)
		if (strcmp(m->groups[i].name, name) == 0)
			return &m->groups[i];
	return NULL;
}

static int count_links(void *ctx, const struct sinode *in)
{
	if (in->type == ET_REG && !in->bhl && in->nlink > 1)
		(*(uint64_t *)ctx)++;
	return 0;
}

/* One group: whole by reference when nothing in it changed. */
static int do_group(struct cw *w, const struct manifest *bm,
		    const struct mgroup *pg, const char *name, uint64_t gino,
		    const struct sinode *si, uint64_t links)
{
	const struct mgroup *g = base_group(bm, name);
	struct xlist xl = {0};
	struct mgroup meta;
	struct bdir *root;
	int rc;

	w->group = gino;
	w->walk_all = ovl_group_has_hl(w->o, gino);
	if (!si && g && !w->full && !w->walk_all)
		return bsession_group_ref(w->s, g);
	memset(&meta, 0, sizeof(meta));
	meta.name = (char *)name;
	if (si) {
		const struct mgroup *og = si->oname ? base_group(bm, si->oname)
						    : NULL;

		meta.mode = si->mode;
		meta.uid = si->uid;
		meta.gid = si->gid;
		meta.mtime_ns = si->mtime_ns;
		meta.ino = si->ino | INO_STORED;
		if (si->own_xattrs) {
			ovl_lock(w->o);
			rc = stage_xattr_each(w->st, si->ino, xcollect, &xl);
			ovl_unlock(w->o);
			if (rc)
				goto out;
			meta.xattrs = xl.v;
			meta.nxattrs = xl.n;
		} else if (og) {
			meta.xattrs = og->xattrs;
			meta.nxattrs = og->nxattrs;
		}
	} else {
		meta = *g;
	}
	/* Ids below hardlink_next may be taken; the parent's group of the
	 * same name tells where its ids end. */
	w->hl_next = pg && pg->hardlink_next ? pg->hardlink_next
		     : g && g->hardlink_next  ? g->hardlink_next
					      : HL_DEFAULT_NEXT;
	meta.hardlink_next = w->hl_next + links;
	rc = bsession_group(w->s, &meta, &root);
	if (rc)
		goto out;
	if (si)
		rc = walk_dir(w, gino, si->bkind, &si->btree, 1, root);
	else
		rc = walk_dir(w, gino, B_TREE, &g->root, 0, root);
	bdir_close(w->s, root);
out:
	xlist_free(&xl);
	return rc;
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp((*(const struct mgroup *const *)a)->name,
		      (*(const struct mgroup *const *)b)->name);
}

int commit_tree(struct ovl *o, struct repo *r, struct cache *c,
		const struct commit_opts *co, struct backup_result *res)
{
	const struct ovl_base *b = ovl_get_base(o);
	struct bsession_opts so = {
		.label = co->label, .full = co->full,
		.base_series = co->series[0] ? co->series : NULL,
		.base_num = co->num, .token = co->token,
		.next_on_conflict = co->next_on_conflict, .index = co->index,
		.new_series = co->new_series, .full_policy = co->full_policy,
		.ino_next = ovl_next_ino(o), .threads = co->threads,
		.uploads = co->uploads, .warn = co->warn, .info = co->warn,
		.warn_ctx = co->warn_ctx, .on_pack = co->on_pack,
		.pack_ctx = co->pack_ctx};
	struct cw w = {.o = o, .st = ovl_stage(o), .r = r, .c = c,
		       .bseries = b->series, .full = co->full,
		       .sseries = co->stream_series ? co->stream_series : ""};
	const struct manifest *bm = b->m, *pm;
	uint64_t root = ovl_root(o), links = 0, x;
	struct snames l = {0};
	struct sinode rsi;
	const struct mgroup **gs = NULL;
	size_t bi = 0, si = 0, ngroups, nb = 0;
	int rc, staged;

	memset(res, 0, sizeof(*res));
	memset(&rsi, 0, sizeof(rsi));
	w.s = co->session; /* ours from here on, even on failure */
	rc = staged_row(&w, root, &rsi);
	staged = rc == 0;
	if (rc == SNAP_ENOENT)
		rc = 0;
	rc = rc ? rc : staged ? staged_names(&w, root, &l) : 0;
	if (rc == 0) {
		ovl_lock(o);
		rc = stage_inode_each(w.st, count_links, &links);
		ovl_unlock(o);
	}
	if (rc)
		goto out;
	/* The label directory's base is the base manifest's groups, unless
	 * the tree started empty. */
	if (staged && rsi.bkind != B_GROUPS)
		bm = NULL;
	nb = bm ? bm->ngroups : 0;
	gs = malloc((nb ? nb : 1) * sizeof(*gs));
	if (!gs) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nb; i++)
		gs[i] = &bm->groups[i];
	qsort(gs, nb, sizeof(*gs), cmp_group);
	ngroups = nb + l.n;
	so.max_groups = ngroups;
	if (co->session) {
		w.s = co->session;
		rc = bsession_prepare(w.s, co->token, so.ino_next, ngroups);
	} else {
		rc = bsession_open(r, &so, &w.s);
	}
	if (rc)
		goto out;
	pm = bsession_parent(w.s);
	/* A group of a different series cannot be taken by reference. */
	if (!w.full && (!pm || strcmp(bsession_series(w.s), b->series)))
		w.full = 1;
	while (rc == 0 && (bi < nb || si < l.n)) {
		const struct mgroup *g = bi < nb ? gs[bi] : NULL;
		int cmp = !g ? 1 : si >= l.n ? -1 : strcmp(g->name, l.v[si].name);
		struct sinode grow;

		if (cmp < 0) {
			struct tent e = {.name = g->name, .type = ET_DIR};

			bi++;
			x = ovl_base_ino(o, root, 0, &e);
			rc = do_group(&w, bm, base_group(pm, g->name), g->name, x,
				      NULL, links);
			continue;
		}
		if (cmp == 0)
			bi++;
		if (l.v[si].ino) {
			rc = staged_row(&w, l.v[si].ino, &grow);
			if (rc == 0) {
				rc = do_group(&w, bm, base_group(pm, l.v[si].name),
					      l.v[si].name, l.v[si].ino, &grow,
					      links);
				sinode_free(&grow);
			}
		}
		si++;
	}
	if (rc == 0)
		rc = bsession_commit(w.s, res);
out:
	bsession_free(w.s);
	snames_free(&l);
	sinode_free(&rsi);
	free(gs);
	free(w.ids);
	return rc;
}
