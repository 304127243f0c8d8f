/* overlay.c - a label's writable tree over its base; see overlay.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "acl.h"
#include "err.h"
#include "itab.h"
#include "overlay.h"
#include "vfs.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif

/* Sub-ranges of the control numbers: hashed base entries, created ones. */
#define INO_HASH_MASK ((1ULL << 61) - 1)
#define INO_HASH_BASE (OVL_INO_MIN + (1ULL << 40))
#define INO_NEW_BASE (OVL_INO_MIN + (1ULL << 61))
#define INO_STORED (1ULL << 63)
/* The kernel's view of control/ changes only through this mount, except
 * where the tree starts afresh (abort, empty), which invalidates it; a
 * second keeps the cost of the few attributes we change behind the
 * kernel's back (ACL coupling) bounded. */
#define TTL_CTL 1.0

struct onode {
	uint64_t ino, nlookup;
	uint64_t parent; /* the directory it was last found in */
	char *name;      /* its name there */
	uint64_t group;  /* its group root (itself for a group root; 0 for
			    the label directory) */
	uint64_t gen;    /* o->gen when its base side was resolved */
	uint8_t staged, unlinked, stale;
	struct sinode si; /* staged: the row, authoritative */
	/* base side (unstaged entries; staged ones keep it as origin) */
	uint8_t type;
	struct vfs_attr attr;
	uint8_t bkind;   /* directories */
	struct ref tree;
	uint8_t has_loc; /* its entry: pname in ptree */
	struct ref ptree;
	char *pname;
	uint64_t hl;
	char *target;
	/* open files */
	int opens, writers;
	int fsynced; /* no write since the last fsync */
};

struct hlmap {
	uint64_t group, hl, ino;
};

struct ovl {
	struct ovl_opts o;
	char label[LABEL_MAX + 1];
	struct stage *st;
	struct ovl_base base;
	struct manifest m;    /* the base's manifest (base.m points here) */
	struct tree gtree;    /* the base's groups as a directory */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct itab nodes;
	uint64_t gen;
	uint64_t next_ino, ino_reserved;
	int closed_gate; /* a commit runs: changes wait */
	int writers;     /* handles open for writing */
	uint64_t changes, synced; /* changes made, and when last synced */
	struct hlmap *hls; /* copied-up base hardlinks */
	size_t nhls, hlcap;
};

struct ovl_file {
	uint64_t ino;
	int wr, fd;
	struct centry *te; /* base reads: the pinned directory object */
	const struct tent *e;
	struct fread rd;
	char label[300];
};

struct ovl_dir {
	struct dslot {
		char *name;
		uint64_t ino;
	} *v;
	size_t n;
	uint64_t self, parent;
};

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

uint64_t ovl_base_ino(struct ovl *o, uint64_t dir, uint64_t group,
		      const struct tent *e)
{
	(void)o;
	if (e->ino & INO_STORED) {
		uint64_t n = e->ino & ~INO_STORED;

		if (n >= OVL_INO_MIN)
			return n;
	}
	if (e->type == ET_REG && e->hardlink)
		return hash_hl(group, e->hardlink);
	return hash_name(dir, e->name);
}

/* ---- node table (o->lock held) ---------------------------------------- */

static struct onode *node_find(struct ovl *o, uint64_t ino)
{
	return itab_get(&o->nodes, ino);
}

static void node_clear(struct onode *n)
{
	sinode_free(&n->si);
	free(n->name);
	free(n->pname);
	free(n->target);
	n->name = n->pname = n->target = NULL;
}

static void node_free(struct ovl *o, struct onode *n)
{
	if (itab_get(&o->nodes, n->ino) == n)
		itab_del(&o->nodes, n->ino);
	node_clear(n);
	free(n);
}

/* ---- attributes ------------------------------------------------------- */

static void staged_attr(struct ovl *o, const struct onode *n,
			struct vfs_attr *a)
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
		/* What is stored: the local copy's blocks, else the base's. */
		if (!si->data || stage_data_blocks(o->st, n->ino, &a->blocks))
			a->blocks = n->attr.blocks;
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

static void node_attr(struct ovl *o, const struct onode *n,
		      struct vfs_attr *a)
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
static int base_listing(struct ovl *o, uint8_t bkind, const struct ref *ref,
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

static void dir_base(const struct onode *d, uint8_t *bkind, struct ref *ref)
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
		node_clear(t);
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
	struct onode *live = node_find(o, ino);

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
		node_clear(t);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	return 0;
}

static int node_is_dir(const struct onode *n)
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
static int resolve(struct ovl *o, const struct onode *d, const char *name,
		   struct onode *t)
{
	const struct tree *tr;
	const struct tent *e;
	struct centry *pin;
	struct ref dref;
	uint8_t dkind;
	uint64_t ino;
	int rc;

	if (!node_is_dir(d))
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
	dir_base(d, &dkind, &dref);
	SNAP_TRY(base_listing(o, dkind, &dref, &pin, &tr));
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
static struct onode *node_adopt(struct ovl *o, struct onode *t, int ref)
{
	struct onode *n = node_find(o, t->ino);

	if (n) {
		/* Known already: take the template's backing (after a commit
		 * or abort the node binds to the new tree), keep its open and
		 * lookup state. */
		int opens = n->opens, writers = n->writers;
		int fsynced = n->fsynced;
		uint64_t nl = n->nlookup;

		node_clear(n);
		*n = *t;
		n->opens = opens;
		n->writers = writers;
		n->fsynced = fsynced;
		n->nlookup = nl + (ref ? 1 : 0);
		n->gen = o->gen;
		return n;
	}
	n = malloc(sizeof(*n));
	if (!n || itab_put(&o->nodes, t->ino, n)) {
		free(n);
		node_clear(t);
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
	return node_find(o, o->o.root_ino);
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
	d = node_find(o, n->parent);
	if (!d || !n->name)
		goto stale;
	SNAP_TRY(refresh(o, d));
	rc = resolve(o, d, n->name, &t);
	if (rc == SNAP_ENOENT)
		goto stale;
	if (rc)
		return rc;
	if (t.ino != n->ino) {
		node_clear(&t);
		goto stale;
	}
	node_adopt(o, &t, 0);
	return 0;
stale:
	n->gen = o->gen;
	n->stale = 1;
	return snap_seterr(SNAP_ENOENT, "entry vanished when the tree "
					"started afresh");
}

/* A live node by number, bound to the current tree. */
static int node_get(struct ovl *o, uint64_t ino, struct onode **out)
{
	struct onode *n = node_find(o, ino);

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

static int new_ino(struct ovl *o, uint64_t *ino)
{
	if (o->next_ino >= o->ino_reserved) {
		SNAP_TRY(stage_set_next_ino(o->st, o->next_ino + INO_BLOCK));
		o->ino_reserved = o->next_ino + INO_BLOCK;
	}
	*ino = o->next_ino++;
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

static int put_node(struct ovl *o, struct onode *n)
{
	return stage_inode_put(o->st, &n->si);
}

/* Makes n staged: a row of its own and, up to the label directory, a name
 * in each staged parent (a base hardlink gets no name: every base name of
 * it resolves to the row). */
static int copy_up(struct ovl *o, struct onode *n)
{
	struct sinode si;
	struct onode *p = NULL;
	int rc;

	if (n->staged)
		return 0;
	if (n->ino != o->o.root_ino && !n->hl) {
		p = node_find(o, n->parent);
		if (!p)
			return snap_seterr(SNAP_EIO, "%s: its directory is not "
					   "known (copy-up)", n->name);
		SNAP_TRY(refresh(o, p));
		SNAP_TRY(copy_up(o, p));
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
			struct onode *g = node_find(o, n->group);

			rc = g ? copy_up(o, g)
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

static int ref_is_zero(const struct ref *r)
{
	static const uint8_t zero[ID_LEN];

	return memcmp(r->id, zero, ID_LEN) == 0;
}

/* The base entry of an unstaged (or copied-up) node, pinned: in its
 * directory object, or for a group directory among the base's groups. */
static int base_entry(struct ovl *o, const struct onode *n,
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
static int materialize(struct ovl *o, struct onode *n, int truncate)
{
	const struct tent *e;
	struct centry *pin = NULL;
	int fd, rc = 0;

	if (n->si.data)
		return 0;
	SNAP_TRY(stage_data_open(o->st, n->ino, O_RDWR | O_CREAT | O_TRUNC,
				 &fd));
	if (!truncate && n->si.has_orig && n->si.oname) {
		rc = base_entry(o, n, &pin, &e);
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
static int gate_wait(struct ovl *o)
{
	if (o->o.read_only)
		return snap_seterr(SNAP_EROFS, "control/%s: its stage is in use "
				   "by another snapfs", o->label);
	while (o->closed_gate)
		pthread_cond_wait(&o->cv, &o->lock);
	o->changes++;
	return 0;
}

static int64_t now(void)
{
	return now_ns();
}

static void touch_dir(struct onode *d)
{
	d->si.mtime_ns = d->si.ctime_ns = now();
}

/* Names at the label level are groups: directories with a group name. */
static int group_level_ok(struct ovl *o, const struct onode *d,
			  const char *name, int is_dir)
{
	if (d->ino != o->o.root_ino)
		return 0;
	if (!is_dir)
		return snap_seterr(SNAP_EPERM,
				   "control/%s/%s: only directories (groups) "
				   "can be made at the label level",
				   o->label, name);
	return group_check(name);
}

static int name_check(const char *name)
{
	if (strlen(name) > 255)
		return snap_seterr(SNAP_ENAMETOOLONG, "name too long");
	return 0;
}

/* The directory d must not have name yet. */
static int absent(struct ovl *o, const struct onode *d, const char *name)
{
	struct onode t;
	int rc = resolve(o, d, name, &t);

	if (rc == 0) {
		node_clear(&t);
		return snap_seterr(SNAP_EEXIST, "%s exists", name);
	}
	return rc == SNAP_ENOENT ? 0 : rc;
}

/* A new staged inode named name in d. */
static int add_new(struct ovl *o, const struct ovl_ctx *c, struct onode *d,
		   const char *name, uint8_t type, uint32_t mode,
		   struct onode **out)
{
	struct onode t;
	uint32_t gid = c->gid;
	int rc;

	SNAP_TRY(name_check(name));
	SNAP_TRY(group_level_ok(o, d, name, type == ET_DIR));
	SNAP_TRY(absent(o, d, name));
	SNAP_TRY(copy_up(o, d));
	/* A setgid directory hands on its group, and to directories its
	 * setgid bit, as Linux filesystems do. */
	if (d->si.mode & S_ISGID) {
		gid = d->si.gid;
		if (type == ET_DIR)
			mode |= S_ISGID;
	}
	memset(&t, 0, sizeof(t));
	SNAP_TRY(new_ino(o, &t.ino));
	t.staged = 1;
	t.type = type;
	t.parent = d->ino;
	t.group = d->group ? d->group : t.ino;
	t.gen = o->gen;
	t.si.ino = t.ino;
	t.si.type = type;
	t.si.mode = mode;
	t.si.uid = c->uid;
	t.si.gid = gid;
	t.si.mtime_ns = t.si.ctime_ns = now();
	t.si.nlink = 1;
	t.name = strdup(name);
	if (!t.name)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rc = stage_inode_put(o->st, &t.si);
	rc = rc ? rc : stage_dirent_put(o->st, d->ino, name, t.ino);
	touch_dir(d);
	rc = rc ? rc : put_node(o, d);
	if (rc) {
		node_clear(&t);
		return rc;
	}
	*out = node_adopt(o, &t, 1);
	return *out ? 0 : SNAP_ENOMEM;
}

/* Takes name out of directory d (which is staged): a whiteout when the
 * base has the name, else the staged name goes. */
static int drop_name(struct ovl *o, struct onode *d, const char *name)
{
	const struct tree *tr;
	struct centry *pin;
	struct ref dref;
	uint8_t dkind;
	int rc, inbase;

	dir_base(d, &dkind, &dref);
	SNAP_TRY(base_listing(o, dkind, &dref, &pin, &tr));
	inbase = tree_find(tr, name) != NULL;
	cache_release(o->o.c, pin);
	rc = inbase ? stage_dirent_put(o->st, d->ino, name, 0)
		    : stage_dirent_del(o->st, d->ino, name);
	return rc;
}

/* The inode n lost a name: when it has none left and nobody has it open,
 * its row and data go. */
static int lost_name(struct ovl *o, struct onode *n)
{
	if (node_is_dir(n)) {
		n->unlinked = 1;
		return n->staged ? stage_inode_del(o->st, n->ino) : 0;
	}
	if (!n->staged)
		return 0; /* a base name of a hardlink; others remain */
	if (n->si.nlink > 0)
		n->si.nlink--;
	n->si.ctime_ns = now();
	if (n->si.nlink > 0 || n->si.bhl)
		return put_node(o, n);
	n->unlinked = 1;
	if (n->opens)
		return put_node(o, n); /* reaped at release or recovery */
	SNAP_TRY(stage_data_unlink(o->st, n->ino));
	return stage_inode_del(o->st, n->ino);
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
static int merge_dir(struct ovl *o, const struct onode *d,
		     int (*fn)(void *ctx, const char *name,
			       const struct tent *e, uint64_t ino),
		     void *ctx)
{
	struct centry *pin;
	struct merge m = {.o = o, .d = d, .fn = fn, .ctx = ctx};
	struct ref dref;
	int rc;

	dir_base(d, &m.dkind, &dref);
	m.dref = &dref;
	SNAP_TRY(base_listing(o, m.dkind, &dref, &pin, &m.tr));
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

static int dir_is_empty(struct ovl *o, const struct onode *d)
{
	size_t n = 0;
	int rc = merge_dir(o, d, count_one, &n);

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
	rc = node_get(o, dir, &d);
	rc = rc ? rc : resolve(o, d, name, &t);
	if (rc == 0) {
		n = node_adopt(o, &t, 1);
		if (n)
			node_attr(o, n, a);
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
	n = node_find(o, ino);
	if (n && n->ino != o->o.root_ino) {
		n->nlookup -= nl < n->nlookup ? nl : n->nlookup;
		if (n->nlookup == 0 && n->opens == 0)
			node_free(o, n);
	}
	ovl_unlock(o);
}

int ovl_has(struct ovl *o, uint64_t ino)
{
	int has;

	ovl_lock(o);
	has = node_find(o, ino) != NULL;
	ovl_unlock(o);
	return has;
}

int ovl_getattr(struct ovl *o, uint64_t ino, struct vfs_attr *a)
{
	struct onode *n;
	int rc;

	ovl_lock(o);
	rc = node_get(o, ino, &n);
	if (rc == 0)
		node_attr(o, n, a);
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
	rc = node_get(o, ino, &n);
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
	rc = node_get(o, ino, &n);
	if (rc == 0 && !node_is_dir(n))
		rc = snap_seterr(SNAP_ENOTDIR, "not a directory");
	if (rc == 0) {
		d->self = n->ino;
		d->parent = n->parent;
		s.dir = n;
		rc = merge_dir(o, n, snap_one, &s);
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
	rc = node_get(o, d->self, &dir);
	/* Resolving again keeps one rule for numbers and attributes; an
	 * entry removed since opendir is skipped as absent. */
	rc = rc ? rc : resolve(o, dir, d->v[idx].name, &t);
	if (rc == 0) {
		n = node_adopt(o, &t, plus);
		if (n)
			node_attr(o, n, a);
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

/* ---- namespace changes ------------------------------------------------ */

int ovl_mknod(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	      const char *name, uint32_t mode, uint32_t rmajor,
	      uint32_t rminor, struct vfs_attr *a)
{
	struct onode *d, *n;
	uint8_t type = ent_type(mode); /* 0: a socket, never stored */
	int rc;

	if (!type || type == ET_DIR || type == ET_LNK)
		return snap_seterr(SNAP_EPERM, "%s: this kind of file "
				   "cannot be stored", name);
	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, dir, &d);
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = add_new(o, c, d, name, type, mode, &n);
		if (rc == 0) {
			n->si.rdev_major = rmajor;
			n->si.rdev_minor = rminor;
			if (type == ET_REG) {
				int fd;

				rc = stage_data_open(o->st, n->ino,
						     O_RDWR | O_CREAT | O_TRUNC,
						     &fd);
				if (rc == 0) {
					close(fd);
					n->si.data = 1;
					n->si.wstate = WS_UNSYNCED;
				}
			}
			rc = rc ? rc : put_node(o, n);
		}
		rc = stage_end(o->st, rc);
		if (rc == 0)
			node_attr(o, n, a);
	}
	ovl_unlock(o);
	return rc;
}

int ovl_mkdir(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	      const char *name, uint32_t mode, struct vfs_attr *a)
{
	struct onode *d, *n;
	int rc;

	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, dir, &d);
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = add_new(o, c, d, name, ET_DIR, S_IFDIR | (mode & 07777),
			     &n);
		rc = stage_end(o->st, rc);
		if (rc == 0)
			node_attr(o, n, a);
	}
	ovl_unlock(o);
	return rc;
}

int ovl_symlink(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
		const char *name, const char *target, struct vfs_attr *a)
{
	struct onode *d, *n;
	int rc;

	if (!*target || strlen(target) > 4095)
		return snap_seterr(SNAP_ENAMETOOLONG, "bad symlink target");
	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, dir, &d);
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = add_new(o, c, d, name, ET_LNK, S_IFLNK | 0777, &n);
		if (rc == 0) {
			n->si.target = strdup(target);
			n->si.size = strlen(target);
			rc = n->si.target ? put_node(o, n)
					  : snap_seterr(SNAP_ENOMEM,
							"out of memory");
		}
		rc = stage_end(o->st, rc);
		if (rc == 0)
			node_attr(o, n, a);
	}
	ovl_unlock(o);
	return rc;
}

int ovl_link(struct ovl *o, uint64_t ino, uint64_t dir, const char *name,
	     struct vfs_attr *a)
{
	struct onode *n, *d;
	int rc;

	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, ino, &n);
	rc = rc ? rc : node_get(o, dir, &d);
	if (rc == 0 && node_is_dir(n))
		rc = snap_seterr(SNAP_EPERM, "hardlinks to directories");
	/* Hardlink ids are per group: a link across groups cannot be
	 * stored as one. */
	if (rc == 0 && d->group != n->group)
		rc = snap_seterr(SNAP_EXDEV, "%s: hardlinks cannot cross "
				 "groups", name);
	rc = rc ? rc : name_check(name);
	rc = rc ? rc : group_level_ok(o, d, name, 0);
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = absent(o, d, name);
		rc = rc ? rc : copy_up(o, n);
		rc = rc ? rc : copy_up(o, d);
		rc = rc ? rc : stage_dirent_put(o->st, d->ino, name, n->ino);
		if (rc == 0) {
			n->si.nlink = (n->si.nlink ? n->si.nlink : 1) + 1;
			n->si.ctime_ns = now();
			touch_dir(d);
			rc = put_node(o, n);
			rc = rc ? rc : put_node(o, d);
		}
		rc = stage_end(o->st, rc);
		if (rc == 0) {
			n->nlookup++;
			node_attr(o, n, a);
		}
	}
	ovl_unlock(o);
	return rc;
}

/* Removes name from d: a file (dir 0) or an empty directory (dir 1). */
static int remove_name(struct ovl *o, uint64_t dir, const char *name,
		       int want_dir)
{
	struct onode *d, t, *n;
	int rc, isdir;

	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, dir, &d);
	rc = rc ? rc : resolve(o, d, name, &t);
	if (rc) {
		ovl_unlock(o);
		return rc;
	}
	n = node_adopt(o, &t, 0);
	if (!n) {
		ovl_unlock(o);
		return SNAP_ENOMEM;
	}
	isdir = n->staged ? n->si.type == ET_DIR : n->type == ET_DIR;
	if (want_dir && !isdir)
		rc = snap_seterr(SNAP_ENOTDIR, "%s: not a directory", name);
	else if (!want_dir && isdir)
		rc = snap_seterr(SNAP_EISDIR, "%s: is a directory", name);
	if (rc == 0 && isdir) {
		rc = dir_is_empty(o, n);
		rc = rc < 0 ? rc
		     : rc  ? 0
			   : snap_seterr(SNAP_ENOTEMPTY, "%s: not empty",
					 name);
	}
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = copy_up(o, d);
		rc = rc ? rc : drop_name(o, d, name);
		if (rc == 0 && isdir && n->staged)
			rc = stage_dirent_clear(o->st, n->ino);
		rc = rc ? rc : lost_name(o, n);
		if (rc == 0) {
			touch_dir(d);
			rc = put_node(o, d);
		}
		rc = stage_end(o->st, rc);
	}
	if (n->nlookup == 0 && n->opens == 0)
		node_free(o, n);
	ovl_unlock(o);
	return rc;
}

int ovl_unlink(struct ovl *o, uint64_t dir, const char *name)
{
	return remove_name(o, dir, name, 0);
}

int ovl_rmdir(struct ovl *o, uint64_t dir, const char *name)
{
	return remove_name(o, dir, name, 1);
}

int ovl_rename(struct ovl *o, uint64_t dir, const char *name, uint64_t ndir,
	       const char *nname, unsigned flags)
{
	struct onode *d, *nd, *s = NULL, *x = NULL, t;
	int rc, sdir;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return snap_seterr(SNAP_EINVAL, "rename flags not supported");
	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, dir, &d);
	rc = rc ? rc : node_get(o, ndir, &nd);
	rc = rc ? rc : name_check(nname);
	if (rc == 0 && (rc = resolve(o, d, name, &t)) == 0 &&
	    !(s = node_adopt(o, &t, 0)))
		rc = SNAP_ENOMEM;
	if (rc)
		goto out;
	sdir = node_is_dir(s);
	rc = resolve(o, nd, nname, &t);
	if (rc == 0) {
		x = node_adopt(o, &t, 0);
		if (!x) {
			rc = SNAP_ENOMEM;
			goto out;
		}
	} else if (rc != SNAP_ENOENT) {
		goto out;
	}
	rc = 0;
	if (x == s)
		goto out; /* the same file: nothing to do */
	if (x && (flags & RENAME_NOREPLACE)) {
		rc = snap_seterr(SNAP_EEXIST, "%s exists", nname);
		goto out;
	}
	if (!x && (flags & RENAME_EXCHANGE)) {
		rc = snap_seterr(SNAP_ENOENT, "%s does not exist", nname);
		goto out;
	}
	rc = group_level_ok(o, nd, nname, sdir);
	if (rc == 0 && x && (flags & RENAME_EXCHANGE))
		rc = group_level_ok(o, d, name, node_is_dir(x));
	/* Hardlink ids are per group, and a directory from the base takes
	 * its hardlinks along unread: neither may change group. */
	if (rc == 0 && nd->group != s->group &&
	    (sdir || s->hl || (s->staged && (s->si.bhl || s->si.nlink > 1))))
		rc = snap_seterr(SNAP_EXDEV, "%s: directories and hardlinked "
				 "files cannot move to another group", name);
	if (rc == 0 && x && (flags & RENAME_EXCHANGE) && d->group != x->group &&
	    (node_is_dir(x) || x->hl ||
	     (x->staged && (x->si.bhl || x->si.nlink > 1))))
		rc = snap_seterr(SNAP_EXDEV, "%s: directories and hardlinked "
				 "files cannot move to another group", nname);
	if (rc)
		goto out;
	if (x && !(flags & RENAME_EXCHANGE)) {
		int xdir = node_is_dir(x);

		if (sdir && !xdir)
			rc = snap_seterr(SNAP_ENOTDIR, "%s: not a directory",
					 nname);
		else if (!sdir && xdir)
			rc = snap_seterr(SNAP_EISDIR, "%s: is a directory",
					 nname);
		else if (xdir) {
			rc = dir_is_empty(o, x);
			rc = rc < 0 ? rc
			     : rc  ? 0
				   : snap_seterr(SNAP_ENOTEMPTY,
						 "%s: not empty", nname);
		}
		if (rc)
			goto out;
	}
	rc = stage_begin(o->st);
	if (rc)
		goto out;
	rc = copy_up(o, s);
	rc = rc ? rc : (x ? copy_up(o, x) : 0);
	rc = rc ? rc : copy_up(o, d);
	rc = rc ? rc : copy_up(o, nd);
	if (rc == 0 && x && (flags & RENAME_EXCHANGE)) {
		rc = stage_dirent_put(o->st, d->ino, name, x->ino);
		rc = rc ? rc : stage_dirent_put(o->st, nd->ino, nname, s->ino);
	} else if (rc == 0) {
		if (x && node_is_dir(x))
			rc = stage_dirent_clear(o->st, x->ino);
		rc = rc ? rc : (x ? lost_name(o, x) : 0);
		rc = rc ? rc : stage_dirent_put(o->st, nd->ino, nname, s->ino);
		rc = rc ? rc : drop_name(o, d, name);
	}
	if (rc == 0) {
		s->si.ctime_ns = now();
		touch_dir(d);
		touch_dir(nd);
		rc = put_node(o, s);
		rc = rc ? rc : put_node(o, d);
		rc = rc ? rc : (nd != d ? put_node(o, nd) : 0);
		if (rc == 0 && x && (flags & RENAME_EXCHANGE)) {
			x->si.ctime_ns = now();
			rc = put_node(o, x);
		}
	}
	rc = stage_end(o->st, rc);
	if (rc == 0) {
		char *nn = strdup(nname);

		if (nn) {
			free(s->name);
			s->name = nn;
			s->parent = nd->ino;
		}
		if (x && (flags & RENAME_EXCHANGE)) {
			char *xn = strdup(name);

			if (xn) {
				free(x->name);
				x->name = xn;
				x->parent = d->ino;
			}
		}
		if (nd->group != s->group)
			s->group = nd->group;
		if (x && (flags & RENAME_EXCHANGE) && d->group != x->group)
			x->group = d->group;
	}
out:
	if (x && x != s && x->nlookup == 0 && x->opens == 0)
		node_free(o, x);
	if (s && s->nlookup == 0 && s->opens == 0)
		node_free(o, s);
	ovl_unlock(o);
	return rc;
}

/* ---- attributes and xattrs -------------------------------------------- */

/* Moves the base's attributes of a copied-up inode into the stage. */
static int own_xattrs(struct ovl *o, struct onode *n)
{
	const struct tent *e;
	struct centry *pin;
	int rc;

	if (n->si.own_xattrs)
		return 0;
	rc = base_entry(o, n, &pin, &e);
	for (size_t i = 0; e && rc == 0 && i < e->nxattrs; i++)
		rc = stage_xattr_set(o->st, n->ino, e->xattrs[i].name,
				     e->xattrs[i].val, e->xattrs[i].len);
	cache_release(o->o.c, pin);
	if (rc == 0)
		n->si.own_xattrs = 1;
	return rc;
}

/* Keeps a stored access ACL in step with a new mode, as the kernel does
 * for filesystems that hold ACLs (unless the kernel does it for us). */
static int chmod_acl(struct ovl *o, struct onode *n)
{
	struct buf v = BUF_INIT;
	int rc;

	if (o->o.kernel_acl)
		return 0;
	rc = stage_xattr_get(o->st, n->ino, ACL_XATTR_ACCESS, &v);
	if (rc == SNAP_ENOENT)
		return 0;
	if (rc == 0 && acl_from_mode(v.p, v.len, n->si.mode) == 0)
		rc = stage_xattr_set(o->st, n->ino, ACL_XATTR_ACCESS, v.p,
				     v.len);
	buf_free(&v);
	return rc;
}

int ovl_setattr(struct ovl *o, uint64_t ino, const struct vfs_setattr *sa,
		struct ovl_file *f, struct vfs_attr *a)
{
	struct onode *n;
	int64_t t = now();
	int rc;

	(void)f;
	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, ino, &n);
	if (rc == 0 && (sa->valid & VFS_SET_SIZE) && !node_is_dir(n) &&
	    (n->staged ? n->si.type : n->type) != ET_REG)
		rc = snap_seterr(SNAP_EINVAL, "not a regular file");
	if (rc == 0 && (sa->valid & VFS_SET_SIZE) && node_is_dir(n))
		rc = snap_seterr(SNAP_EISDIR, "is a directory");
	rc = rc ? rc : stage_begin(o->st);
	if (rc)
		goto out;
	rc = copy_up(o, n);
	if (rc == 0 && (sa->valid & VFS_SET_SIZE)) {
		rc = materialize(o, n, sa->size == 0);
		if (rc == 0) {
			int fd;

			rc = stage_data_open(o->st, n->ino, O_RDWR, &fd);
			if (rc == 0) {
				if (ftruncate(fd, (off_t)sa->size))
					rc = snap_syserr(errno, "truncating");
				close(fd);
			}
		}
		if (rc == 0) {
			n->si.size = sa->size;
			n->si.mtime_ns = t;
			if (n->si.wstate == WS_CLEAN)
				n->si.wstate = WS_UNSYNCED;
		}
	}
	if (rc == 0 && (sa->valid & VFS_SET_MODE)) {
		n->si.mode = (n->si.mode & S_IFMT) | (sa->mode & 07777);
		if (n->si.own_xattrs)
			rc = chmod_acl(o, n);
	}
	if (rc == 0 && (sa->valid & VFS_SET_UID))
		n->si.uid = sa->uid;
	if (rc == 0 && (sa->valid & VFS_SET_GID))
		n->si.gid = sa->gid;
	if (rc == 0 && (sa->valid & VFS_SET_MTIME))
		n->si.mtime_ns = (sa->valid & VFS_SET_MTIME_NOW) ? t
								   : sa->mtime_ns;
	if (rc == 0) {
		n->si.ctime_ns = (sa->valid & VFS_SET_CTIME) ? sa->ctime_ns : t;
		rc = put_node(o, n);
	}
	rc = stage_end(o->st, rc);
	if (rc == 0)
		node_attr(o, n, a);
out:
	ovl_unlock(o);
	return rc;
}

int ovl_getxattr(struct ovl *o, uint64_t ino, const char *name,
		 struct buf *out)
{
	struct onode *n;
	struct centry *pin = NULL;
	const struct tent *e;
	int rc;

	ovl_lock(o);
	rc = node_get(o, ino, &n);
	if (rc == 0 && n->staged && n->si.own_xattrs) {
		rc = stage_xattr_get(o->st, n->ino, name, out);
	} else if (rc == 0) {
		rc = base_entry(o, n, &pin, &e);
		if (rc == 0) {
			rc = SNAP_ENOENT;
			for (size_t i = 0; e && i < e->nxattrs; i++)
				if (strcmp(e->xattrs[i].name, name) == 0) {
					out->len = 0;
					rc = buf_add(out, e->xattrs[i].val,
						     e->xattrs[i].len);
					break;
				}
		}
		cache_release(o->o.c, pin);
	}
	ovl_unlock(o);
	if (rc == SNAP_ENOENT)
		rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	return rc;
}

static int list_one(void *ctx, const char *name, const void *val, size_t len)
{
	(void)val, (void)len;
	return buf_add(ctx, name, strlen(name) + 1);
}

int ovl_listxattr(struct ovl *o, uint64_t ino, struct buf *out)
{
	struct onode *n;
	struct centry *pin = NULL;
	const struct tent *e;
	int rc;

	out->len = 0;
	ovl_lock(o);
	rc = node_get(o, ino, &n);
	if (rc == 0 && n->staged && n->si.own_xattrs) {
		rc = stage_xattr_each(o->st, n->ino, list_one, out);
	} else if (rc == 0) {
		rc = base_entry(o, n, &pin, &e);
		for (size_t i = 0; rc == 0 && e && i < e->nxattrs; i++)
			rc = buf_add(out, e->xattrs[i].name,
				     strlen(e->xattrs[i].name) + 1);
		cache_release(o->o.c, pin);
	}
	ovl_unlock(o);
	return rc;
}

/* control/<label> itself is not part of any backup. */
static int xattr_storable(struct ovl *o, const struct onode *n)
{
	if (n->ino == o->o.root_ino)
		return snap_seterr(SNAP_EUNSUPP, "control/%s keeps no "
				   "attributes (its groups do)",
				   o->label);
	return 0;
}

int ovl_setxattr(struct ovl *o, uint64_t ino, const char *name,
		 const void *val, size_t len, int flags)
{
	struct onode *n;
	struct buf old = BUF_INIT;
	uint32_t perm = 0;
	int rc, had = SNAP_ENOENT, acl = 0, minimal = 0;

	if (strlen(name) > 255 || len > 65536)
		return snap_seterr(SNAP_ERANGE, "attribute too large");
	/* An access ACL sets the mode's permission bits, and one that says
	 * no more than the mode is not kept (as Linux filesystems do): tar
	 * and cp set one on every directory, the group directories too. */
	if (!o->o.kernel_acl && strcmp(name, ACL_XATTR_ACCESS) == 0 &&
	    acl_to_mode(val, len, &perm) == 0) {
		acl = 1;
		minimal = acl_is_minimal(val, len) == 1;
	}
	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, ino, &n);
	rc = rc || minimal ? rc : xattr_storable(o, n);
	rc = rc ? rc : stage_begin(o->st);
	if (rc)
		goto out;
	rc = copy_up(o, n);
	rc = rc || (minimal && xattr_storable(o, n)) ? rc : own_xattrs(o, n);
	if (rc == 0 && n->si.own_xattrs) {
		had = stage_xattr_get(o->st, n->ino, name, &old);
		if (had != 0 && had != SNAP_ENOENT)
			rc = had;
		else if ((flags & XATTR_CREATE) && had == 0)
			rc = snap_seterr(SNAP_EEXIST, "%s exists", name);
		else if ((flags & XATTR_REPLACE) && had == SNAP_ENOENT)
			rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	}
	if (rc == 0 && acl)
		n->si.mode = (n->si.mode & ~0777u) | perm;
	if (rc == 0 && minimal)
		rc = had == 0 ? stage_xattr_del(o->st, n->ino, name) : 0;
	else
		rc = rc ? rc : stage_xattr_set(o->st, n->ino, name, val, len);
	if (rc == 0) {
		n->si.ctime_ns = now();
		rc = put_node(o, n);
	}
	rc = stage_end(o->st, rc);
out:
	buf_free(&old);
	ovl_unlock(o);
	return rc;
}

int ovl_removexattr(struct ovl *o, uint64_t ino, const char *name)
{
	struct onode *n;
	struct buf old = BUF_INIT;
	int rc;

	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, ino, &n);
	if (rc == 0 && xattr_storable(o, n)) {
		rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
		goto out;
	}
	rc = rc ? rc : stage_begin(o->st);
	if (rc)
		goto out;
	rc = copy_up(o, n);
	rc = rc ? rc : own_xattrs(o, n);
	if (rc == 0) {
		rc = stage_xattr_get(o->st, n->ino, name, &old);
		if (rc == SNAP_ENOENT)
			rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	}
	rc = rc ? rc : stage_xattr_del(o->st, n->ino, name);
	if (rc == 0) {
		n->si.ctime_ns = now();
		rc = put_node(o, n);
	}
	rc = stage_end(o->st, rc);
out:
	buf_free(&old);
	ovl_unlock(o);
	return rc;
}

/* ---- files ------------------------------------------------------------ */

static void file_label(struct ovl *o, struct onode *n, struct ovl_file *f)
{
	snprintf(f->label, sizeof(f->label), "control/%s: %s", o->label,
		 n->name ? n->name : "?");
}

/* A writer opens: the content is staged and untrusted until closed. */
static int start_writing(struct ovl *o, struct onode *n, int truncate)
{
	int rc = copy_up(o, n);

	rc = rc ? rc : materialize(o, n, truncate);
	if (rc == 0 && truncate && n->si.size) {
		int fd;

		rc = stage_data_open(o->st, n->ino, O_RDWR | O_TRUNC, &fd);
		if (rc == 0)
			close(fd);
		n->si.size = 0;
		n->si.mtime_ns = n->si.ctime_ns = now();
	}
	if (rc == 0) {
		n->si.wstate = WS_WRITING;
		rc = put_node(o, n);
	}
	return rc;
}

/* A handle on n; fd, when >= 0, is the staged copy already open (and
 * becomes the handle's). */
static int open_common(struct ovl *o, struct onode *n, int flags, int fd,
		       struct ovl_file **out)
{
	struct ovl_file *f = calloc(1, sizeof(*f));
	int rc = 0, wr = (flags & O_ACCMODE) != O_RDONLY;

	if (!f) {
		if (fd >= 0)
			close(fd);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	f->fd = fd;
	f->ino = n->ino;
	f->wr = wr;
	fread_init(&f->rd);
	file_label(o, n, f);
	if (f->fd < 0 && n->staged && n->si.data) {
		rc = stage_data_open(o->st, n->ino, wr ? O_RDWR : O_RDONLY,
				     &f->fd);
	} else if (f->fd < 0 && (!n->staged || n->si.has_orig)) {
		rc = base_entry(o, n, &f->te, &f->e);
		if (rc == 0 && (!f->e || f->e->type != ET_REG))
			rc = snap_seterr(SNAP_ECORRUPT, "%s vanished from its "
					 "directory object", f->label);
	}
	if (rc) {
		cache_release(o->o.c, f->te);
		fread_destroy(&f->rd);
		free(f);
		return rc;
	}
	n->opens++;
	if (wr) {
		n->writers++;
		o->writers++;
	}
	*out = f;
	return 0;
}

int ovl_open_file(struct ovl *o, uint64_t ino, int flags,
		  struct ovl_file **out)
{
	struct onode *n;
	int rc, wr = (flags & O_ACCMODE) != O_RDONLY;

	*out = NULL;
	ovl_lock(o);
	rc = wr ? gate_wait(o) : 0;
	rc = rc ? rc : node_get(o, ino, &n);
	if (rc == 0 && node_is_dir(n))
		rc = snap_seterr(SNAP_EISDIR, "is a directory");
	if (rc == 0 && (n->staged ? n->si.type : n->type) != ET_REG)
		rc = snap_seterr(SNAP_EINVAL, "not a regular file");
	if (rc == 0 && wr) {
		rc = stage_begin(o->st);
		rc = rc ? rc : start_writing(o, n, (flags & O_TRUNC) != 0);
		rc = stage_end(o->st, rc);
	}
	rc = rc ? rc : open_common(o, n, flags, -1, out);
	ovl_unlock(o);
	return rc;
}

int ovl_create(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	       const char *name, uint32_t mode, int flags, struct vfs_attr *a,
	       struct ovl_file **out)
{
	struct onode *d, *n = NULL;
	int rc, fd = -1;

	*out = NULL;
	ovl_lock(o);
	rc = gate_wait(o);
	rc = rc ? rc : node_get(o, dir, &d);
	rc = rc ? rc : stage_begin(o->st);
	if (rc == 0) {
		rc = add_new(o, c, d, name, ET_REG, S_IFREG | (mode & 07777),
			     &n);
		rc = rc ? rc
			: stage_data_open(o->st, n->ino,
					  O_RDWR | O_CREAT | O_TRUNC, &fd);
		if (rc == 0) {
			n->si.data = 1;
			n->si.wstate = WS_WRITING;
			rc = put_node(o, n);
		}
		rc = stage_end(o->st, rc);
	}
	if (rc && fd >= 0) {
		close(fd);
		fd = -1;
	}
	/* Even opened read-only (O_CREAT|O_RDONLY) the new file counts as
	 * written until it is closed. */
	rc = rc ? rc : open_common(o, n, (flags & ~O_ACCMODE) | O_RDWR, fd, out);
	if (rc == 0)
		node_attr(o, n, a);
	ovl_unlock(o);
	return rc;
}

int ovl_read(struct ovl *o, struct ovl_file *f, uint64_t off, size_t size,
	     struct vfs_read *rd)
{
	struct onode *n;
	uint64_t fsize = 0;
	int rc, fd = -1;

	ovl_lock(o);
	rc = node_get(o, f->ino, &n);
	/* A reader that opened before a writer staged the file reads the
	 * staged copy from then on. */
	if (rc == 0 && n->staged && n->si.data && f->fd < 0) {
		rc = stage_data_open(o->st, n->ino, O_RDONLY, &f->fd);
		if (rc == 0) {
			cache_release(o->o.c, f->te);
			f->te = NULL;
			f->e = NULL;
		}
	}
	if (rc == 0 && n->staged && n->si.data)
		fsize = n->si.size;
	fd = f->fd;
	ovl_unlock(o);
	if (rc)
		return rc;
	if (fd >= 0)
		return fread_fd(fd, fsize, off, size, rd);
	if (!f->e) {
		memset(rd, 0, sizeof(*rd));
		rd->fd = -1;
		return 0;
	}
	return fread_range(o->o.c, o->base.series, f->e, &f->rd,
			   o->o.readahead_max, off, size, rd);
}

int ovl_write(struct ovl *o, struct ovl_file *f, const void *buf, size_t n,
	      uint64_t off)
{
	struct onode *nd;
	size_t done = 0;
	int rc = 0;

	if (!f->wr || f->fd < 0)
		return snap_seterr(SNAP_EINVAL, "file not open for writing");
	ovl_lock(o);
	rc = node_get(o, f->ino, &nd);
	/* The first write after an fsync makes the content untrusted
	 * again: after a crash it reverts. */
	if (rc == 0 && nd->fsynced) {
		nd->si.wstate = WS_WRITING;
		rc = put_node(o, nd);
		nd->fsynced = rc != 0;
	}
	ovl_unlock(o);
	while (rc == 0 && done < n) {
		ssize_t w = pwrite(f->fd, (const uint8_t *)buf + done,
				   n - done, (off_t)(off + done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = snap_syserr(errno, "%s: staging a write",
					 f->label);
		else
			done += (size_t)w;
	}
	ovl_lock(o);
	if (rc == 0 && node_get(o, f->ino, &nd) == 0) {
		if (off + n > nd->si.size)
			nd->si.size = off + n;
		nd->si.mtime_ns = nd->si.ctime_ns = now();
	}
	ovl_unlock(o);
	return rc;
}

int ovl_flush(struct ovl *o, struct ovl_file *f)
{
	(void)o, (void)f;
	return 0;
}

int ovl_fsync(struct ovl *o, struct ovl_file *f, int datasync)
{
	struct onode *n;
	int rc;

	if (f->fd >= 0 && (datasync ? fdatasync(f->fd) : fsync(f->fd)))
		return snap_syserr(errno, "%s: fsync", f->label);
	ovl_lock(o);
	rc = node_get(o, f->ino, &n);
	if (rc == 0 && n->staged) {
		n->si.wstate = WS_CLEAN;
		rc = put_node(o, n);
		if (rc == 0 && n->writers)
			n->fsynced = 1;
	}
	rc = rc ? rc : stage_flush_log(o->st);
	ovl_unlock(o);
	return rc;
}

int ovl_fallocate(struct ovl *o, struct ovl_file *f, int mode, uint64_t off,
		  uint64_t len)
{
	struct onode *n;
	struct stat st;
	int rc = 0;

	if (!f->wr || f->fd < 0)
		return snap_seterr(SNAP_EINVAL, "file not open for writing");
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return snap_seterr(SNAP_EUNSUPP, "fallocate mode %d", mode);
	if (fallocate(f->fd, mode, (off_t)off, (off_t)len))
		return snap_syserr(errno, "%s: fallocate", f->label);
	if (fstat(f->fd, &st))
		return snap_syserr(errno, "%s", f->label);
	ovl_lock(o);
	rc = node_get(o, f->ino, &n);
	if (rc == 0) {
		n->si.size = (uint64_t)st.st_size;
		n->si.ctime_ns = now();
		if (!(mode & FALLOC_FL_KEEP_SIZE))
			n->si.mtime_ns = n->si.ctime_ns;
	}
	ovl_unlock(o);
	return rc;
}

void ovl_release(struct ovl *o, struct ovl_file *f)
{
	struct onode *n;

	if (!f)
		return;
	ovl_lock(o);
	n = node_find(o, f->ino);
	if (n) {
		n->opens--;
		if (f->wr) {
			n->writers--;
			o->writers--;
			pthread_cond_broadcast(&o->cv);
		}
		if (f->wr && n->writers == 0 && n->staged) {
			/* Closed: good after kill -9, after a reboot once
			 * synced. */
			if (n->si.wstate == WS_WRITING)
				n->si.wstate = WS_UNSYNCED;
			n->fsynced = 0;
			if (stage_begin(o->st) == 0)
				stage_end(o->st, put_node(o, n));
		}
		if (n->unlinked && n->opens == 0 && n->staged &&
		    n->si.type == ET_REG && n->si.nlink == 0 &&
		    stage_begin(o->st) == 0) {
			int rc = stage_data_unlink(o->st, n->ino);

			stage_end(o->st, rc ? rc : stage_inode_del(o->st,
								   n->ino));
		}
		if (n->nlookup == 0 && n->opens == 0)
			node_free(o, n);
	}
	ovl_unlock(o);
	if (f->fd >= 0)
		close(f->fd);
	cache_release(o->o.c, f->te);
	fread_destroy(&f->rd);
	free(f);
}

const char *ovl_file_name(const struct ovl_file *f)
{
	return f->label;
}

int ovl_statfs(struct ovl *o, struct statvfs *sv)
{
	uint64_t bsize, blocks, bfree, bavail;
	int rc;

	ovl_lock(o);
	rc = stage_statfs(o->st, &bsize, &blocks, &bfree, &bavail);
	ovl_unlock(o);
	if (rc)
		return rc;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = (unsigned long)bsize;
	sv->f_blocks = blocks;
	sv->f_bfree = bfree;
	sv->f_bavail = bavail;
	sv->f_files = sv->f_ffree = sv->f_favail = 1u << 30;
	sv->f_namemax = 255;
	sv->f_flag = ST_NOSUID | ST_NODEV;
	return 0;
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
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)left;
		ts.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
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

int ovl_sync(struct ovl *o)
{
	uint64_t at;
	int rc = 0;

	ovl_lock(o);
	at = o->changes;
	if (at != o->synced && !o->o.read_only) {
		rc = stage_sync(o->st);
		if (rc == 0)
			o->synced = at;
	}
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

void ovl_unlock(struct ovl *o)
{
	pthread_mutex_unlock(&o->lock);
}

int ovl_open(const struct ovl_opts *op, struct stage *st,
	     const struct ovl_base *b, struct ovl **out)
{
	struct ovl *o = calloc(1, sizeof(*o));
	struct stage_meta m;
	struct onode *r;
	uint64_t maxino;
	int rc;

	*out = NULL;
	if (!o) {
		stage_close(st);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	o->o = *op;
	snprintf(o->label, sizeof(o->label), "%s", op->label);
	o->st = st;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cv, NULL);
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
	/* A reservation lost with a rolled-back transaction must not hand
	 * out a number a row already has. */
	rc = stage_max_ino(st, &maxino);
	if (rc)
		goto fail;
	if (maxino >= o->next_ino)
		o->next_ino = maxino + 1;
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
	for (size_t i = 0; o->nodes.v && i < o->nodes.cap; i++) {
		struct onode *n = itab_at(&o->nodes, i);

		if (n) {
			node_clear(n);
			free(n);
		}
	}
	itab_free(&o->nodes);
	free(o->hls);
	tree_free(&o->gtree);
	manifest_free(&o->m);
	stage_close(o->st);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cv);
	free(o);
}
