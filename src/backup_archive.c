/*
 * backup_archive.c - an archive (anything libarchive reads: tar, tar.gz,
 * tar.zst, zip, cpio, ...) backed up as a group, streamed: members are
 * chunked as they are read, nothing is extracted to disk.
 *
 * Members come in any order, so every directory of the group stays open
 * (a struct bdir with its entries in arrival order) until the archive
 * ends; then each is sorted and released, which encodes the directory
 * objects bottom-up as the directory walker's do.  Memory therefore grows
 * with the number of members (their metadata and chunk lists, ~200 bytes
 * each), never with their size.
 *
 * Names are checked before anything is stored under them: an absolute
 * name or a ".." component fails the import (SNAP_EUNSAFE); "." and empty
 * components are dropped.  A member given twice is the later one, as tar
 * extracts it.  A hardlink member shares the chunks of its target.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "backup_int.h"

struct slot {
	struct bdir *d; /* NULL: empty */
	size_t idx;
};

struct hlpair {
	struct bdir *dst, *src;
	size_t di, si;
};

struct imp {
	struct eng *e;
	const char *path;
	struct archive *a;
	struct mgroup *mg;
	struct slot *tab; /* (directory, name) -> entry */
	size_t tabcap, tabn;
	struct bdir **dirs; /* creation order: parents first */
	size_t ndirs, dircap;
	struct hlpair *hl;
	size_t nhl, hlcap;
	struct stat ast; /* the archive: metadata for implied directories */
	/* the data of the current member */
	const uint8_t *blk;
	size_t blen, bpos;
	la_int64_t boff;
	int have_blk, arc_err;
};

static uint64_t key_hash(const struct bdir *d, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ (uintptr_t)d;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211ull;
	return h ^ (h >> 29);
}

static struct slot *tab_slot(struct imp *m, struct bdir *d, const char *name)
{
	size_t i = key_hash(d, name) & (m->tabcap - 1);

	while (m->tab[i].d && (m->tab[i].d != d ||
			       strcmp(d->ents[m->tab[i].idx].name, name)))
		i = (i + 1) & (m->tabcap - 1);
	return &m->tab[i];
}

static long lookup(struct imp *m, struct bdir *d, const char *name)
{
	struct slot *s = m->tabcap ? tab_slot(m, d, name) : NULL;

	return s && s->d ? (long)s->idx : -1;
}

static int tab_put(struct imp *m, struct bdir *d, size_t idx)
{
	struct slot *s;

	if (2 * (m->tabn + 1) > m->tabcap) {
		size_t cap = m->tabcap ? 2 * m->tabcap : 1024;
		struct slot *old = m->tab;
		size_t oldcap = m->tabcap;

		m->tab = calloc(cap, sizeof(*m->tab));
		if (!m->tab) {
			m->tab = old;
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		}
		m->tabcap = cap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].d)
				*tab_slot(m, old[i].d,
					  old[i].d->ents[old[i].idx].name) =
					old[i];
		free(old);
	}
	s = tab_slot(m, d, d->ents[idx].name);
	if (!s->d)
		m->tabn++;
	s->d = d;
	s->idx = idx;
	return 0;
}

/* Appends an entry named name to d (replacing any of that name). */
static int new_entry(struct imp *m, struct bdir *d, const char *name,
		     size_t *out)
{
	struct eng *e = m->e;
	long old = lookup(m, d, name);
	char *copy = strdup(name);
	int rc = 0;

	if (!copy)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	/* Chunk workers index d->ents: grow it under their lock. */
	pthread_mutex_lock(&e->lock);
	rc = bdir_reserve(d, 1);
	if (rc == 0) {
		*out = d->n++;
		d->ents[*out].name = copy;
		if (old >= 0)
			d->ents[old].type = 0; /* the later member wins */
	}
	pthread_mutex_unlock(&e->lock);
	if (rc) {
		free(copy);
		return rc;
	}
	return tab_put(m, d, *out);
}

static void set_meta(struct tent *t, uint32_t mode, uint32_t uid,
		     uint32_t gid, int64_t mtime_ns)
{
	t->mode = mode;
	t->uid = uid;
	t->gid = gid;
	t->mtime_ns = mtime_ns;
}

static int keep_dir(struct imp *m, struct bdir *d)
{
	SNAP_TRY(array_grow(&m->dirs, &m->dircap, m->ndirs, sizeof(*m->dirs),
			    64));
	m->dirs[m->ndirs++] = d;
	return 0;
}

/* The subdirectory name of d, created (with the archive's metadata until
 * its own member says otherwise) when the archive has not named it yet. */
static int get_dir(struct imp *m, struct bdir *d, const char *name,
		   struct bdir **out, size_t *idx)
{
	long i = lookup(m, d, name);
	struct bdir *kid;
	size_t k;

	if (i >= 0 && d->ents[i].type == ET_DIR) {
		*out = d->kids[i];
		*idx = i;
		return 0;
	}
	SNAP_TRY(new_entry(m, d, name, &k));
	set_meta(&d->ents[k], S_IFDIR | 0755, m->ast.st_uid, m->ast.st_gid,
		 ts_ns(&m->ast.st_mtim));
	d->ents[k].type = ET_DIR;
	kid = bdir_new(d, k);
	if (!kid)
		return SNAP_ENOMEM;
	pthread_mutex_lock(&m->e->lock);
	d->pending++;
	pthread_mutex_unlock(&m->e->lock);
	d->kids[k] = kid;
	add_stat(&m->e->res->dirs, 1);
	*out = kid;
	*idx = k;
	return keep_dir(m, kid);
}

/* Splits a member name into its components in place; refuses names that
 * would leave the group. */
static int split_name(struct imp *m, char *name, char **comp, size_t *n,
		      size_t max)
{
	char *save = NULL, *c;

	*n = 0;
	if (name[0] == '/')
		return snap_seterr(SNAP_EUNSAFE,
				   "archive %s: member '%s' has an absolute "
				   "name: refused",
				   m->path, name);
	for (c = strtok_r(name, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, "."))
			continue;
		if (!strcmp(c, ".."))
			return snap_seterr(SNAP_EUNSAFE,
					   "archive %s: a member name contains "
					   "'..': refused",
					   m->path);
		if (*n == max)
			return snap_seterr(SNAP_EINVAL,
					   "archive %s: a member is nested "
					   "too deep",
					   m->path);
		comp[(*n)++] = c;
	}
	return 0;
}

/* The directory holding the member's last component (created as
 * needed) and that component. */
static int member_dir(struct imp *m, struct bdir *root, const char *pathname,
		      char *buf, size_t bufsize, struct bdir **d,
		      const char **last)
{
	char *comp[256];
	size_t n, idx;

	if (strlen(pathname) >= bufsize)
		return snap_seterr(SNAP_EINVAL, "archive %s: member name too "
						"long",
				   m->path);
	strcpy(buf, pathname);
	SNAP_TRY(split_name(m, buf, comp, &n, 256));
	*d = root;
	*last = NULL;
	for (size_t i = 0; i + 1 < n; i++)
		SNAP_TRY(get_dir(m, *d, comp[i], d, &idx));
	if (n) {
		*last = comp[n - 1];
		if (!name_ok(*last, strlen(*last)))
			return snap_seterr(SNAP_EUNSAFE,
					   "archive %s: bad member name '%s'",
					   m->path, pathname);
	}
	return 0;
}

/* An existing entry by member name, without creating anything. */
static int find_member(struct imp *m, struct bdir *root, const char *name,
		       struct bdir **d, long *idx)
{
	char buf[4096], *comp[256];
	size_t n;

	*idx = -1;
	if (strlen(name) >= sizeof(buf))
		return 0;
	strcpy(buf, name);
	SNAP_TRY(split_name(m, buf, comp, &n, 256));
	*d = root;
	for (size_t i = 0; i < n && *d; i++) {
		*idx = lookup(m, *d, comp[i]);
		if (*idx < 0)
			return 0;
		if (i + 1 < n)
			*d = (*d)->ents[*idx].type == ET_DIR
				     ? (*d)->kids[*idx]
				     : NULL;
	}
	if (!*d)
		*idx = -1;
	return 0;
}

/* Metadata of a member stored as type (S_IF*): a hardlink member carries
 * no file type of its own. */
static int read_meta(struct archive_entry *ae, struct tent *t, uint32_t type)
{
	const char *name;
	const void *val;
	size_t len;

	set_meta(t, type | (archive_entry_mode(ae) & 07777),
		 (uint32_t)archive_entry_uid(ae),
		 (uint32_t)archive_entry_gid(ae),
		 (int64_t)archive_entry_mtime(ae) * 1000000000 +
			 archive_entry_mtime_nsec(ae));
	archive_entry_xattr_reset(ae);
	while (archive_entry_xattr_next(ae, &name, &val, &len) == ARCHIVE_OK) {
		struct xattr *x = realloc(t->xattrs,
					  (t->nxattrs + 1) * sizeof(*x));

		if (!x)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		t->xattrs = x;
		x += t->nxattrs;
		x->name = strdup(name);
		x->val = malloc(len ? len : 1);
		if (!x->name || !x->val) {
			free(x->name);
			free(x->val);
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		}
		memcpy(x->val, val, len);
		x->len = len;
		t->nxattrs++;
	}
	return 0;
}

static int next_block(struct imp *m)
{
	for (;;) {
		const void *p;
		int r = archive_read_data_block(m->a, &p, &m->blen, &m->boff);

		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN) {
			m->arc_err = 1;
			return -EIO;
		}
		if (!m->blen)
			continue; /* marks where trailing holes end */
		m->blk = p;
		m->bpos = 0;
		m->have_blk = 1;
		return 1;
	}
}

/* src_read over the member's data blocks: a block that does not start
 * where the last one ended begins after a hole, and ends the range. */
static ssize_t arc_read(void *src, uint8_t *buf, size_t n, uint64_t off)
{
	struct imp *m = src;
	size_t k;

	if (!m->have_blk) {
		int r = next_block(m);

		if (r <= 0)
			return r;
	}
	if ((uint64_t)m->boff + m->bpos != off)
		return 0;
	k = m->blen - m->bpos < n ? m->blen - m->bpos : n;
	memcpy(buf, m->blk + m->bpos, k);
	m->bpos += k;
	if (m->bpos == m->blen)
		m->have_blk = 0;
	return k;
}

static int import_data(struct imp *m, struct bdir *d, size_t idx,
		       const char *name)
{
	uint64_t got;
	int rc, r;

	m->have_blk = 0;
	for (;;) {
		if (!m->have_blk) {
			r = next_block(m);
			if (r == 0)
				return 0;
			if (r < 0)
				break;
		}
		rc = chunk_range(m->e, d, idx, arc_read, m,
				 (uint64_t)m->boff + m->bpos, UINT64_MAX, &got);
		if (rc && !m->arc_err)
			return rc;
		if (rc)
			break;
	}
	return snap_seterr(SNAP_ECORRUPT, "archive %s: member %s: %s", m->path,
			   name, archive_error_string(m->a));
}

static int add_pair(struct imp *m, struct bdir *dst, size_t di,
		    struct bdir *src, size_t si)
{
	SNAP_TRY(array_grow(&m->hl, &m->hlcap, m->nhl, sizeof(*m->hl), 32));
	m->hl[m->nhl++] = (struct hlpair){dst, src, di, si};
	return 0;
}

static int import_member(struct imp *m, struct bdir *root,
			 struct archive_entry *ae)
{
	struct eng *e = m->e;
	const char *pathname = archive_entry_pathname(ae), *last, *target;
	char buf[4096];
	struct bdir *d, *sd;
	size_t idx;
	long si;
	struct tent *t;

	if (!pathname)
		return snap_seterr(SNAP_EINVAL, "archive %s: a member has no "
						"name",
				   m->path);
	SNAP_TRY(member_dir(m, root, pathname, buf, sizeof(buf), &d, &last));
	if (!last) {
		/* "./": the group's own metadata. */
		if (archive_entry_filetype(ae) == AE_IFDIR) {
			m->mg->mode = S_IFDIR | (archive_entry_mode(ae) & 07777);
			m->mg->uid = (uint32_t)archive_entry_uid(ae);
			m->mg->gid = (uint32_t)archive_entry_gid(ae);
			m->mg->mtime_ns = (int64_t)archive_entry_mtime(ae) *
						  1000000000 +
					  archive_entry_mtime_nsec(ae);
		}
		return 0;
	}
	target = archive_entry_hardlink(ae);
	if (target) {
		SNAP_TRY(find_member(m, root, target, &sd, &si));
		if (si >= 0 && sd->ents[si].type >= ET_FIFO) {
			/* Special files have no hardlink ids (snapfs(5)): a
			 * FIFO's or device's other name (bsdtar and cpio
			 * link them) is a node of its own.  Copied first:
			 * new_entry may move sd's entries. */
			struct tent node = sd->ents[si];

			SNAP_TRY(new_entry(m, d, last, &idx));
			t = &d->ents[idx];
			t->type = node.type;
			t->rdev_major = node.rdev_major;
			t->rdev_minor = node.rdev_minor;
			return read_meta(ae, t, ent_ifmt(t->type));
		}
		if (si < 0 || sd->ents[si].type != ET_REG) {
			warn(e, "%s: skipping %s: hardlink to %s, which is not "
				"an earlier file of the archive",
			     m->path, pathname, target);
			return 0;
		}
		SNAP_TRY(new_entry(m, d, last, &idx));
		t = &d->ents[idx];
		t->type = ET_REG;
		SNAP_TRY(read_meta(ae, t, S_IFREG));
		add_stat(&e->res->files, 1);
		return add_pair(m, d, idx, sd, (size_t)si);
	}
	switch (archive_entry_filetype(ae)) {
	case AE_IFDIR:
		SNAP_TRY(get_dir(m, d, last, &sd, &idx));
		return read_meta(ae, &d->ents[idx], S_IFDIR);
	case AE_IFLNK:
		SNAP_TRY(new_entry(m, d, last, &idx));
		t = &d->ents[idx];
		SNAP_TRY(read_meta(ae, t, S_IFLNK));
		t->target = strdup(archive_entry_symlink(ae)
					   ? archive_entry_symlink(ae)
					   : "");
		if (!t->target)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		if (!t->target[0]) {
			warn(e, "%s: skipping %s: empty symlink", m->path,
			     pathname);
			return 0;
		}
		t->size = strlen(t->target);
		t->type = ET_LNK;
		return 0;
	case AE_IFREG:
		SNAP_TRY(new_entry(m, d, last, &idx));
		t = &d->ents[idx];
		SNAP_TRY(read_meta(ae, t, S_IFREG));
		t->size = archive_entry_size(ae) > 0 ? archive_entry_size(ae) : 0;
		t->type = ET_REG;
		add_stat(&e->res->files, 1);
		add_stat(&e->res->files_new, 1);
		add_stat(&e->res->bytes, t->size);
		SNAP_TRY(import_data(m, d, idx, pathname));
		progress_add(e->o->progress, 1, 0);
		return 0;
	case AE_IFIFO:
	case AE_IFCHR:
	case AE_IFBLK: {
		unsigned ft = archive_entry_filetype(ae);
		uint64_t maj = archive_entry_rdevmajor(ae),
			 min = archive_entry_rdevminor(ae);

		if (ft != AE_IFIFO && (maj > UINT32_MAX || min > UINT32_MAX)) {
			warn(e, "%s: skipping %s: device number out of range",
			     m->path, pathname);
			return 0;
		}
		SNAP_TRY(new_entry(m, d, last, &idx));
		t = &d->ents[idx];
		t->type = ft == AE_IFIFO ? ET_FIFO : ft == AE_IFCHR ? ET_CHR
								    : ET_BLK;
		SNAP_TRY(read_meta(ae, t, ent_ifmt(t->type)));
		if (ft != AE_IFIFO) {
			t->rdev_major = maj;
			t->rdev_minor = min;
		}
		return 0;
	}
	case AE_IFSOCK:
		note(e, "%s: skipping %s: sockets are not backed up", m->path,
		     pathname);
		return 0;
	default:
		warn(e, "%s: skipping %s: unknown member type %o", m->path,
		     pathname, archive_entry_filetype(ae));
		return 0;
	}
}

/* Hardlinks share their target's chunks, known now that all are stored. */
static int link_pairs(struct imp *m)
{
	for (size_t i = 0; i < m->nhl; i++) {
		struct tent *src = &m->hl[i].src->ents[m->hl[i].si];
		struct tent *dst = &m->hl[i].dst->ents[m->hl[i].di];

		if (!src->hardlink)
			src->hardlink = ++m->e->nhl;
		dst->hardlink = src->hardlink;
		dst->size = src->size;
		add_stat(&m->e->res->bytes, dst->size);
		dst->chunks = malloc(src->nchunks * sizeof(*dst->chunks) + 1);
		if (!dst->chunks)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		if (src->nchunks)
			memcpy(dst->chunks, src->chunks,
			       src->nchunks * sizeof(*dst->chunks));
		dst->nchunks = m->hl[i].dst->ccap[m->hl[i].di] = src->nchunks;
	}
	return 0;
}

static int cmp_ent(const void *a, const void *b, void *ctx)
{
	const struct bdir *d = ctx;

	return strcmp(d->ents[*(const size_t *)a].name,
		      d->ents[*(const size_t *)b].name);
}

/* Puts a directory's entries in name order, as trees store them. */
static int sort_dir(struct bdir *d)
{
	size_t n = d->n, *perm;
	struct tent *ents;
	size_t *ccap;
	struct bdir **kids;
	int rc = 0;

	/* An empty directory has no arrays at all (NULL to memcpy). */
	if (n < 2)
		return 0;
	perm = malloc(n * sizeof(*perm));
	ents = malloc(n * sizeof(*ents));
	ccap = malloc(n * sizeof(*ccap));
	kids = malloc(n * sizeof(*kids));
	if (!perm || !ents || !ccap || !kids) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	qsort_r(perm, n, sizeof(*perm), cmp_ent, d);
	for (size_t i = 0; i < n; i++) {
		ents[i] = d->ents[perm[i]];
		ccap[i] = d->ccap[perm[i]];
		kids[i] = d->kids[perm[i]];
		if (kids[i])
			kids[i]->pidx = i;
	}
	memcpy(d->ents, ents, n * sizeof(*ents));
	memcpy(d->ccap, ccap, n * sizeof(*ccap));
	memcpy(d->kids, kids, n * sizeof(*kids));
out:
	free(perm);
	free(ents);
	free(ccap);
	free(kids);
	return rc;
}

int backup_archive(struct eng *e, const struct backup_group *g,
		   struct mgroup *mg)
{
	struct imp m = {.e = e, .path = g->path, .mg = mg};
	struct archive_entry *ae;
	struct bdir *root;
	locale_t loc;
	int rc = 0, r;

	if (stat(g->path, &m.ast))
		return snap_syserr(errno, "group %s: %s", g->name, g->path);
	mg->mode = S_IFDIR | 0755;
	mg->uid = m.ast.st_uid;
	mg->gid = m.ast.st_gid;
	mg->mtime_ns = ts_ns(&m.ast.st_mtim);
	root = bdir_new(NULL, 0);
	if (!root)
		return SNAP_ENOMEM;
	root->group = mg;
	pthread_mutex_lock(&e->lock);
	e->roots_pending++;
	pthread_mutex_unlock(&e->lock);
	rc = keep_dir(&m, root);
	loc = utf8_ctype_begin();
	m.a = archive_read_new();
	if (rc == 0 && !m.a)
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	if (rc)
		goto out;
	archive_read_support_filter_all(m.a);
	archive_read_support_format_all(m.a);
	if (archive_read_open_filename(m.a, g->path, 1 << 20) != ARCHIVE_OK) {
		rc = snap_seterr(SNAP_EINVAL, "group %s: %s: %s", g->name,
				 g->path, archive_error_string(m.a));
		goto out;
	}
	while (rc == 0 && !failed(e)) {
		r = archive_read_next_header(m.a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = snap_seterr(SNAP_ECORRUPT, "archive %s: %s",
					 g->path, archive_error_string(m.a));
			break;
		}
		if (r == ARCHIVE_WARN)
			warn(e, "archive %s: %s", g->path,
			     archive_error_string(m.a));
		rc = import_member(&m, root, ae);
	}
	/* Every chunk in place before links copy them and trees are cut. */
	workq_wait(e->cq);
	rc = rc ? rc : link_pairs(&m);
	for (size_t i = 0; i < m.ndirs && rc == 0; i++)
		rc = sort_dir(m.dirs[i]);
out:
	if (rc)
		fail(e, rc);
	/* Parents first: each finishes when its last child does. */
	for (size_t i = 0; i < m.ndirs; i++)
		release(e, m.dirs[i]);
	if (m.a)
		archive_read_free(m.a);
	utf8_ctype_end(loc);
	free(m.tab);
	free(m.dirs);
	free(m.hl);
	return rc;
}
