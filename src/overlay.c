/* overlay.c - a label's writable tree over its base: nodes, numbers, copy-up, listings; see overlay.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "overlay_int.h"

static const struct tree empty_tree;

/* ---- numbers ---------------------------------------------------------- */

static uint64_t hash_name(uint64_t parent, const char *name)
{
	uint64_t h = itab_mix(parent);

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return INO_HASH_BASE + (itab_mix(h) & INO_HASH_MASK) % ((1ULL << 61) -
							    (1ULL << 40));
}

static uint64_t hash_hl(uint64_t group, uint64_t hl)
{
	return INO_HASH_BASE + (itab_mix(itab_mix(group ^ 0x68617264ULL) ^ hl) &
				INO_HASH_MASK) %
				       ((1ULL << 61) - (1ULL << 40));
}

/* A created entry's number: the kernel sees every label of the mount in
 * one number space, so a label's counter alone would repeat another's. */
static uint64_t mixed_ino(const struct ovl *o, uint64_t counter)
{
	return INO_MIX_BASE + (itab_mix(itab_mix(o->o.root_ino) ^ counter) &
			       ((1ULL << 60) - 1));
}

uint64_t ovl_base_ino(struct ovl *o, uint64_t dir, uint64_t group,
		      const struct tent *e)
{
	if (e->ino & INO_STORED) {
		uint64_t n = e->ino & ~INO_STORED;

		/* Backups made before numbers were mixed stored bare
		 * counters. */
		if (n >= INO_NEW_BASE && n < INO_MIX_BASE)
			return mixed_ino(o, n);
		if (n >= OVL_INO_MIN)
			return n;
	}
	if (e->type == ET_REG && e->hardlink)
		return hash_hl(group, e->hardlink);
	return hash_name(dir, e->name);
}

/* ---- node table (o->lock held) ---------------------------------------- */

struct onode *onode_find(struct ovl *o, uint64_t ino)
{
	return itab_get(&o->nodes, ino);
}

void onode_clear(struct onode *n)
{
	sinode_free(&n->si);
	free(n->name);
	free(n->pname);
	free(n->target);
	n->name = n->pname = n->target = NULL;
}

void onode_free(struct ovl *o, struct onode *n)
{
	if (itab_get(&o->nodes, n->ino) == n)
		itab_del(&o->nodes, n->ino);
	onode_clear(n);
	free(n->fly);
	free(n);
}

/* ---- attributes ------------------------------------------------------- */

static void staged_attr(struct ovl *o, struct onode *n, struct vfs_attr *a)
{
	const struct sinode *si = &n->si;

	memset(a, 0, sizeof(*a));
	a->ino = n->ino;
	a->mode = si->mode;
	a->uid = si->uid;
	a->gid = si->gid;
	a->mtime_ns = si->mtime_ns;
	a->ctime_ns = si->ctime_ns;
	a->rdev_major = si->rdev_major;
	a->rdev_minor = si->rdev_minor;
	a->timeout = TTL_CTL;
	switch (si->type) {
	case ET_REG:
		a->size = si->size;
		/* What is stored: the local copy's blocks, else the base's.
		 * Looked up again after any change to a data file of the
		 * label (a stat per answer cost a twentieth of the daemon's
		 * time in small-file copies). */
		if (si->data && n->blocks_at != o->dchanges) {
			if (stage_data_blocks(o->st, n->ino, &n->blocks))
				n->blocks = n->attr.blocks;
			n->blocks_at = o->dchanges;
		}
		a->blocks = si->data ? n->blocks : n->attr.blocks;
		a->nlink = n->unlinked ? 0 : si->nlink ? si->nlink : 1;
		if (si->bhl && a->nlink < 2)
			a->nlink = 2;
		break;
	case ET_LNK:
		a->size = si->target ? strlen(si->target) : 0;
		a->nlink = 1;
		break;
	case ET_DIR:
		a->size = 4096;
		a->nlink = 1;
		break;
	default:
		a->nlink = 1;
	}
}

void onode_attr(struct ovl *o, struct onode *n, struct vfs_attr *a)
{
	if (n->staged) {
		staged_attr(o, n, a);
	} else {
		*a = n->attr;
		a->ino = n->ino;
		a->timeout = TTL_CTL;
	}
}

/* ---- the base side ---------------------------------------------------- */

static int cmp_tent(const void *a, const void *b)
{
	return strcmp(((const struct tent *)a)->name,
		      ((const struct tent *)b)->name);
}

/* The base's groups as the entries of the label directory. */
static int build_gtree(struct ovl *o)
{
	const struct manifest *m = o->base.m;

	tree_free(&o->gtree);
	if (!m || !m->ngroups)
		return 0;
	o->gtree.ents = tree_alloc(&o->gtree, m->ngroups * sizeof(struct tent));
	if (!o->gtree.ents)
		return SNAP_ENOMEM;
	memset(o->gtree.ents, 0, m->ngroups * sizeof(struct tent));
	for (size_t i = 0; i < m->ngroups; i++) {
		const struct mgroup *g = &m->groups[i];
		struct tent *e = &o->gtree.ents[i];

		e->name = tree_strdup(&o->gtree, g->name, strlen(g->name));
		if (!e->name)
			return SNAP_ENOMEM;
		e->type = ET_DIR;
		e->mode = S_IFDIR | (g->mode & 07777);
		e->uid = g->uid;
		e->gid = g->gid;
		e->mtime_ns = e->ctime_ns = g->mtime_ns;
		e->sub = g->root;
		e->sub_files = g->files;
		e->sub_bytes = g->bytes;
		e->ino = g->ino;
		e->xattrs = g->xattrs; /* the manifest's, alive as long */
		e->nxattrs = g->nxattrs;
	}
	o->gtree.n = m->ngroups;
	qsort(o->gtree.ents, o->gtree.n, sizeof(struct tent), cmp_tent);
	return 0;
}

/* The base listing of a directory: *t stays valid until *pin is
 * released (NULL pins the overlay's own trees). */
int ovl_base_listing(struct ovl *o, uint8_t bkind, const struct ref *ref,
			struct centry **pin, const struct tree **t)
{
	*pin = NULL;
	switch (bkind) {
	case B_TREE:
		return cache_tree(o->o.c, o->base.series, ref, pin, t);
	case B_GROUPS:
		*t = &o->gtree;
		return 0;
	default:
		*t = &empty_tree;
		return 0;
	}
}

void ovl_dir_base(const struct onode *d, uint8_t *bkind, struct ref *ref)
{
	if (d->staged) {
		*bkind = d->si.bkind;
		*ref = d->si.btree;
	} else {
		*bkind = d->bkind;
		*ref = d->tree;
	}
}

/* ---- templates: what a name resolves to ------------------------------- */

/* A node not yet in the table, owning its strings. */
static int template_base(struct ovl *o, const struct onode *d,
			 const struct ref *dref, uint8_t dkind,
			 const struct tent *e, struct onode *t)
{
	memset(t, 0, sizeof(*t));
	t->parent = d->ino;
	t->group = d->group ? d->group : 0;
	t->ino = ovl_base_ino(o, d->ino, d->group, e);
	if (!d->group) /* a group root */
		t->group = t->ino;
	t->type = e->type;
	vfs_tent_attr(e, &t->attr);
	t->attr.ino = t->ino;
	t->name = strdup(e->name);
	if (e->type == ET_DIR) {
		t->bkind = B_TREE;
		t->tree = e->sub;
	}
	/* A group directory's entry is in the base manifest: its location
	 * is the all-zero ref (base_entry). */
	if (dkind == B_TREE || dkind == B_GROUPS) {
		t->has_loc = 1;
		if (dkind == B_TREE)
			t->ptree = *dref;
		else
			memset(&t->ptree, 0, sizeof(t->ptree));
		t->pname = strdup(e->name);
	}
	if (e->type == ET_REG && e->hardlink)
		t->hl = e->hardlink;
	if (e->type == ET_LNK)
		t->target = strdup(e->target);
	if (!t->name || (t->has_loc && !t->pname) ||
	    (e->type == ET_LNK && !t->target)) {
		onode_clear(t);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	t->gen = o->gen;
	return 0;
}

static int copy_sinode(const struct sinode *in, struct sinode *out)
{
	*out = *in;
	out->target = in->target ? strdup(in->target) : NULL;
	out->oname = in->oname ? strdup(in->oname) : NULL;
	if ((in->target && !out->target) || (in->oname && !out->oname)) {
		sinode_free(out);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	return 0;
}

static int template_staged(struct ovl *o, uint64_t ino, const struct onode *d,
			   const char *name, struct onode *t)
{
	struct onode *live = onode_find(o, ino);

	memset(t, 0, sizeof(*t));
	if (live && live->staged)
		SNAP_TRY(copy_sinode(&live->si, &t->si));
	else
		SNAP_TRY(stage_inode_get(o->st, ino, &t->si));
	t->ino = ino;
	t->staged = 1;
	t->type = t->si.type;
	t->parent = d->ino;
	t->group = d->group ? d->group : ino;
	t->gen = o->gen;
	t->name = strdup(name);
	if (!t->name) {
		onode_clear(t);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	return 0;
}

int onode_is_dir(const struct onode *n)
{
	return n->staged ? n->si.type == ET_DIR : n->type == ET_DIR;
}

static int staged_hl_find(struct ovl *o, uint64_t group, uint64_t hl,
			  uint64_t *ino)
{
	for (size_t i = 0; i < o->nhls; i++)
		if (o->hls[i].group == group && o->hls[i].hl == hl) {
			*ino = o->hls[i].ino;
			return 1;
		}
	return 0;
}

/* What name in directory d is.  Holds o->lock; may read the base. */
int onode_resolve(struct ovl *o, const struct onode *d, const char *name,
		   struct onode *t)
{
	const struct tree *tr;
	const struct tent *e;
	struct centry *pin;
	struct ref dref;
	uint8_t dkind;
	uint64_t ino;
	int rc;

	if (!onode_is_dir(d))
		return snap_seterr(SNAP_ENOTDIR, "not a directory");
	if (d->staged) {
		rc = stage_dirent_get(o->st, d->ino, name, &ino);
		if (rc == 0 && ino == 0)
			return snap_seterr(SNAP_ENOENT, "no such entry: %s",
					   name);
		if (rc == 0)
			return template_staged(o, ino, d, name, t);
		if (rc != SNAP_ENOENT)
			return rc;
	}
	ovl_dir_base(d, &dkind, &dref);
	SNAP_TRY(ovl_base_listing(o, dkind, &dref, &pin, &tr));
	e = tree_find(tr, name);
	if (!e) {
		rc = snap_seterr(SNAP_ENOENT, "no such entry: %s", name);
	} else if (e->type == ET_REG && e->hardlink &&
		   staged_hl_find(o, d->group, e->hardlink, &ino)) {
		rc = template_staged(o, ino, d, name, t);
	} else {
		rc = template_base(o, d, &dref, dkind, e, t);
	}
	cache_release(o->o.c, pin);
	return rc;
}

/* The live node for a template (taking its strings), with one more
 * lookup reference when ref. */
struct onode *onode_adopt(struct ovl *o, struct onode *t, int ref)
{
	struct onode *n = onode_find(o, t->ino);

	if (n) {
		/* Known already: take the template's backing (after a commit
		 * or abort the node binds to the new tree), keep its open and
		 * lookup state. */
		int opens = n->opens, writers = n->writers;
		int settled = n->settled, serr = n->serr;
		uint64_t nl = n->nlookup, *fly = n->fly;
		size_t nfly = n->nfly, flycap = n->flycap;

		onode_clear(n);
		*n = *t;
		n->opens = opens;
		n->writers = writers;
		n->settled = settled;
		n->serr = serr;
		n->fly = fly;
		n->nfly = nfly;
		n->flycap = flycap;
		n->nlookup = nl + (ref ? 1 : 0);
		n->gen = o->gen;
		return n;
	}
	n = malloc(sizeof(*n));
	if (!n || itab_put(&o->nodes, t->ino, n)) {
		free(n);
		onode_clear(t);
		snap_seterr(SNAP_ENOMEM, "out of memory");
		return NULL;
	}
	*n = *t;
	n->nlookup = ref ? 1 : 0;
	return n;
}

/* The label directory's node: always live. */
static struct onode *root_node(struct ovl *o)
{
	return onode_find(o, o->o.root_ino);
}

static int init_root(struct ovl *o, struct onode *r)
{
	struct sinode si;
	int rc;

	r->ino = o->o.root_ino;
	r->type = ET_DIR;
	r->group = 0;
	r->gen = o->gen;
	r->bkind = o->base.m ? B_GROUPS : B_NONE;
	memset(&r->attr, 0, sizeof(r->attr));
	r->attr.mode = S_IFDIR | 0700;
	r->attr.uid = o->o.uid;
	r->attr.gid = o->o.gid;
	r->attr.nlink = 1;
	r->attr.size = 4096;
	r->attr.mtime_ns = r->attr.ctime_ns =
		o->base.m ? o->base.m->created : now_ns();
	rc = stage_inode_get(o->st, r->ino, &si);
	if (rc == 0) {
		sinode_free(&r->si);
		r->si = si;
		r->staged = 1;
	} else if (rc != SNAP_ENOENT) {
		return rc;
	} else {
		sinode_free(&r->si);
		r->staged = 0;
	}
	return 0;
}

/* Binds a node again after the tree started afresh (commit, abort): from
 * its directory, by name, keeping its number. */
static int refresh(struct ovl *o, struct onode *n)
{
	struct onode *d, t;
	int rc;

	if (n->gen == o->gen || n->ino == o->o.root_ino)
		return n->stale ? snap_seterr(SNAP_ENOENT, "stale entry") : 0;
	d = onode_find(o, n->parent);
	if (!d || !n->name)
		goto stale;
	SNAP_TRY(refresh(o, d));
	rc = onode_resolve(o, d, n->name, &t);
	if (rc == SNAP_ENOENT)
		goto stale;
	if (rc)
		return rc;
	if (t.ino != n->ino) {
		onode_clear(&t);
		goto stale;
	}
	onode_adopt(o, &t, 0);
	return 0;
stale:
	n->gen = o->gen;
	n->stale = 1;
	return snap_seterr(SNAP_ENOENT, "entry vanished when the tree "
					"started afresh");
}

/* A live node by number, bound to the current tree. */
int onode_get(struct ovl *o, uint64_t ino, struct onode **out)
{
	struct onode *n = onode_find(o, ino);

	if (!n)
		return snap_seterr(SNAP_ENOENT,
				   "inode %" PRIu64 " is unknown", ino);
	SNAP_TRY(refresh(o, n));
	*out = n;
	return 0;
}

/* ---- copy-up ---------------------------------------------------------- */

/* Numbers are reserved in blocks: after a crash the next mount skips
 * what was reserved and unused (numbers are plentiful; reusing one a
 * commit stored would not be harmless). */
#define INO_BLOCK 1024

int ovl_new_ino(struct ovl *o, uint64_t *ino)
{
	/* A reservation rolled back with its transaction is made again. */
	if (o->next_ino >= o->ino_reserved ||
	    o->resv_rollbacks != stage_rollbacks(o->st)) {
		SNAP_TRY(stage_set_next_ino(o->st, o->next_ino + INO_BLOCK));
		o->ino_reserved = o->next_ino + INO_BLOCK;
		o->resv_rollbacks = stage_rollbacks(o->st);
	}
	*ino = mixed_ino(o, o->next_ino++);
	return 0;
}

static void sinode_from_base(const struct onode *n, struct sinode *si)
{
	memset(si, 0, sizeof(*si));
	si->ino = n->ino;
	si->type = n->type;
	si->mode = n->attr.mode;
	si->uid = n->attr.uid;
	si->gid = n->attr.gid;
	si->mtime_ns = n->attr.mtime_ns;
	si->ctime_ns = n->attr.ctime_ns;
	si->size = n->type == ET_REG ? n->attr.size : 0;
	si->rdev_major = n->attr.rdev_major;
	si->rdev_minor = n->attr.rdev_minor;
	si->nlink = n->hl ? 2 : 1;
	si->bkind = n->type == ET_DIR ? n->bkind : B_NONE;
	si->btree = n->tree;
	si->has_orig = n->has_loc;
	si->otree = n->ptree;
	si->o_mode = si->mode;
	si->o_uid = si->uid;
	si->o_gid = si->gid;
	si->o_mtime_ns = si->mtime_ns;
	si->o_ctime_ns = si->ctime_ns;
	si->o_size = si->size;
	si->bgroup = n->hl ? n->group : 0;
	si->bhl = n->hl;
}

int onode_put(struct ovl *o, struct onode *n)
{
	return stage_inode_put(o->st, &n->si);
}

/* Makes n staged: a row of its own and, up to the label directory, a name
 * in each staged parent (a base hardlink gets no name: every base name of
 * it resolves to the row). */
int onode_copy_up(struct ovl *o, struct onode *n)
{
	struct sinode si;
	struct onode *p = NULL;
	int rc;

	if (n->staged)
		return 0;
	/* Copying up a removed entry would give it its name back. */
	if (n->unlinked)
		return snap_seterr(SNAP_ENOENT, "%s was removed", n->name);
	if (n->ino != o->o.root_ino && !n->hl) {
		p = onode_find(o, n->parent);
		if (!p)
			return snap_seterr(SNAP_EIO, "%s: its directory is not "
					   "known (copy-up)", n->name);
		SNAP_TRY(refresh(o, p));
		SNAP_TRY(onode_copy_up(o, p));
	}
	sinode_from_base(n, &si);
	if (n->ino == o->o.root_ino) {
		si.mode = S_IFDIR | 0700;
		si.uid = n->attr.uid;
		si.gid = n->attr.gid;
	}
	if (n->has_loc && !(si.oname = strdup(n->pname)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	if (n->target && !(si.target = strdup(n->target))) {
		sinode_free(&si);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	rc = stage_inode_put(o->st, &si);
	if (rc == 0 && p)
		rc = stage_dirent_put(o->st, p->ino, n->name, n->ino);
	if (rc == 0 && n->hl) {
		rc = array_grow(&o->hls, &o->hlcap, o->nhls, sizeof(*o->hls), 8);
		if (rc == 0)
			o->hls[o->nhls++] =
				(struct hlmap){n->group, n->hl, n->ino};
		/* The commit walks this group whole: its root must be
		 * staged for the walk to reach it. */
		if (rc == 0) {
			struct onode *g = onode_find(o, n->group);

			rc = g ? onode_copy_up(o, g)
			       : snap_seterr(SNAP_EIO, "group of %s unknown",
					     n->name);
		}
	}
	if (rc) {
		sinode_free(&si);
		return rc;
	}
	sinode_free(&n->si);
	n->si = si;
	n->staged = 1;
	return 0;
}

/* The base entry of an unstaged (or copied-up) node, pinned: in its
 * directory object, or for a group directory among the base's groups. */
int onode_base_entry(struct ovl *o, const struct onode *n,
		      struct centry **pin, const struct tent **e)
{
	const struct tree *t;
	const struct ref *ref = n->staged ? &n->si.otree : &n->ptree;
	const char *name = n->staged ? n->si.oname : n->pname;
	int has = n->staged ? n->si.has_orig : n->has_loc;

	*pin = NULL;
	*e = NULL;
	if (!has || !name)
		return 0;
	if (ref_is_zero(ref)) {
		*e = tree_find(&o->gtree, name);
		return 0;
	}
	SNAP_TRY(cache_tree(o->o.c, o->base.series, ref, pin, &t));
	*e = tree_find(t, name);
	return 0;
}

/* Brings a staged file's content into data/<ino>: its base chunks, or
 * nothing when it is about to be truncated. */
int onode_materialize(struct ovl *o, struct onode *n, int truncate)
{
	const struct tent *e;
	struct centry *pin = NULL;
	int fd, rc = 0;

	if (n->si.data)
		return 0;
	SNAP_TRY(stage_data_open(o->st, n->ino, O_RDWR | O_CREAT | O_TRUNC,
				 &fd));
	o->dchanges++;
	if (!truncate && n->si.has_orig && n->si.oname) {
		rc = onode_base_entry(o, n, &pin, &e);
		if (rc == 0 && (!e || e->type != ET_REG))
			rc = snap_seterr(SNAP_ECORRUPT, "%s vanished from its "
					 "directory object", n->si.oname);
		if (rc == 0 && ftruncate(fd, (off_t)e->size))
			rc = snap_syserr(errno, "staging %s", n->name);
		for (size_t i = 0; rc == 0 && i < e->nchunks; i++) {
			const struct chunk *ch = &e->chunks[i];
			struct centry *ce = NULL;
			const uint8_t *data;
			size_t done = 0;

			rc = cache_chunk(o->o.c, o->base.series, &ch->r, &ce,
					 &data);
			while (rc == 0 && done < ch->r.raw) {
				ssize_t w = pwrite(fd, data + done,
						   ch->r.raw - done,
						   (off_t)(ch->off + done));

				if (w < 0)
					rc = snap_syserr(errno, "staging %s",
							 n->name);
				else
					done += (size_t)w;
			}
			cache_release(o->o.c, ce);
		}
		cache_release(o->o.c, pin);
	} else if (ftruncate(fd, truncate ? 0 : (off_t)n->si.size)) {
		rc = snap_syserr(errno, "staging %s", n->name);
	}
	close(fd);
	if (rc) {
		stage_data_unlink(o->st, n->ino);
		return rc;
	}
	n->si.data = 1;
	if (truncate)
		n->si.size = 0;
	return 0;
}

/* ---- gate and helpers ------------------------------------------------- */

/* Before any change: waits while a commit runs.  o->lock held.  A label
 * whose stage another process holds takes no change. */
int ovl_gate_wait(struct ovl *o)
{
	if (o->o.read_only)
		return snap_seterr(SNAP_EROFS, "control/%s: its stage is in use "
				   "by another snapfs", o->label);
	while (o->closed_gate)
		pthread_cond_wait(&o->cv, &o->lock);
	o->changes++;
	o->changed_at = mono_sec();
	return 0;
}

/* ---- merged listings -------------------------------------------------- */

struct merge {
	struct ovl *o;
	const struct onode *d;
	const struct tree *tr;
	const struct ref *dref;
	uint8_t dkind;
	size_t bi;
	int (*fn)(void *ctx, const char *name, const struct tent *e,
		  uint64_t ino);
	void *ctx;
};

/* Emits the base entries before name (all when name is NULL). */
static int merge_base_until(struct merge *m, const char *name)
{
	while (m->bi < m->tr->n) {
		const struct tent *e = &m->tr->ents[m->bi];
		int c = name ? strcmp(e->name, name) : -1;

		if (c > 0)
			break;
		m->bi++;
		if (c == 0)
			return 0; /* the staged name replaces it */
		SNAP_TRY(m->fn(m->ctx, e->name, e, 0));
	}
	return 0;
}

static int merge_staged(void *ctx, const char *name, uint64_t ino)
{
	struct merge *m = ctx;

	SNAP_TRY(merge_base_until(m, name));
	return ino ? m->fn(m->ctx, name, NULL, ino) : 0;
}

/* Calls fn for every entry of directory d in name order: base entries
 * with e set, staged ones with their number.  o->lock held. */
int ovl_merge_dir(struct ovl *o, const struct onode *d,
		     int (*fn)(void *ctx, const char *name,
			       const struct tent *e, uint64_t ino),
		     void *ctx)
{
	struct centry *pin;
	struct merge m = {.o = o, .d = d, .fn = fn, .ctx = ctx};
	struct ref dref;
	int rc;

	ovl_dir_base(d, &m.dkind, &dref);
	m.dref = &dref;
	SNAP_TRY(ovl_base_listing(o, m.dkind, &dref, &pin, &m.tr));
	rc = d->staged ? stage_dirent_each(o->st, d->ino, merge_staged, &m)
		       : 0;
	rc = rc ? rc : merge_base_until(&m, NULL);
	cache_release(o->o.c, pin);
	return rc;
}

static int count_one(void *ctx, const char *name, const struct tent *e,
		     uint64_t ino)
{
	(void)name, (void)e, (void)ino;
	(*(size_t *)ctx)++;
	return 1; /* one is enough */
}

int onode_dir_empty(struct ovl *o, const struct onode *d)
{
	size_t n = 0;
	int rc = ovl_merge_dir(o, d, count_one, &n);

	return rc < 0 ? rc : n == 0;
}

/* ---- lookups and attributes ------------------------------------------- */

int ovl_lookup(struct ovl *o, uint64_t dir, const char *name,
	       struct vfs_attr *a)
{
	struct onode *d, t, *n;
	int rc;

	memset(a, 0, sizeof(*a));
	a->timeout = TTL_CTL;
	ovl_lock(o);
	rc = onode_get(o, dir, &d);
	rc = rc ? rc : onode_resolve(o, d, name, &t);
	if (rc == 0) {
		n = onode_adopt(o, &t, 1);
		if (n)
			onode_attr(o, n, a);
		else
			rc = SNAP_ENOMEM;
	}
	ovl_unlock(o);
	return rc;
}

void ovl_forget(struct ovl *o, uint64_t ino, uint64_t nl)
{
	struct onode *n;

	ovl_lock(o);
	n = onode_find(o, ino);
	if (n && n->ino != o->o.root_ino) {
		n->nlookup -= nl < n->nlookup ? nl : n->nlookup;
		if (n->nlookup == 0 && n->opens == 0)
			onode_free(o, n);
	}
	ovl_unlock(o);
}

int ovl_has(struct ovl *o, uint64_t ino)
{
	int has;

	ovl_lock(o);
	has = onode_find(o, ino) != NULL;
	ovl_unlock(o);
	return has;
}

int ovl_getattr(struct ovl *o, uint64_t ino, struct vfs_attr *a)
{
	struct onode *n;
	int rc;

	ovl_lock(o);
	rc = onode_get(o, ino, &n);
	if (rc == 0)
		onode_attr(o, n, a);
	ovl_unlock(o);
	return rc;
}

int ovl_readlink(struct ovl *o, uint64_t ino, char **target)
{
	struct onode *n;
	const char *t;
	int rc;

	*target = NULL;
	ovl_lock(o);
	rc = onode_get(o, ino, &n);
	if (rc == 0) {
		t = n->staged ? n->si.target : n->target;
		if (!t)
			rc = snap_seterr(SNAP_EINVAL, "not a symbolic link");
		else if (!(*target = strdup(t)))
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	ovl_unlock(o);
	return rc;
}

/* ---- listings --------------------------------------------------------- */

struct snap {
	struct ovl *o;
	struct ovl_dir *d;
	const struct onode *dir;
	size_t cap;
};

static int snap_one(void *ctx, const char *name, const struct tent *e,
		    uint64_t ino)
{
	struct snap *s = ctx;
	struct dslot *sl;

	SNAP_TRY(array_grow(&s->d->v, &s->cap, s->d->n, sizeof(*s->d->v),
			    64));
	sl = &s->d->v[s->d->n];
	sl->name = strdup(name);
	if (!sl->name)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	/* Base entries are numbered now; their hardlink substitution is
	 * resolved when listed. */
	sl->ino = e ? 0 : ino;
	s->d->n++;
	return 0;
}

int ovl_opendir(struct ovl *o, uint64_t ino, struct ovl_dir **out)
{
	struct ovl_dir *d = calloc(1, sizeof(*d));
	struct snap s = {.o = o, .d = d};
	struct onode *n;
	int rc;

	*out = NULL;
	if (!d)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	ovl_lock(o);
	rc = onode_get(o, ino, &n);
	if (rc == 0 && !onode_is_dir(n))
		rc = snap_seterr(SNAP_ENOTDIR, "not a directory");
	if (rc == 0) {
		d->self = n->ino;
		d->parent = n->parent;
		s.dir = n;
		rc = ovl_merge_dir(o, n, snap_one, &s);
	}
	ovl_unlock(o);
	if (rc) {
		ovl_closedir(o, d);
		return rc;
	}
	*out = d;
	return 0;
}

int ovl_dirent(struct ovl *o, struct ovl_dir *d, size_t idx, int plus,
	       const char **name, struct vfs_attr *a)
{
	struct onode *dir, t, *n;
	int rc;

	if (idx < 2) {
		*name = idx ? ".." : ".";
		memset(a, 0, sizeof(*a));
		a->mode = S_IFDIR | 0700;
		a->ino = idx ? d->parent : d->self;
		return 0;
	}
	idx -= 2;
	if (idx >= d->n)
		return 1;
	*name = d->v[idx].name;
	ovl_lock(o);
	rc = onode_get(o, d->self, &dir);
	/* Resolving again keeps one rule for numbers and attributes; an
	 * entry removed since opendir is skipped as absent. */
	rc = rc ? rc : onode_resolve(o, dir, d->v[idx].name, &t);
	if (rc == 0) {
		n = onode_adopt(o, &t, plus);
		if (n)
			onode_attr(o, n, a);
		else
			rc = SNAP_ENOMEM;
	}
	ovl_unlock(o);
	return rc == SNAP_ENOENT ? VFS_DIRENT_SKIP : rc;
}

void ovl_closedir(struct ovl *o, struct ovl_dir *d)
{
	(void)o;
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	free(d);
}

/* ---- commits ---------------------------------------------------------- */

int ovl_gate_close(struct ovl *o, double wait_s)
{
	double deadline = mono_sec() + wait_s;
	struct buf paths = BUF_INIT;
	int rc = 0;

	ovl_lock(o);
	while (o->closed_gate) /* one commit at a time */
		pthread_cond_wait(&o->cv, &o->lock);
	o->closed_gate = 1;
	while (o->writers > 0) {
		struct timespec ts;
		double left = deadline - mono_sec();

		if (left <= 0)
			break;
		deadline_after(left, &ts);
		pthread_cond_timedwait(&o->cv, &o->lock, &ts);
	}
	if (o->writers > 0) {
		for (size_t i = 0; i < o->nodes.cap; i++) {
			struct onode *n = itab_at(&o->nodes, i);

			if (n && n->writers && paths.len < 400) {
				if (paths.len)
					buf_addstr(&paths, ", ");
				buf_addstr(&paths, n->name ? n->name : "?");
			}
		}
		buf_addc(&paths, 0);
		rc = snap_seterr(SNAP_EBUSY,
				 "files still open for writing after %.0f s: "
				 "%s",
				 wait_s, paths.p ? (char *)paths.p : "");
		o->closed_gate = 0;
		pthread_cond_broadcast(&o->cv);
	}
	ovl_unlock(o);
	buf_free(&paths);
	return rc;
}

void ovl_gate_open(struct ovl *o)
{
	ovl_lock(o);
	o->closed_gate = 0;
	pthread_cond_broadcast(&o->cv);
	ovl_unlock(o);
}

int ovl_dirty(struct ovl *o)
{
	int dirty;

	ovl_lock(o);
	dirty = root_node(o) && root_node(o)->staged;
	ovl_unlock(o);
	return dirty;
}

uint64_t ovl_quiet(struct ovl *o, double *idle_s)
{
	uint64_t at = 0;

	ovl_lock(o);
	if (root_node(o) && root_node(o)->staged && !o->writers &&
	    !o->closed_gate) {
		at = o->changes;
		*idle_s = mono_sec() - o->changed_at;
	}
	ovl_unlock(o);
	return at;
}

int ovl_sync(struct ovl *o, uint64_t *refused)
{
	uint64_t at, used;
	int rc = 0;

	ovl_lock(o);
	ostream_settle(o);
	at = o->changes;
	if (at != o->synced && !o->o.read_only) {
		rc = stage_sync(o->st);
		if (rc == 0)
			o->synced = at;
	}
	if (rc == 0 && o->lost_log) {
		o->lost_log = 0;
		rc = ovl_lost_error(o);
	}
	if (o->o.stage_max && stage_data_usage(o->st, &used) == 0) {
		o->used = used;
		o->written = 0;
	}
	*refused = o->refused;
	o->refused = 0;
	ovl_unlock(o);
	return rc;
}

struct counts {
	uint64_t files, bytes;
};

static int count_inode(void *ctx, const struct sinode *in)
{
	struct counts *c = ctx;

	if (in->type == ET_REG && in->data) {
		c->files++;
		c->bytes += in->size;
	}
	return 0;
}

void ovl_counts(struct ovl *o, uint64_t *files, uint64_t *bytes)
{
	struct counts c = {0, 0};

	ovl_lock(o);
	stage_inode_each(o->st, count_inode, &c);
	ovl_unlock(o);
	*files = c.files;
	*bytes = c.bytes;
}

static int set_base(struct ovl *o, const struct ovl_base *b)
{
	struct onode *r;
	int rc;

	manifest_free(&o->m);
	memset(&o->m, 0, sizeof(o->m));
	memset(&o->base, 0, sizeof(o->base));
	if (b && b->series[0]) {
		memcpy(o->base.series, b->series, SERIES_MAX);
		o->base.num = b->num;
	}
	if (b && b->m) {
		struct buf text = BUF_INIT;

		/* A private copy: the caller's manifest may go away. */
		rc = repo_manifest_text(o->o.r, b->series, b->num, &text);
		rc = rc ? rc
			: manifest_parse((char *)text.p, text.len,
					 &o->o.r->keys, b->series, b->num, &o->m);
		buf_free(&text);
		if (rc)
			return rc;
		o->base.m = &o->m;
	}
	SNAP_TRY(build_gtree(o));
	o->gen++;
	r = root_node(o);
	return r ? init_root(o, r) : 0;
}

int ovl_rebase(struct ovl *o, const struct ovl_base *b)
{
	struct stage_meta m;
	int rc;

	ovl_lock(o);
	o->nhls = 0;
	ostream_reset(o);
	/* What a failed batch undid went with the stage. */
	o->lost_log = o->lost_close = o->lost_commit = 0;
	o->written = 0;
	if (o->o.stage_max && stage_data_usage(o->st, &o->used))
		o->used = 0;
	rc = set_base(o, b);
	rc = rc ? rc : stage_get_meta(o->st, &m);
	if (rc == 0 && m.next_ino > o->next_ino)
		o->next_ino = m.next_ino;
	ovl_unlock(o);
	return rc;
}

void ovl_each_name(struct ovl *o,
		   void (*fn)(void *ctx, uint64_t parent, const char *name),
		   void *ctx)
{
	struct dslot *v = NULL;
	uint64_t *parents = NULL;
	size_t n = 0, cap = 0, pcap = 0;

	ovl_lock(o);
	for (size_t i = 0; i < o->nodes.cap; i++) {
		struct onode *nd = itab_at(&o->nodes, i);

		if (!nd || !nd->name || nd->ino == o->o.root_ino)
			continue;
		if (array_grow(&v, &cap, n, sizeof(*v), 64) ||
		    array_grow(&parents, &pcap, n, sizeof(*parents), 64) ||
		    !(v[n].name = strdup(nd->name)))
			break;
		parents[n++] = nd->parent;
	}
	ovl_unlock(o);
	for (size_t i = 0; i < n; i++) {
		fn(ctx, parents[i], v[i].name);
		free(v[i].name);
	}
	free(v);
	free(parents);
}

const struct ovl_base *ovl_get_base(struct ovl *o)
{
	return &o->base;
}

uint64_t ovl_root(struct ovl *o)
{
	return o->o.root_ino;
}

uint64_t ovl_next_ino(struct ovl *o)
{
	uint64_t n;

	ovl_lock(o);
	n = o->next_ino;
	ovl_unlock(o);
	return n;
}

int ovl_group_has_hl(struct ovl *o, uint64_t g)
{
	for (size_t i = 0; i < o->nhls; i++)
		if (o->hls[i].group == g)
			return 1;
	return 0;
}

int ovl_staged_hl(struct ovl *o, uint64_t g, uint64_t hl, uint64_t *ino)
{
	return staged_hl_find(o, g, hl, ino);
}

/* ---- lifetime --------------------------------------------------------- */

static int load_hl(void *ctx, const struct sinode *in)
{
	struct ovl *o = ctx;

	if (!in->bhl)
		return 0;
	SNAP_TRY(array_grow(&o->hls, &o->hlcap, o->nhls, sizeof(*o->hls), 8));
	o->hls[o->nhls++] = (struct hlmap){in->bgroup, in->bhl, in->ino};
	return 0;
}

struct stage *ovl_stage(struct ovl *o)
{
	return o->st;
}

void ovl_lock(struct ovl *o)
{
	pthread_mutex_lock(&o->lock);
}

/* A batch that could not be committed took its changes with it: the
 * nodes are read again from the stage (as when the tree starts afresh),
 * and the next sync reports it. */
static void batch_check(struct ovl *o)
{
	if (stage_lost(o->st) == o->lost)
		return;
	o->lost = stage_lost(o->st);
	o->gen++;
	snprintf(o->lostmsg, sizeof(o->lostmsg), "%s", snap_errmsg());
	o->lost_log = o->lost_close = o->lost_commit = 1;
}

int ovl_lost_commit(struct ovl *o)
{
	int rc = 0;

	ovl_lock(o);
	if (o->lost_commit) {
		o->lost_commit = 0;
		rc = ovl_lost_error(o);
	}
	ovl_unlock(o);
	return rc;
}

int ovl_lost_error(struct ovl *o)
{
	return snap_seterr(SNAP_EIO, "the latest changes to the tree did not "
			   "reach the stage and are undone (%s): copy them "
			   "again", o->lostmsg);
}

void ovl_unlock(struct ovl *o)
{
	batch_check(o);
	/* The batcher learns of a batch once; it then sleeps until it is
	 * due, woken by nobody. */
	if (!o->batch_armed && stage_batch_since(o->st)) {
		o->batch_armed = 1;
		pthread_cond_signal(&o->bcv);
	}
	pthread_mutex_unlock(&o->lock);
}

/* Commits the stage's batch BATCH_AGE after it opened (ops that need it
 * sooner commit it themselves). */
static void *batcher(void *arg)
{
	struct ovl *o = arg;

	pthread_mutex_lock(&o->lock);
	while (!o->closing) {
		double since = stage_batch_since(o->st), now = mono_sec();
		struct timespec ts;

		if (!since) {
			o->batch_armed = 0;
			pthread_cond_wait(&o->bcv, &o->lock);
			continue;
		}
		if (now < since + BATCH_AGE) {
			deadline_after(since + BATCH_AGE - now, &ts);
			pthread_cond_timedwait(&o->bcv, &o->lock, &ts);
			continue;
		}
		(void)stage_commit(o->st); /* a loss: batch_check */
		batch_check(o);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

int ovl_open(const struct ovl_opts *op, struct stage *st,
	     const struct ovl_base *b, struct ovl **out)
{
	struct ovl *o = calloc(1, sizeof(*o));
	struct stage_meta m;
	struct onode *r;
	int rc;

	*out = NULL;
	if (!o) {
		stage_close(st);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	o->o = *op;
	o->changed_at = mono_sec(); /* a resumed stage idles from now */
	o->dchanges = 1; /* a new node's blocks_at (0) is never current */
	snprintf(o->label, sizeof(o->label), "%s", op->label);
	o->st = st;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cv, NULL);
	pthread_cond_init(&o->bcv, NULL);
	bufpool_init(&o->passbufs, STREAM_BUSY);
	r = calloc(1, sizeof(*r));
	if (!r || itab_init(&o->nodes) ||
	    itab_put(&o->nodes, op->root_ino, r)) {
		free(r);
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto fail;
	}
	r->ino = op->root_ino;
	r->nlookup = 1;
	rc = stage_get_meta(st, &m);
	rc = rc ? rc : set_base(o, b);
	rc = rc ? rc : stage_inode_each(st, load_hl, o);
	if (rc)
		goto fail;
	o->next_ino = m.next_ino >= INO_NEW_BASE ? m.next_ino : INO_NEW_BASE;
	if (o->base.m && o->base.m->ino_next > o->next_ino)
		o->next_ino = o->base.m->ino_next;
	ostream_reset(o);
	if (o->o.stage_max && stage_data_usage(o->st, &o->used))
		o->used = 0;
	if (!o->o.read_only) {
		if (pthread_create(&o->batcher, NULL, batcher, o)) {
			rc = snap_seterr(SNAP_ENOMEM, "cannot start a thread");
			goto fail;
		}
		o->batcher_live = 1;
		stage_batch(st);
	}
	*out = o;
	return 0;
fail:
	ovl_close(o);
	return rc;
}

void ovl_close(struct ovl *o)
{
	if (!o)
		return;
	if (o->batcher_live) {
		pthread_mutex_lock(&o->lock);
		o->closing = 1;
		pthread_cond_signal(&o->bcv);
		pthread_mutex_unlock(&o->lock);
		pthread_join(o->batcher, NULL);
	}
	for (size_t i = 0; o->nodes.v && i < o->nodes.cap; i++) {
		struct onode *n = itab_at(&o->nodes, i);

		if (n) {
			onode_clear(n);
			free(n->fly);
			free(n);
		}
	}
	itab_free(&o->nodes);
	ostream_reset(o);
	free(o->sms);
	bufpool_destroy(&o->passbufs);
	free(o->hls);
	tree_free(&o->gtree);
	manifest_free(&o->m);
	stage_close(o->st);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cv);
	pthread_cond_destroy(&o->bcv);
	free(o);
}
