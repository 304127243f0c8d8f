/* vfs.c - the read-only view of a repository: catalog, inodes, reads. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "control.h"
#include "err.h"
#include "itab.h"
#include "vfs.h"

enum kind {
	K_ROOT = 1,
	K_SERIESDIR,
	K_LABELSDIR,
	K_CONTROL,
	K_SERIES,   /* series/<id> */
	K_BACKUP,   /* series/<id>/<n> */
	K_MANIFEST, /* series/<id>/<n>/manifest.json */
	K_LATEST,   /* series/<id>/latest */
	K_LABEL,    /* labels/<label> */
	K_DIR,      /* a directory inside a backup (a group root too) */
	K_FILE,
	K_LINK,
	K_NODE, /* a FIFO or device: attributes only, never opened here */
};

#define INO_SERIES 2
#define INO_LABELS 3
#define INO_CONTROL 4
#define INO_FIRST_HASHED 16
#define TTL_FOREVER 86400.0 /* what a backup holds never changes */
#define MANIFEST_NAME "manifest.json"

struct cseries {
	char id[SERIES_MAX];
	char label[LABEL_MAX + 1];
	int64_t created; /* of its first backup: orders a label's series */
	uint32_t *nums;  /* into catalog.nums */
	size_t n;
};

/* One listing of the repository; immutable, shared by reference. */
struct catalog {
	int refs;
	uint32_t *nums;
	struct cseries *s; /* sorted by id */
	size_t ns;
	size_t *labels; /* index in s of each label's newest series, by label */
	size_t nl;
	int64_t newest;
};

/* A backup being browsed: its manifest, shared by its nodes and handles. */
struct bk {
	struct bk *next;
	int refs;
	char series[SERIES_MAX];
	uint32_t num;
	struct manifest m;
	struct buf json;
};

struct node {
	uint64_t ino, nlookup;
	uint64_t parent, gino; /* gino: the group root's hash, for hardlinks */
	uint64_t hl;           /* hardlink id within the group, 0 for none */
	char *name;
	uint8_t kind, has_ptree;
	struct bk *bk;
	struct ref tree;  /* K_DIR: its directory object */
	struct ref ptree; /* entries: the directory object naming them */
	struct vfs_attr attr;
	char *target; /* K_LINK */
};

struct vfs {
	struct repo *r;
	struct cache *c;
	struct vfs_opts o;
	uint64_t seed;
	int64_t started;
	pthread_mutex_t lock;
	struct itab nodes;
	struct bk *bks;
	struct catalog *cat;
	double cat_at;
	int refreshing;
	/* Open handles, freed at vfs_close() when the kernel never released
	 * them (an unmount with readers inside). */
	struct vfs_handle *handles;
	struct control *ctl; /* control/ and below */
};

struct vfs_handle {
	struct vfs_handle *prev, *next;
	int is_dir;
};

struct vfs_dir {
	struct vfs_handle h; /* first: a handle is its dir or file */
	struct node self; /* a copy; self.bk holds a reference */
	struct catalog *cat;
	struct centry *te;
	const struct tree *t;
	char **names; /* virtual directories */
	size_t n;
	struct cdir *cd; /* a directory of control/ */
};

struct vfs_file {
	struct vfs_handle h;
	struct cfile *cf; /* a file of control/ */
	struct bk *bk;
	struct centry *te;
	const struct tent *e; /* NULL for manifest.json */
	struct ref ptree;     /* the directory object holding e */
	char label[SERIES_MAX + 300];
	struct fread rd;
};

/* ---- inode numbers ---------------------------------------------------- */

static uint64_t fold(uint64_t h)
{
	/* 62 bits: some tools still treat st_ino as signed, and control/
	 * numbers its entries from 2^62 up (overlay.h). */
	h &= OVL_INO_MIN - 1;
	return h < INO_FIRST_HASHED ? h + INO_FIRST_HASHED : h;
}

static uint64_t ino_name(const struct vfs *v, uint64_t parent,
			 const char *name)
{
	uint64_t h = itab_mix(v->seed ^ parent);

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return fold(itab_mix(h));
}

static uint64_t ino_hardlink(const struct vfs *v, uint64_t gino, uint64_t hl)
{
	return fold(itab_mix(itab_mix(v->seed ^ gino ^ 0x6861726c696e6b00ULL) ^ hl));
}

/* ---- node table (callers hold v->lock) -------------------------------- */

static struct node *node_find(struct vfs *v, uint64_t ino)
{
	return itab_get(&v->nodes, ino);
}

static int same(const struct node *n, const struct node *t)
{
	if (n->hl || t->hl)
		return n->hl == t->hl && n->gino == t->gino;
	return n->parent == t->parent && n->kind == t->kind &&
	       strcmp(n->name, t->name) == 0 &&
	       (!n->target || strcmp(n->target, t->target) == 0);
}

/* The inode of t: its hash, or (after a collision) the next number not
 * taken by somebody else.  *live receives the node already there. */
static uint64_t ino_resolve(struct vfs *v, const struct node *t,
			    uint64_t base, struct node **live)
{
	for (uint64_t ino = base;; ino = fold(ino + 1)) {
		struct node *n = node_find(v, ino);

		if (!n || same(n, t)) {
			*live = n;
			return ino;
		}
	}
}

static void bk_put_locked(struct vfs *v, struct bk *b)
{
	struct bk **pp;

	if (!b || --b->refs > 0)
		return;
	for (pp = &v->bks; *pp && *pp != b; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = b->next;
	manifest_free(&b->m);
	buf_free(&b->json);
	free(b);
}

static void node_free(struct vfs *v, struct node *n)
{
	bk_put_locked(v, n->bk);
	free(n->name);
	free(n->target);
	free(n);
}

/* Adds one lookup reference to t's node, creating it from t. */
static int node_ref(struct vfs *v, const struct node *t, uint64_t base,
		    struct vfs_attr *a)
{
	struct node *n;

	pthread_mutex_lock(&v->lock);
	a->ino = ino_resolve(v, t, base, &n);
	if (n) {
		n->nlookup++;
		pthread_mutex_unlock(&v->lock);
		return 0;
	}
	n = calloc(1, sizeof(*n));
	if (n) {
		*n = *t;
		n->name = strdup(t->name);
		n->target = t->target ? strdup(t->target) : NULL;
	}
	if (!n || !n->name || (t->target && !n->target) ||
	    itab_put(&v->nodes, a->ino, n)) {
		if (n) {
			free(n->name);
			free(n->target);
		}
		free(n);
		pthread_mutex_unlock(&v->lock);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	n->ino = a->ino;
	n->nlookup = 1;
	n->attr = *a;
	if (n->bk)
		n->bk->refs++;
	pthread_mutex_unlock(&v->lock);
	return 0;
}

/* A copy of a live node with a reference on its backup (put it back with
 * node_unpin()), so no lock is held while the store is read. */
static int node_pin(struct vfs *v, uint64_t ino, struct node *out)
{
	struct node *n;

	pthread_mutex_lock(&v->lock);
	n = node_find(v, ino);
	if (n) {
		*out = *n;
		if (n->bk)
			n->bk->refs++;
	}
	pthread_mutex_unlock(&v->lock);
	if (!n)
		return snap_seterr(SNAP_ENOENT, "inode %" PRIu64 " is unknown",
				   ino);
	return 0;
}

static void node_unpin(struct vfs *v, struct node *n)
{
	pthread_mutex_lock(&v->lock);
	bk_put_locked(v, n->bk);
	pthread_mutex_unlock(&v->lock);
	n->bk = NULL;
}

void vfs_forget(struct vfs *v, uint64_t ino, uint64_t nlookup)
{
	struct node *n;

	if (ino < INO_FIRST_HASHED)
		return; /* the fixed directories live as long as the mount */
	if (control_owns(v->ctl, ino)) {
		control_forget(v->ctl, ino, nlookup);
		return;
	}
	pthread_mutex_lock(&v->lock);
	n = node_find(v, ino);
	if (n)
		n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
	if (n && n->nlookup == 0) {
		itab_del(&v->nodes, ino);
		node_free(v, n);
	}
	pthread_mutex_unlock(&v->lock);
}

/* ---- catalog ---------------------------------------------------------- */

static void cat_put(struct vfs *v, struct catalog *c)
{
	int last;

	if (!c)
		return;
	pthread_mutex_lock(&v->lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&v->lock);
	if (!last)
		return;
	free(c->nums);
	free(c->s);
	free(c->labels);
	free(c);
}

static int cmp_series_id(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cseries *)elem)->id);
}

static struct cseries *cat_series(const struct catalog *c, const char *id)
{
	return c ? bsearch(id, c->s, c->ns, sizeof(*c->s), cmp_series_id)
		 : NULL;
}

static int cmp_label_newest(const void *a, const void *b, void *ctx)
{
	const struct catalog *c = ctx;
	const struct cseries *x = &c->s[*(const size_t *)a],
			     *y = &c->s[*(const size_t *)b];
	int d = strcmp(x->label, y->label);

	if (d)
		return d;
	return (x->created < y->created) - (x->created > y->created);
}

/* Label and creation time of a series, from its first manifest. */
static void series_origin(struct vfs *v, struct cseries *s)
{
	struct buf json = BUF_INIT;
	struct manifest m;

	series_label(s->id, s->label);
	s->created = 0;
	if (cache_manifest(v->c, s->id, s->nums[0], &json, &m) == 0) {
		s->created = m.created;
		manifest_free(&m);
	}
	buf_free(&json);
}

static int cat_build(struct vfs *v, const struct catalog *old,
		     struct catalog **out)
{
	struct backup_id *b = NULL;
	struct catalog *c = calloc(1, sizeof(*c));
	size_t n = 0, nl = 0;
	int rc;

	if (!c)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	c->refs = 1;
	rc = repo_list(v->r, &b, &n);
	if (rc)
		goto fail;
	c->nums = malloc((n ? n : 1) * sizeof(*c->nums));
	c->s = calloc(n ? n : 1, sizeof(*c->s));
	c->labels = malloc((n ? n : 1) * sizeof(*c->labels));
	if (!c->nums || !c->s || !c->labels) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		struct cseries *s = c->ns ? &c->s[c->ns - 1] : NULL;

		c->nums[i] = b[i].num;
		if (!s || strcmp(s->id, b[i].series)) {
			s = &c->s[c->ns++];
			memcpy(s->id, b[i].series, SERIES_MAX);
			s->nums = &c->nums[i];
		}
		s->n++;
	}
	for (size_t i = 0; i < c->ns; i++) {
		struct cseries *s = &c->s[i];
		const struct cseries *prev = cat_series(old, s->id);

		/* A series' first backup never changes: reuse what the
		 * last listing learnt of it. */
		if (prev && prev->nums[0] == s->nums[0]) {
			memcpy(s->label, prev->label, sizeof(s->label));
			s->created = prev->created;
		} else {
			series_origin(v, s);
		}
		if (s->created > c->newest)
			c->newest = s->created;
		c->labels[i] = i;
	}
	qsort_r(c->labels, c->ns, sizeof(*c->labels), cmp_label_newest, c);
	for (size_t i = 0; i < c->ns; i++)
		if (i == 0 || strcmp(c->s[c->labels[i]].label,
				     c->s[c->labels[nl - 1]].label))
			c->labels[nl++] = c->labels[i];
	c->nl = nl;
	free(b);
	*out = c;
	return 0;
fail:
	free(b);
	free(c->nums);
	free(c->s);
	free(c->labels);
	free(c);
	return rc;
}

/* The current catalog, listed again first when it is older than the
 * refresh interval and refresh is set.  A failed listing keeps the old
 * one (and is retried after the next interval). */
static struct catalog *cat_get(struct vfs *v, int refresh)
{
	struct catalog *c, *old = NULL;

	pthread_mutex_lock(&v->lock);
	if (refresh && !v->refreshing &&
	    mono_sec() - v->cat_at >= v->o.refresh) {
		v->refreshing = 1;
		c = v->cat;
		c->refs++;
		pthread_mutex_unlock(&v->lock);
		if (cat_build(v, c, &old) != 0)
			old = NULL;
		cat_put(v, c);
		pthread_mutex_lock(&v->lock);
		if (old) {
			c = v->cat;
			v->cat = old;
			old = c;
		}
		v->cat_at = mono_sec();
		v->refreshing = 0;
	}
	c = v->cat;
	c->refs++;
	pthread_mutex_unlock(&v->lock);
	cat_put(v, old);
	return c;
}

static const struct cseries *cat_label(const struct catalog *c,
				       const char *label)
{
	for (size_t lo = 0, hi = c->nl; lo < hi;) {
		size_t mid = (lo + hi) / 2;
		const struct cseries *s = &c->s[c->labels[mid]];
		int d = strcmp(label, s->label);

		if (d == 0)
			return s;
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- backups ---------------------------------------------------------- */

static int bk_get(struct vfs *v, const char *series, uint32_t num,
		  struct bk **out)
{
	struct bk *b, *nb;
	int rc;

	pthread_mutex_lock(&v->lock);
	for (b = v->bks; b; b = b->next)
		if (b->num == num && strcmp(b->series, series) == 0) {
			b->refs++;
			break;
		}
	pthread_mutex_unlock(&v->lock);
	if ((*out = b))
		return 0;

	nb = calloc(1, sizeof(*nb));
	if (!nb)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	snprintf(nb->series, sizeof(nb->series), "%s", series);
	nb->num = num;
	nb->refs = 1;
	rc = cache_manifest(v->c, series, num, &nb->json, &nb->m);
	if (rc) {
		buf_free(&nb->json);
		free(nb);
		return rc;
	}
	pthread_mutex_lock(&v->lock);
	for (b = v->bks; b; b = b->next)
		if (b->num == num && strcmp(b->series, series) == 0)
			break;
	if (b) { /* somebody loaded it meanwhile */
		b->refs++;
		bk_put_locked(v, nb);
	} else {
		nb->next = v->bks;
		v->bks = b = nb;
	}
	pthread_mutex_unlock(&v->lock);
	*out = b;
	return 0;
}

static void bk_put(struct vfs *v, struct bk *b)
{
	pthread_mutex_lock(&v->lock);
	bk_put_locked(v, b);
	pthread_mutex_unlock(&v->lock);
}

static void handle_add(struct vfs *v, struct vfs_handle *h, int is_dir)
{
	h->is_dir = is_dir;
	pthread_mutex_lock(&v->lock);
	h->prev = NULL;
	h->next = v->handles;
	if (v->handles)
		v->handles->prev = h;
	v->handles = h;
	pthread_mutex_unlock(&v->lock);
}

static void handle_del(struct vfs *v, struct vfs_handle *h)
{
	pthread_mutex_lock(&v->lock);
	if (h->prev)
		h->prev->next = h->next;
	else if (v->handles == h)
		v->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	h->prev = h->next = NULL;
	pthread_mutex_unlock(&v->lock);
}

/* ---- attributes ------------------------------------------------------- */

static void virt_attr(const struct vfs *v, uint32_t mode, int64_t mtime,
		      double timeout, struct vfs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->mode = mode;
	a->nlink = 1;
	a->uid = v->o.uid;
	a->gid = v->o.gid;
	a->size = S_ISDIR(mode) ? 4096 : 0;
	a->mtime_ns = a->ctime_ns = mtime;
	a->timeout = timeout;
}

void vfs_tent_attr(const struct tent *e, struct vfs_attr *a)
{
	uint64_t stored = 0;

	memset(a, 0, sizeof(*a));
	a->mode = e->mode;
	/* Directories say 1 ("not counted", as btrfs does): find(1) must not
	 * use the count to skip subdirectories.  The number of names of a
	 * hardlinked file is not recorded; any value > 1 makes cp, rsync
	 * and tar look for its other names. */
	a->nlink = e->hardlink ? 2 : 1;
	a->uid = e->uid;
	a->gid = e->gid;
	a->mtime_ns = e->mtime_ns;
	a->ctime_ns = e->ctime_ns;
	a->timeout = TTL_FOREVER;
	switch (e->type) {
	case ET_REG:
		a->size = e->size;
		for (size_t i = 0; i < e->nchunks; i++)
			stored += e->chunks[i].r.raw;
		a->blocks = (stored + 511) / 512;
		break;
	case ET_LNK:
		a->size = strlen(e->target);
		break;
	case ET_DIR:
		a->size = 4096;
		break;
	case ET_CHR:
	case ET_BLK:
		a->rdev_major = e->rdev_major;
		a->rdev_minor = e->rdev_minor;
		break;
	}
}

/* ---- children --------------------------------------------------------- */

static void entry_child(const struct vfs *v, const struct node *dir,
			const struct tent *e, struct node *t,
			struct vfs_attr *a, uint64_t *base)
{
	memset(t, 0, sizeof(*t));
	t->kind = e->type == ET_DIR   ? K_DIR
		  : e->type == ET_LNK ? K_LINK
		  : e->type == ET_REG ? K_FILE
				      : K_NODE;
	t->parent = dir->ino;
	t->gino = dir->gino;
	t->name = e->name;
	t->bk = dir->bk;
	t->tree = e->sub;
	t->ptree = dir->tree;
	t->has_ptree = 1;
	t->target = e->type == ET_LNK ? e->target : NULL;
	vfs_tent_attr(e, a);
	if (e->type == ET_REG && e->hardlink) {
		t->hl = e->hardlink;
		*base = ino_hardlink(v, dir->gino, e->hardlink);
	} else {
		*base = ino_name(v, dir->ino, e->name);
	}
}

static int parse_num(const char *s, uint32_t *num)
{
	uint64_t n = 0;

	if (!*s || *s == '0' || strlen(s) > 10)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (n > UINT32_MAX)
		return -1;
	*num = (uint32_t)n;
	return 0;
}

static int has_num(const struct cseries *s, uint32_t num)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->nums[i] == num)
			return 1;
	return 0;
}

/* Resolves name in a directory that is not a backup tree.  On success *t
 * is a template whose borrowed pointers (name, target, bk) stay valid
 * while cat, dir and *bk_out are held. */
static int virt_child(struct vfs *v, const struct node *dir,
		      const struct catalog *cat, const char *name,
		      struct node *t, struct vfs_attr *a, uint64_t *base,
		      struct bk **bk_out, char *target, size_t tlen)
{
	const struct cseries *s;
	uint32_t num;
	int rc;

	memset(t, 0, sizeof(*t));
	t->parent = dir->ino;
	t->name = (char *)name;
	*base = ino_name(v, dir->ino, name);
	switch (dir->kind) {
	case K_ROOT:
		if (strcmp(name, "series") == 0)
			*base = INO_SERIES, t->kind = K_SERIESDIR;
		else if (strcmp(name, "labels") == 0)
			*base = INO_LABELS, t->kind = K_LABELSDIR;
		else if (strcmp(name, "control") == 0)
			*base = INO_CONTROL, t->kind = K_CONTROL;
		else
			break;
		virt_attr(v, S_IFDIR | 0555, cat->newest, v->o.refresh, a);
		return 0;
	case K_SERIESDIR:
		if (!(s = cat_series(cat, name)))
			break;
		t->kind = K_SERIES;
		virt_attr(v, S_IFDIR | 0555, s->created, v->o.refresh, a);
		return 0;
	case K_LABELSDIR:
		if (!(s = cat_label(cat, name)))
			break;
		t->kind = K_LABEL;
		snprintf(target, tlen, "../series/%s", s->id);
		t->target = target;
		/* A symlink whose target moves gets a new inode, so the
		 * kernel's cached target is never stale. */
		*base = ino_name(v, dir->ino, target);
		virt_attr(v, S_IFLNK | 0777, s->created, v->o.refresh, a);
		a->size = strlen(target);
		return 0;
	case K_SERIES:
		if (!(s = cat_series(cat, dir->name)))
			break;
		if (strcmp(name, "latest") == 0) {
			t->kind = K_LATEST;
			snprintf(target, tlen, "%u", s->nums[s->n - 1]);
			t->target = target;
			*base = ino_name(v, dir->ino ^ 1, target);
			virt_attr(v, S_IFLNK | 0777, cat->newest,
				  v->o.refresh, a);
			a->size = strlen(target);
			return 0;
		}
		if (parse_num(name, &num) || !has_num(s, num))
			break;
		rc = bk_get(v, s->id, num, bk_out);
		if (rc)
			return rc;
		t->kind = K_BACKUP;
		t->bk = *bk_out;
		virt_attr(v, S_IFDIR | 0555, t->bk->m.created, v->o.refresh,
			  a);
		return 0;
	case K_BACKUP:
		t->bk = dir->bk;
		if (strcmp(name, MANIFEST_NAME) == 0) {
			t->kind = K_MANIFEST;
			virt_attr(v, S_IFREG | 0444, dir->bk->m.created,
				  TTL_FOREVER, a);
			a->size = dir->bk->json.len;
			a->blocks = (a->size + 511) / 512;
			return 0;
		}
		for (size_t i = 0; i < dir->bk->m.ngroups; i++) {
			const struct mgroup *g = &dir->bk->m.groups[i];

			if (strcmp(g->name, name))
				continue;
			t->kind = K_DIR;
			t->tree = g->root;
			t->gino = *base;
			memset(a, 0, sizeof(*a));
			a->mode = S_IFDIR | (g->mode & 07777);
			a->nlink = 1;
			a->uid = g->uid;
			a->gid = g->gid;
			a->size = 4096;
			a->mtime_ns = a->ctime_ns = g->mtime_ns;
			a->timeout = TTL_FOREVER;
			return 0;
		}
		break;
	default:
		break;
	}
	a->timeout = dir->kind == K_BACKUP ? TTL_FOREVER : v->o.refresh;
	return snap_seterr(SNAP_ENOENT, "no such entry: %s", name);
}

static int is_catalog_view(uint8_t kind)
{
	return kind == K_SERIESDIR || kind == K_LABELSDIR || kind == K_SERIES;
}

int vfs_lookup(struct vfs *v, uint64_t parent, const char *name,
	       struct vfs_attr *a)
{
	struct node dir, t;
	struct centry *te = NULL;
	struct bk *b = NULL;
	struct catalog *cat = NULL;
	char target[SERIES_MAX + 16];
	uint64_t base;
	int rc;

	memset(a, 0, sizeof(*a));
	if (control_owns(v->ctl, parent))
		return control_lookup(v->ctl, parent, name, a);
	rc = node_pin(v, parent, &dir);
	if (rc)
		return rc;
	if (dir.kind == K_DIR) {
		const struct tree *tr;
		const struct tent *e;

		a->timeout = TTL_FOREVER;
		rc = cache_tree(v->c, dir.bk->series, &dir.tree, &te, &tr);
		if (rc)
			goto out;
		e = tree_find(tr, name);
		if (!e) {
			rc = snap_seterr(SNAP_ENOENT, "no such entry: %s",
					 name);
			goto out;
		}
		entry_child(v, &dir, e, &t, a, &base);
	} else if (dir.kind == K_FILE || dir.kind == K_LINK ||
		   dir.kind == K_NODE ||
		   dir.kind == K_MANIFEST || dir.kind == K_LATEST ||
		   dir.kind == K_LABEL) {
		rc = snap_seterr(SNAP_EINVAL, "not a directory");
		goto out;
	} else {
		cat = cat_get(v, is_catalog_view(dir.kind));
		rc = virt_child(v, &dir, cat, name, &t, a, &base, &b, target,
				sizeof(target));
		if (rc)
			goto out;
	}
	rc = node_ref(v, &t, base, a);
out:
	cache_release(v->c, te);
	if (b)
		bk_put(v, b);
	cat_put(v, cat);
	node_unpin(v, &dir);
	return rc;
}

/* Attributes that follow the catalog are computed afresh. */
int vfs_getattr(struct vfs *v, uint64_t ino, struct vfs_attr *a)
{
	struct node n;
	struct catalog *cat;
	const struct cseries *s;
	int rc;

	if (control_owns(v->ctl, ino))
		return control_getattr(v->ctl, ino, a);
	rc = node_pin(v, ino, &n);
	if (rc)
		return rc;
	*a = n.attr;
	switch (n.kind) {
	case K_ROOT:
		cat = cat_get(v, 0);
		virt_attr(v, S_IFDIR | 0555, cat->newest, v->o.refresh, a);
		cat_put(v, cat);
		break;
	case K_SERIESDIR:
	case K_LABELSDIR:
	case K_CONTROL:
		cat = cat_get(v, 0);
		a->mtime_ns = a->ctime_ns = cat->newest;
		cat_put(v, cat);
		break;
	case K_SERIES:
		cat = cat_get(v, 0);
		if ((s = cat_series(cat, n.name)))
			a->mtime_ns = a->ctime_ns = s->created;
		cat_put(v, cat);
		break;
	default:
		break;
	}
	a->ino = ino;
	node_unpin(v, &n);
	return 0;
}

int vfs_readlink(struct vfs *v, uint64_t ino, char **target)
{
	struct node n;
	int rc;

	*target = NULL;
	if (control_owns(v->ctl, ino))
		return control_readlink(v->ctl, ino, target);
	rc = node_pin(v, ino, &n);
	if (rc)
		return rc;
	if (n.kind != K_LINK && n.kind != K_LATEST && n.kind != K_LABEL)
		rc = snap_seterr(SNAP_EINVAL, "not a symbolic link");
	else if (!(*target = strdup(n.target)))
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	node_unpin(v, &n);
	return rc;
}

/* ---- directories ------------------------------------------------------ */

static int names_add(struct vfs_dir *d, const char *name)
{
	char **q = realloc(d->names, (d->n + 1) * sizeof(*q));

	if (!q)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	d->names = q;
	if (!(q[d->n] = strdup(name)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	d->n++;
	return 0;
}

static int virt_names(struct vfs_dir *d)
{
	const struct catalog *c = d->cat;
	char num[16];
	int rc = 0;

	switch (d->self.kind) {
	case K_ROOT:
		rc = names_add(d, "series");
		if (rc == 0)
			rc = names_add(d, "labels");
		if (rc == 0)
			rc = names_add(d, "control");
		break;
	case K_SERIESDIR:
		for (size_t i = 0; i < c->ns && rc == 0; i++)
			rc = names_add(d, c->s[i].id);
		break;
	case K_LABELSDIR:
		for (size_t i = 0; i < c->nl && rc == 0; i++)
			rc = names_add(d, c->s[c->labels[i]].label);
		break;
	case K_SERIES: {
		const struct cseries *s = cat_series(c, d->self.name);

		for (size_t i = 0; s && i < s->n && rc == 0; i++) {
			snprintf(num, sizeof(num), "%u", s->nums[i]);
			rc = names_add(d, num);
		}
		if (s && rc == 0)
			rc = names_add(d, "latest");
		break;
	}
	case K_BACKUP:
		rc = names_add(d, MANIFEST_NAME);
		for (size_t i = 0; i < d->self.bk->m.ngroups && rc == 0; i++)
			rc = names_add(d, d->self.bk->m.groups[i].name);
		break;
	default:
		break;
	}
	return rc;
}

/* A listing of control/ or below; control/ itself lists the catalog's
 * labels besides its own. */
static int control_opendir_catalog(struct vfs *v, uint64_t ino,
				   struct vfs_dir *d)
{
	struct catalog *cat = ino == INO_CONTROL ? cat_get(v, 1) : NULL;
	const char **labels = NULL;
	size_t n = 0;
	int rc = 0;

	if (cat) {
		labels = malloc((cat->nl ? cat->nl : 1) * sizeof(*labels));
		if (!labels)
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		for (size_t i = 0; labels && i < cat->nl; i++)
			labels[n++] = cat->s[cat->labels[i]].label;
	}
	rc = rc ? rc : control_opendir(v->ctl, ino, labels, n, &d->cd);
	free(labels);
	cat_put(v, cat);
	return rc;
}

int vfs_opendir(struct vfs *v, uint64_t ino, struct vfs_dir **out)
{
	struct vfs_dir *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	if (control_owns(v->ctl, ino)) {
		rc = control_opendir_catalog(v, ino, d);
		if (rc) {
			free(d);
			return rc;
		}
		handle_add(v, &d->h, 1);
		*out = d;
		return 0;
	}
	rc = node_pin(v, ino, &d->self);
	if (rc) {
		free(d);
		return rc;
	}
	switch (d->self.kind) {
	case K_DIR:
		rc = cache_tree(v->c, d->self.bk->series, &d->self.tree,
				&d->te, &d->t);
		break;
	case K_ROOT:
	case K_SERIESDIR:
	case K_LABELSDIR:
	case K_CONTROL:
	case K_SERIES:
	case K_BACKUP:
		d->cat = cat_get(v, is_catalog_view(d->self.kind));
		rc = virt_names(d);
		break;
	default:
		rc = snap_seterr(SNAP_EINVAL, "not a directory");
	}
	if (rc) {
		vfs_closedir(v, d);
		return rc;
	}
	handle_add(v, &d->h, 1);
	*out = d;
	return 0;
}

int vfs_dirent(struct vfs *v, struct vfs_dir *d, size_t idx, int plus,
	       const char **name, struct vfs_attr *a)
{
	struct node t;
	struct bk *b = NULL;
	char target[SERIES_MAX + 16];
	uint64_t base;
	int rc;

	if (d->cd)
		return control_dirent(v->ctl, d->cd, idx, plus, name, a);
	if (idx < 2) {
		*name = idx ? ".." : ".";
		virt_attr(v, S_IFDIR | 0555, 0, 0, a);
		a->ino = idx ? (d->self.parent ? d->self.parent : VFS_ROOT_INO)
			     : d->self.ino;
		return 0;
	}
	idx -= 2;
	if (d->t) {
		if (idx >= d->t->n)
			return 1;
		entry_child(v, &d->self, &d->t->ents[idx], &t, a, &base);
	} else {
		if (idx >= d->n)
			return 1;
		rc = virt_child(v, &d->self, d->cat, d->names[idx], &t, a,
				&base, &b, target, sizeof(target));
		if (rc)
			return rc;
	}
	*name = t.name;
	if (plus) {
		rc = node_ref(v, &t, base, a);
	} else {
		struct node *live;

		pthread_mutex_lock(&v->lock);
		a->ino = ino_resolve(v, &t, base, &live);
		pthread_mutex_unlock(&v->lock);
		rc = 0;
	}
	if (b)
		bk_put(v, b);
	return rc;
}

void vfs_closedir(struct vfs *v, struct vfs_dir *d)
{
	if (!d)
		return;
	handle_del(v, &d->h);
	control_closedir(v->ctl, d->cd);
	cache_release(v->c, d->te);
	cat_put(v, d->cat);
	for (size_t i = 0; i < d->n; i++)
		free(d->names[i]);
	free(d->names);
	node_unpin(v, &d->self);
	free(d);
}

/* ---- files ------------------------------------------------------------ */

/* The entry a node was found as, from its (pinned) parent tree. */
static int node_entry(struct vfs *v, const struct node *n, struct centry **te,
		      const struct tent **e)
{
	const struct tree *t;
	int rc;

	*te = NULL;
	*e = NULL;
	if (!n->has_ptree)
		return snap_seterr(SNAP_ENOENT, "no attributes stored");
	rc = cache_tree(v->c, n->bk->series, &n->ptree, te, &t);
	if (rc)
		return rc;
	*e = tree_find(t, n->name);
	if (!*e) {
		cache_release(v->c, *te);
		*te = NULL;
		return snap_seterr(SNAP_ECORRUPT, "%s vanished from its "
				   "directory object", n->name);
	}
	return 0;
}

/* A handle around a file of control/. */
static int ctl_handle(struct vfs *v, struct cfile *cf, struct vfs_file **out)
{
	struct vfs_file *f = calloc(1, sizeof(*f));

	if (!f) {
		control_release(v->ctl, cf);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	f->cf = cf;
	handle_add(v, &f->h, 0);
	*out = f;
	return 0;
}

int vfs_open_file(struct vfs *v, uint64_t ino, int flags,
		  struct vfs_file **out, int *direct)
{
	struct vfs_file *f;
	struct node n;
	int rc;

	*out = NULL;
	*direct = 0;
	if (control_owns(v->ctl, ino)) {
		struct cfile *cf;

		rc = control_open_file(v->ctl, ino, flags, &cf, direct);
		return rc ? rc : ctl_handle(v, cf, out);
	}
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC))
		return snap_seterr(SNAP_EROFS, "backups are read-only");
	rc = node_pin(v, ino, &n);
	if (rc)
		return rc;
	if (n.kind != K_FILE && n.kind != K_MANIFEST) {
		node_unpin(v, &n);
		return snap_seterr(SNAP_EINVAL, "not a regular file");
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		node_unpin(v, &n);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	snprintf(f->label, sizeof(f->label), "series/%s/%u: %s",
		 n.bk->series, n.bk->num, n.name);
	if (n.kind == K_FILE) {
		rc = node_entry(v, &n, &f->te, &f->e);
		if (rc) {
			node_unpin(v, &n);
			free(f);
			return rc;
		}
		f->ptree = n.ptree;
	}
	f->bk = n.bk; /* the pin's reference moves to the handle */
	fread_init(&f->rd);
	handle_add(v, &f->h, 0);
	*out = f;
	return 0;
}

const char *vfs_file_name(const struct vfs_file *f)
{
	return f->cf ? control_file_name(f->cf) : f->label;
}

void vfs_close_file(struct vfs *v, struct vfs_file *f)
{
	if (!f)
		return;
	handle_del(v, &f->h);
	if (f->cf) {
		control_release(v->ctl, f->cf);
		free(f);
		return;
	}
	cache_release(v->c, f->te);
	bk_put(v, f->bk);
	fread_destroy(&f->rd);
	free(f);
}

int vfs_read(struct vfs *v, struct vfs_file *f, uint64_t off, size_t size,
	     struct vfs_read *rd)
{
	if (f->cf)
		return control_read(v->ctl, f->cf, off, size, rd);
	if (!f->e)
		return fread_mem(f->bk->json.p, f->bk->json.len, off, size, rd);
	return fread_range(v->c, f->bk->series, f->e, &f->rd, v->o.readahead_max,
			   off, size, rd);
}

void vfs_read_done(struct vfs *v, struct vfs_read *rd)
{
	fread_done(v->c, rd);
}

/* ---- extended attributes ---------------------------------------------- */

#define STATS_XATTR "user.snapfs.stats"

static int stats_text(struct vfs *v, struct buf *out)
{
	struct cache_stats s;
	char text[1024];
	size_t nodes;
	int n;

	cache_get_stats(v->c, &s);
	pthread_mutex_lock(&v->lock);
	nodes = v->nodes.n;
	pthread_mutex_unlock(&v->lock);
	n = snprintf(text, sizeof(text),
		     "fetches %" PRIu64 "\nfetch_bytes %" PRIu64
		     "\nmem_hits %" PRIu64 "\ndisk_hits %" PRIu64
		     "\nprefetches %" PRIu64 "\nmem_used %" PRIu64
		     "\ndisk_used %" PRIu64 "\ndisk_files %" PRIu64
		     "\nnodes %zu\n",
		     s.fetches, s.fetch_bytes, s.mem_hits, s.disk_hits,
		     s.prefetches, s.mem_used, s.disk_used, s.disk_files,
		     nodes);
	out->len = 0;
	return buf_add(out, text, (size_t)n);
}

/* The attributes of a node: its entry's, a group directory's (from the
 * manifest), or none.  *te pins the entry's directory object. */
static int node_xattrs(struct vfs *v, const struct node *n, struct centry **te,
		       const struct xattr **x, size_t *nx)
{
	const struct tent *e;

	*te = NULL;
	*x = NULL;
	*nx = 0;
	if (n->has_ptree) {
		SNAP_TRY(node_entry(v, n, te, &e));
		*x = e->xattrs;
		*nx = e->nxattrs;
		return 0;
	}
	for (size_t i = 0; n->kind == K_DIR && n->bk && i < n->bk->m.ngroups;
	     i++)
		if (strcmp(n->bk->m.groups[i].name, n->name) == 0) {
			*x = n->bk->m.groups[i].xattrs;
			*nx = n->bk->m.groups[i].nxattrs;
		}
	return 0;
}

int vfs_getxattr(struct vfs *v, uint64_t ino, const char *name,
		 struct buf *out)
{
	struct centry *te = NULL;
	const struct xattr *x;
	struct node n;
	size_t nx;
	int rc;

	if (ino == VFS_ROOT_INO && strcmp(name, STATS_XATTR) == 0)
		return stats_text(v, out);
	if (control_owns(v->ctl, ino))
		return control_getxattr(v->ctl, ino, name, out);
	rc = node_pin(v, ino, &n);
	if (rc)
		return rc;
	rc = node_xattrs(v, &n, &te, &x, &nx);
	if (rc)
		goto out;
	rc = snap_seterr(SNAP_ENOENT, "no attribute %s", name);
	for (size_t i = 0; i < nx; i++)
		if (strcmp(x[i].name, name) == 0) {
			out->len = 0;
			rc = buf_add(out, x[i].val, x[i].len);
			break;
		}
	/* ls -l asks every file for security.selinux and its ACL: two round
	 * trips per file, most of the time of ls -lR.  "Not supported" makes
	 * it stop asking (per filesystem), and is true of this backup. */
	if (rc == SNAP_ENOENT && n.bk && n.bk->m.xattr_ns >= 0 &&
	    !(n.bk->m.xattr_ns & xattr_ns_of(name)) &&
	    !(v->o.kernel_acl && strncmp(name, "system.posix_acl_", 17) == 0))
		rc = snap_seterr(SNAP_EUNSUPP, "the backup has no %s attributes",
				 name);
out:
	cache_release(v->c, te);
	node_unpin(v, &n);
	return rc;
}

int vfs_listxattr(struct vfs *v, uint64_t ino, struct buf *out)
{
	struct centry *te = NULL;
	const struct xattr *x;
	struct node n;
	size_t nx;
	int rc;

	out->len = 0;
	if (control_owns(v->ctl, ino))
		return control_listxattr(v->ctl, ino, out);
	rc = node_pin(v, ino, &n);
	if (rc)
		return rc;
	rc = node_xattrs(v, &n, &te, &x, &nx);
	for (size_t i = 0; rc == 0 && i < nx; i++)
		rc = buf_add(out, x[i].name, strlen(x[i].name) + 1);
	cache_release(v->c, te);
	node_unpin(v, &n);
	return rc;
}

/* ---- changes (control/ only) ----------------------------------------- */

static int rofs(void)
{
	return snap_seterr(SNAP_EROFS, "backups are read-only (write into "
			   "control/<label>/)");
}

#define CTL(v, ino) if (!control_owns((v)->ctl, (ino))) return rofs()

int vfs_mknod(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, uint32_t rmajor,
	      uint32_t rminor, struct vfs_attr *a)
{
	CTL(v, parent);
	return control_mknod(v->ctl, c, parent, name, mode, rmajor, rminor, a);
}

int vfs_mkdir(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
	      const char *name, uint32_t mode, struct vfs_attr *a)
{
	CTL(v, parent);
	return control_mkdir(v->ctl, c, parent, name, mode, a);
}

int vfs_symlink(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
		const char *name, const char *target, struct vfs_attr *a)
{
	CTL(v, parent);
	return control_symlink(v->ctl, c, parent, name, target, a);
}

int vfs_link(struct vfs *v, uint64_t ino, uint64_t parent, const char *name,
	     struct vfs_attr *a)
{
	CTL(v, parent);
	if (!control_owns(v->ctl, ino))
		return snap_seterr(SNAP_EXDEV, "links into control/ come from "
				   "inside it");
	return control_link(v->ctl, ino, parent, name, a);
}

int vfs_unlink(struct vfs *v, uint64_t parent, const char *name)
{
	CTL(v, parent);
	return control_unlink(v->ctl, parent, name);
}

int vfs_rmdir(struct vfs *v, uint64_t parent, const char *name)
{
	CTL(v, parent);
	return control_rmdir(v->ctl, parent, name);
}

int vfs_rename(struct vfs *v, uint64_t parent, const char *name,
	       uint64_t nparent, const char *nname, unsigned flags)
{
	CTL(v, parent);
	if (!control_owns(v->ctl, nparent))
		return snap_seterr(SNAP_EXDEV, "renames stay inside control/");
	return control_rename(v->ctl, parent, name, nparent, nname, flags);
}

int vfs_setattr(struct vfs *v, uint64_t ino, const struct vfs_setattr *sa,
		struct vfs_file *f, struct vfs_attr *a)
{
	CTL(v, ino);
	return control_setattr(v->ctl, ino, sa, f ? f->cf : NULL, a);
}

int vfs_setxattr(struct vfs *v, uint64_t ino, const char *name,
		 const void *val, size_t len, int flags)
{
	CTL(v, ino);
	return control_setxattr(v->ctl, ino, name, val, len, flags);
}

int vfs_removexattr(struct vfs *v, uint64_t ino, const char *name)
{
	CTL(v, ino);
	return control_removexattr(v->ctl, ino, name);
}

int vfs_create(struct vfs *v, const struct ovl_ctx *c, uint64_t parent,
	       const char *name, uint32_t mode, int flags, struct vfs_attr *a,
	       struct vfs_file **f, int *direct)
{
	struct cfile *cf;
	int rc;

	*f = NULL;
	CTL(v, parent);
	rc = control_create(v->ctl, c, parent, name, mode, flags, a, &cf,
			    direct);
	return rc ? rc : ctl_handle(v, cf, f);
}

int vfs_write(struct vfs *v, struct vfs_file *f, const void *buf, size_t n,
	      uint64_t off, void *req)
{
	if (!f->cf)
		return rofs();
	return control_write(v->ctl, f->cf, buf, n, off, req);
}

int vfs_flush(struct vfs *v, struct vfs_file *f)
{
	return f->cf ? control_flush(v->ctl, f->cf) : 0;
}

int vfs_flush_slow(struct vfs *v, struct vfs_file *f)
{
	return f->cf ? control_flush_slow(v->ctl, f->cf) : 0;
}

int vfs_fsync(struct vfs *v, struct vfs_file *f, int datasync)
{
	return f->cf ? control_fsync(v->ctl, f->cf, datasync) : 0;
}

int vfs_fallocate(struct vfs *v, struct vfs_file *f, int mode, uint64_t off,
		  uint64_t len)
{
	if (!f->cf)
		return rofs();
	return control_fallocate(v->ctl, f->cf, mode, off, len);
}

int vfs_copy_range(struct vfs *v, struct vfs_file *in, uint64_t off_in,
		   struct vfs_file *out, uint64_t off_out, uint64_t len,
		   uint64_t *copied)
{
	struct ovl_src src;

	*copied = 0;
	if (!out->cf)
		return rofs();
	if (in->cf)
		SNAP_TRY(control_file_src(v->ctl, in->cf, &src));
	else if (!in->e || in->e->type != ET_REG ||
		 strlen(in->e->name) >= sizeof(src.name))
		return snap_seterr(SNAP_EUNSUPP, "%s: not a stored file",
				   in->label);
	else {
		snprintf(src.series, sizeof(src.series), "%s", in->bk->series);
		src.dir = in->ptree;
		snprintf(src.name, sizeof(src.name), "%s", in->e->name);
		src.size = in->e->size;
	}
	return control_copy_ref(v->ctl, out->cf, &src, off_in, off_out, len,
				copied);
}

int vfs_statfs(struct vfs *v, uint64_t ino, struct statvfs *sv)
{
	if (!control_owns(v->ctl, ino))
		return snap_seterr(SNAP_ENOENT, "read-only");
	return control_statfs(v->ctl, ino, sv);
}

/* A commit landed: list the backups again now and make the kernel forget
 * what it cached of series/ and labels/, so the backup is there at once. */
static void committed(void *ctx, const char *label, const char *series,
		      uint32_t num)
{
	struct vfs *v = ctx;
	struct catalog *c = NULL, *old;
	uint64_t sino;
	struct node t, *live;

	(void)num;
	if (cat_build(v, v->cat, &c) == 0) {
		pthread_mutex_lock(&v->lock);
		old = v->cat;
		v->cat = c;
		v->cat_at = mono_sec();
		pthread_mutex_unlock(&v->lock);
		cat_put(v, old);
	}
	if (!v->o.inval_entry)
		return;
	memset(&t, 0, sizeof(t));
	t.kind = K_SERIES;
	t.parent = INO_SERIES;
	t.name = (char *)series;
	pthread_mutex_lock(&v->lock);
	sino = ino_resolve(v, &t, ino_name(v, INO_SERIES, series), &live);
	pthread_mutex_unlock(&v->lock);
	v->o.inval_entry(v->o.ctx, INO_SERIES, series);
	v->o.inval_inode(v->o.ctx, INO_SERIES);
	v->o.inval_entry(v->o.ctx, INO_LABELS, label);
	v->o.inval_inode(v->o.ctx, INO_LABELS);
	if (live) {
		v->o.inval_entry(v->o.ctx, sino, "latest");
		v->o.inval_inode(v->o.ctx, sino);
	}
	v->o.inval_inode(v->o.ctx, VFS_ROOT_INO);
}

/* ---- lifetime --------------------------------------------------------- */

static int fixed_node(struct vfs *v, uint64_t ino, uint8_t kind,
		      const char *name)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n || !(n->name = strdup(name)) || itab_put(&v->nodes, ino, n)) {
		if (n)
			free(n->name);
		free(n);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	n->ino = ino;
	n->kind = kind;
	n->parent = VFS_ROOT_INO;
	n->nlookup = 1;
	virt_attr(v, S_IFDIR | 0555, v->started, v->o.refresh, &n->attr);
	n->attr.ino = ino;
	return 0;
}

int vfs_open(struct repo *r, struct cache *c, const struct vfs_opts *o,
	     struct vfs **out)
{
	struct vfs *v = calloc(1, sizeof(*v));
	int rc;

	*out = NULL;
	if (!v)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	v->r = r;
	v->c = c;
	v->o = *o;
	v->started = now_ns();
	for (const char *p = r->id; *p; p++)
		v->seed = itab_mix(v->seed ^ (unsigned char)*p);
	pthread_mutex_init(&v->lock, NULL);
	rc = itab_init(&v->nodes);
	if (rc)
		goto fail;
	rc = fixed_node(v, VFS_ROOT_INO, K_ROOT, "");
	if (rc == 0)
		rc = fixed_node(v, INO_SERIES, K_SERIESDIR, "series");
	if (rc == 0)
		rc = fixed_node(v, INO_LABELS, K_LABELSDIR, "labels");
	if (rc == 0)
		rc = fixed_node(v, INO_CONTROL, K_CONTROL, "control");
	if (rc == 0)
		rc = cat_build(v, NULL, &v->cat);
	if (rc)
		goto fail;
	v->cat_at = mono_sec();
	{
		struct control_opts co = {
			.r = r, .c = c, .cfg = o->ctl,
			.readahead_max = o->readahead_max,
			.kernel_acl = o->kernel_acl,
			.kernel_times = o->kernel_times, .uid = o->uid, .gid = o->gid,
			.ino = INO_CONTROL, .inval_entry = o->inval_entry,
			.inval_inode = o->inval_inode, .log = o->log,
			.resume_write = o->resume_write,
			.committed = committed, .ctx = v};

		rc = control_open(&co, &v->ctl);
		if (rc)
			goto fail;
	}
	*out = v;
	return 0;
fail:
	vfs_close(v);
	return rc;
}

struct control *vfs_control(struct vfs *v)
{
	return v->ctl;
}

void vfs_drain(struct vfs *v)
{
	control_drain(v->ctl);
}

void vfs_close(struct vfs *v)
{
	if (!v)
		return;
	while (v->handles) {
		struct vfs_handle *h = v->handles;

		if (h->is_dir)
			vfs_closedir(v, (struct vfs_dir *)h);
		else
			vfs_close_file(v, (struct vfs_file *)h);
	}
	control_close(v->ctl);
	for (size_t i = 0; v->nodes.v && i < v->nodes.cap; i++) {
		struct node *n = itab_at(&v->nodes, i);

		if (n)
			node_free(v, n);
	}
	itab_free(&v->nodes);
	if (v->cat)
		cat_put(v, v->cat);
	pthread_mutex_destroy(&v->lock);
	free(v);
}
