/* diff.c - the changes between two backups; see diff.h. */
#include "config.h"

#include <string.h>

#include "diff.h"
#include "err.h"
#include "util.h"

struct dctx {
	struct repo *r;
	const char *series[2]; /* of A and B */
	diff_fn fn;
	void *ctx;
	struct diff_stats *st;
	struct buf path;       /* "GROUP/dir/name", NUL-terminated */
};

/* Appends "/name" (or "name" at the top) to the path; returns the length
 * to cut back to. */
static int push(struct dctx *d, const char *name, size_t *mark)
{
	*mark = d->path.len ? d->path.len - 1 : 0; /* before the NUL */
	d->path.len = *mark;
	if (*mark && buf_addc(&d->path, '/'))
		return SNAP_ENOMEM;
	if (buf_addstr(&d->path, name) || buf_addc(&d->path, 0))
		return SNAP_ENOMEM;
	return 0;
}

static void pop(struct dctx *d, size_t mark)
{
	d->path.len = mark;
	buf_addc(&d->path, 0); /* fits: the buffer held more */
}

static int same_xattrs(const struct tent *a, const struct tent *b)
{
	if (a->nxattrs != b->nxattrs)
		return 0;
	for (size_t i = 0; i < a->nxattrs; i++)
		if (strcmp(a->xattrs[i].name, b->xattrs[i].name) ||
		    a->xattrs[i].len != b->xattrs[i].len ||
		    memcmp(a->xattrs[i].val, b->xattrs[i].val,
			   a->xattrs[i].len))
			return 0;
	return 1;
}

/* Mode, owner, attributes; the mtime too unless with_mtime is 0. */
static int meta_differs(const struct tent *a, const struct tent *b,
			int with_mtime)
{
	return a->mode != b->mode || a->uid != b->uid || a->gid != b->gid ||
	       (with_mtime && a->mtime_ns != b->mtime_ns) ||
	       !same_xattrs(a, b);
}

static int content_differs(const struct tent *a, const struct tent *b)
{
	switch (a->type) {
	case ET_REG:
		if (a->size != b->size || a->nchunks != b->nchunks)
			return 1;
		for (size_t i = 0; i < a->nchunks; i++)
			if (a->chunks[i].off != b->chunks[i].off ||
			    memcmp(a->chunks[i].r.id, b->chunks[i].r.id, ID_LEN))
				return 1;
		return 0;
	case ET_LNK:
		return strcmp(a->target, b->target) != 0;
	case ET_CHR:
	case ET_BLK:
		return a->rdev_major != b->rdev_major ||
		       a->rdev_minor != b->rdev_minor;
	case ET_DIR:
		return memcmp(a->sub.id, b->sub.id, ID_LEN) != 0;
	default:
		return 0;
	}
}

static int report(struct dctx *d, char kind, const struct tent *a,
		  const struct tent *b)
{
	struct diff_stats *st = d->st;

	switch (kind) {
	case '+': st->added++; break;
	case '-': st->removed++; break;
	case 'M': st->changed++; break;
	case 'U': st->meta++; break;
	default: st->type++; break;
	}
	if (b && b->type == ET_REG && kind != 'U')
		st->bytes_added += b->size;
	if (a && a->type == ET_REG && kind != 'U')
		st->bytes_removed += a->size;
	return d->fn(d->ctx, kind, (char *)d->path.p, a, b);
}

static int read_tree(struct dctx *d, int side, const struct ref *ref,
		     struct tree *t)
{
	d->st->trees_read++;
	return repo_read_tree(d->r, d->series[side], ref, t);
}

/* Everything below a directory that only one side (0: A, 1: B) has. */
static int one_side(struct dctx *d, int side, const struct ref *sub)
{
	struct tree t = {0};
	int rc = read_tree(d, side, sub, &t);

	for (size_t i = 0; rc == 0 && i < t.n; i++) {
		const struct tent *e = &t.ents[i];
		size_t mark;

		rc = push(d, e->name, &mark);
		rc = rc ? rc : report(d, side ? '+' : '-', side ? NULL : e,
				      side ? e : NULL);
		if (rc == 0 && e->type == ET_DIR)
			rc = one_side(d, side, &e->sub);
		pop(d, mark);
	}
	tree_free(&t);
	return rc;
}

static int diff_dirs(struct dctx *d, const struct ref *ra,
		     const struct ref *rb);

/* Entries of the same name on both sides. */
static int both(struct dctx *d, const struct tent *a, const struct tent *b)
{
	int rc = 0;

	if (a->type != b->type) {
		rc = report(d, 'T', a, b);
		if (rc == 0 && a->type == ET_DIR)
			rc = one_side(d, 0, &a->sub);
		if (rc == 0 && b->type == ET_DIR)
			rc = one_side(d, 1, &b->sub);
		return rc;
	}
	if (a->type == ET_DIR) {
		int changed = content_differs(a, b);

		if (meta_differs(a, b, !changed))
			rc = report(d, 'U', a, b);
		if (rc == 0 && changed)
			rc = diff_dirs(d, &a->sub, &b->sub);
		else if (!changed)
			d->st->trees_same++;
		return rc;
	}
	if (content_differs(a, b))
		return report(d, 'M', a, b);
	if (meta_differs(a, b, 1))
		return report(d, 'U', a, b);
	return 0;
}

static int diff_dirs(struct dctx *d, const struct ref *ra,
		     const struct ref *rb)
{
	struct tree ta = {0}, tb = {0};
	size_t i = 0, j = 0;
	int rc;

	rc = read_tree(d, 0, ra, &ta);
	rc = rc ? rc : read_tree(d, 1, rb, &tb);
	while (rc == 0 && (i < ta.n || j < tb.n)) {
		const struct tent *a = i < ta.n ? &ta.ents[i] : NULL;
		const struct tent *b = j < tb.n ? &tb.ents[j] : NULL;
		int c = !a ? 1 : !b ? -1 : strcmp(a->name, b->name);
		size_t mark;

		rc = push(d, c <= 0 ? a->name : b->name, &mark);
		if (rc)
			break;
		if (c < 0) {
			rc = report(d, '-', a, NULL);
			if (rc == 0 && a->type == ET_DIR)
				rc = one_side(d, 0, &a->sub);
			i++;
		} else if (c > 0) {
			rc = report(d, '+', NULL, b);
			if (rc == 0 && b->type == ET_DIR)
				rc = one_side(d, 1, &b->sub);
			j++;
		} else {
			rc = both(d, a, b);
			i++;
			j++;
		}
		pop(d, mark);
	}
	tree_free(&ta);
	tree_free(&tb);
	return rc;
}

/* A group as the directory entry it is in a restore. */
static struct tent group_ent(const struct mgroup *g)
{
	struct tent e = {.name = g->name, .type = ET_DIR, .mode = g->mode,
			 .uid = g->uid, .gid = g->gid, .mtime_ns = g->mtime_ns,
			 .xattrs = g->xattrs, .nxattrs = g->nxattrs,
			 .sub = g->root, .sub_files = g->files,
			 .sub_bytes = g->bytes};

	return e;
}

static const struct mgroup *find_group(const struct manifest *m,
				       const char *name)
{
	for (size_t i = 0; i < m->ngroups; i++)
		if (!strcmp(m->groups[i].name, name))
			return &m->groups[i];
	return NULL;
}

int diff_backups(struct repo *r, const char *sa, const struct manifest *a,
		 const char *sb, const struct manifest *b, diff_fn fn,
		 void *ctx, struct diff_stats *st)
{
	struct dctx d = {r, {sa, sb}, fn, ctx, st, BUF_INIT};
	int rc = 0;

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; rc == 0 && i < a->ngroups; i++) {
		const struct mgroup *gb = find_group(b, a->groups[i].name);
		struct tent ea = group_ent(&a->groups[i]), eb;
		size_t mark;

		rc = push(&d, ea.name, &mark);
		if (rc)
			break;
		if (!gb) {
			rc = report(&d, '-', &ea, NULL);
			rc = rc ? rc : one_side(&d, 0, &ea.sub);
		} else {
			eb = group_ent(gb);
			rc = both(&d, &ea, &eb);
		}
		pop(&d, mark);
	}
	for (size_t i = 0; rc == 0 && i < b->ngroups; i++) {
		struct tent eb = group_ent(&b->groups[i]);
		size_t mark;

		if (find_group(a, eb.name))
			continue;
		rc = push(&d, eb.name, &mark);
		if (rc)
			break;
		rc = report(&d, '+', NULL, &eb);
		rc = rc ? rc : one_side(&d, 1, &eb.sub);
		pop(&d, mark);
	}
	if (rc == SNAP_ENOMEM && !snap_errmsg()[0])
		snap_seterr(rc, "out of memory");
	buf_free(&d.path);
	return rc;
}
