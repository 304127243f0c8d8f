/* tree.c - directory object codec; see tree.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "tree.h"

static const char tree_magic[4] = {'S', 'N', 'T', 'R'};

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	max_align_t data[];
};

void *tree_alloc(struct tree *t, size_t n)
{
	struct arena_blk *b = t->arena;
	size_t al = (n + 15) & ~(size_t)15;

	if (!b || b->cap - b->used < al) {
		size_t cap = al > 65536 ? al : 65536;

		b = malloc(sizeof(*b) + cap);
		if (!b) {
			snap_seterr(SNAP_ENOMEM, "out of memory");
			return NULL;
		}
		b->used = 0;
		b->cap = cap;
		b->next = t->arena;
		t->arena = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += al;
	return p;
}

char *tree_strdup(struct tree *t, const char *s, size_t n)
{
	char *p = tree_alloc(t, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

void tree_free(struct tree *t)
{
	struct arena_blk *b = t->arena, *next;

	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	t->arena = NULL;
	t->ents = NULL;
	t->n = 0;
}

size_t tent_chunk_at(const struct tent *e, uint64_t off)
{
	size_t lo = 0, hi = e->nchunks;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (e->chunks[mid].off + e->chunks[mid].r.raw <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int xattr_append(struct xattr **v, size_t *n, const char *name,
		 const void *val, size_t len)
{
	struct xattr *p = realloc(*v, (*n + 1) * sizeof(**v));
	char *nm;
	uint8_t *vl;

	if (!p)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	*v = p;
	nm = strdup(name);
	vl = malloc(len ? len : 1);
	if (!nm || !vl) {
		free(nm);
		free(vl);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	memcpy(vl, val, len);
	p[*n] = (struct xattr){nm, vl, len};
	(*n)++;
	return 0;
}

void xattrs_free(struct xattr *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].val);
	}
	free(v);
}

int name_ok(const char *name, size_t len)
{
	if (len == 0 || len > 4096 || memchr(name, '/', len) ||
	    memchr(name, 0, len))
		return 0;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	return 1;
}

static uint64_t zz(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzz(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Pack ids of a tree, in order of first use. */
struct ptab {
	size_t n, cap;
	uint8_t (*own)[PACK_ID_LEN];
};

static int ptab_index(struct ptab *pt, const uint8_t *pack, uint64_t *idx)
{
	/* Scan from the end: consecutive chunks almost always share a pack,
	 * and a tree references few packs. */
	for (size_t i = pt->n; i-- > 0;) {
		if (memcmp(pt->own[i], pack, PACK_ID_LEN) == 0) {
			*idx = i;
			return 0;
		}
	}
	if (pt->n == pt->cap) {
		size_t cap = pt->cap ? pt->cap * 2 : 8;
		void *p = realloc(pt->own, cap * PACK_ID_LEN);

		if (!p)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		pt->own = p;
		pt->cap = cap;
	}
	memcpy(pt->own[pt->n], pack, PACK_ID_LEN);
	*idx = pt->n++;
	return 0;
}

static int put_ref(struct buf *b, struct ptab *pt, const struct ref *r)
{
	uint64_t idx = 0;

	SNAP_TRY(ptab_index(pt, r->pack, &idx));
	SNAP_TRY(buf_add(b, r->id, ID_LEN));
	SNAP_TRY(buf_add_varint(b, idx));
	SNAP_TRY(buf_add_varint(b, r->off));
	SNAP_TRY(buf_add_varint(b, r->len));
	return buf_add_varint(b, r->raw);
}

uint32_t ent_ifmt(uint8_t type)
{
	switch (type) {
	case ET_REG: return S_IFREG;
	case ET_DIR: return S_IFDIR;
	case ET_LNK: return S_IFLNK;
	case ET_FIFO: return S_IFIFO;
	case ET_CHR: return S_IFCHR;
	case ET_BLK: return S_IFBLK;
	}
	return 0;
}

uint8_t ent_type(uint32_t mode)
{
	for (uint8_t t = ET_REG; t <= ET_BLK; t++)
		if (ent_ifmt(t) == (mode & S_IFMT))
			return t;
	return 0;
}

/* The first version that knows an entry type. */
static int type_version(uint8_t type)
{
	return type >= ET_FIFO ? 2 : 1;
}

int tree_version(const struct tent *ents, size_t n)
{
	int v = 1;

	for (size_t i = 0; i < n; i++)
		if (type_version(ents[i].type) > v)
			v = type_version(ents[i].type);
	return v;
}

int tree_encode(const struct tent *ents, size_t n, struct buf *out)
{
	struct ptab pt = {0};
	struct buf body = BUF_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct tent *e = &ents[i];

		/* Readers refuse such an entry: fail where the bug is. */
		if (!ent_ifmt(e->type) ||
		    (e->mode & S_IFMT) != ent_ifmt(e->type)) {
			rc = snap_seterr(SNAP_EINVAL,
					 "%s: entry type %d with mode %o",
					 e->name, e->type, e->mode);
			break;
		}
		rc = buf_add_bytes(&body, e->name, strlen(e->name));
		rc = rc ? rc : buf_addc(&body, e->type);
		rc = rc ? rc : buf_add_varint(&body, e->mode);
		rc = rc ? rc : buf_add_varint(&body, e->uid);
		rc = rc ? rc : buf_add_varint(&body, e->gid);
		rc = rc ? rc : buf_add_varint(&body, zz(e->mtime_ns));
		rc = rc ? rc : buf_add_varint(&body, zz(e->ctime_ns));
		rc = rc ? rc : buf_add_varint(&body, e->ino);
		rc = rc ? rc : buf_add_varint(&body, e->size);
		rc = rc ? rc : buf_add_varint(&body, e->hardlink);
		rc = rc ? rc : buf_add_varint(&body, e->nxattrs);
		for (size_t x = 0; rc == 0 && x < e->nxattrs; x++) {
			rc = buf_add_bytes(&body, e->xattrs[x].name,
					   strlen(e->xattrs[x].name));
			rc = rc ? rc
				: buf_add_bytes(&body, e->xattrs[x].val,
						e->xattrs[x].len);
		}
		if (rc)
			break;
		switch (e->type) {
		case ET_REG: {
			uint64_t end = 0;

			rc = buf_add_varint(&body, e->nchunks);
			for (size_t c = 0; rc == 0 && c < e->nchunks; c++) {
				rc = buf_add_varint(&body,
						    e->chunks[c].off - end);
				rc = rc ? rc
					: put_ref(&body, &pt, &e->chunks[c].r);
				end = e->chunks[c].off + e->chunks[c].r.raw;
			}
			break;
		}
		case ET_DIR:
			rc = put_ref(&body, &pt, &e->sub);
			rc = rc ? rc : buf_add_varint(&body, e->sub_files);
			rc = rc ? rc : buf_add_varint(&body, e->sub_bytes);
			break;
		case ET_LNK:
			rc = buf_add_bytes(&body, e->target, strlen(e->target));
			break;
		case ET_CHR:
		case ET_BLK:
			rc = buf_add_varint(&body, e->rdev_major);
			rc = rc ? rc : buf_add_varint(&body, e->rdev_minor);
			break;
		}
	}
	if (rc == 0)
		rc = buf_add(out, tree_magic, 4);
	rc = rc ? rc : buf_addc(out, (uint8_t)tree_version(ents, n));
	rc = rc ? rc : buf_add_varint(out, pt.n);
	for (size_t i = 0; rc == 0 && i < pt.n; i++)
		rc = buf_add(out, pt.own[i], PACK_ID_LEN);
	rc = rc ? rc : buf_add_varint(out, n);
	rc = rc ? rc : buf_add(out, body.p, body.len);
	free(pt.own);
	buf_free(&body);
	return rc;
}

static void get_ref(struct rd *r, const uint8_t (*packs)[PACK_ID_LEN],
		    uint64_t npacks, struct ref *ref)
{
	const uint8_t *id = rd_take(r, ID_LEN);
	uint64_t idx = rd_varint(r), off = rd_varint(r), len = rd_varint(r),
		 raw = rd_varint(r);

	if (r->err || idx >= npacks || off > UINT32_MAX || len > UINT32_MAX ||
	    raw > UINT32_MAX) {
		r->err = 1;
		return;
	}
	memcpy(ref->id, id, ID_LEN);
	memcpy(ref->pack, packs[idx], PACK_ID_LEN);
	ref->off = off;
	ref->len = len;
	ref->raw = raw;
}

/* Reads one entry of a version-ver object; returns 0 or SNAP_ECORRUPT /
 * SNAP_ENOMEM. */
static int get_entry(struct rd *r, struct tree *t, int ver,
		     const uint8_t (*packs)[PACK_ID_LEN], uint64_t npacks,
		     struct tent *e)
{
	const uint8_t *p;
	size_t len;
	uint64_t nx, v;

	p = rd_bytes(r, &len);
	if (!p || !name_ok((const char *)p, len))
		return SNAP_ECORRUPT;
	e->name = tree_strdup(t, (const char *)p, len);
	if (!e->name)
		return SNAP_ENOMEM;
	e->type = rd_u8(r);
	e->mode = v = rd_varint(r);
	/* The mount shows the mode as it is: its type must be the entry's. */
	if (v > UINT32_MAX || !ent_ifmt(e->type) ||
	    type_version(e->type) > ver || (v & S_IFMT) != ent_ifmt(e->type))
		return SNAP_ECORRUPT;
	e->uid = v = rd_varint(r);
	if (v > UINT32_MAX)
		return SNAP_ECORRUPT;
	e->gid = v = rd_varint(r);
	if (v > UINT32_MAX)
		return SNAP_ECORRUPT;
	e->mtime_ns = unzz(rd_varint(r));
	e->ctime_ns = unzz(rd_varint(r));
	e->ino = rd_varint(r);
	e->size = rd_varint(r);
	e->hardlink = rd_varint(r);
	nx = rd_varint(r);
	/* Every xattr costs at least two bytes of input. */
	if (r->err || nx > (uint64_t)(r->end - r->p) / 2)
		return SNAP_ECORRUPT;
	e->nxattrs = nx;
	if (nx) {
		e->xattrs = tree_alloc(t, nx * sizeof(*e->xattrs));
		if (!e->xattrs)
			return SNAP_ENOMEM;
	}
	for (uint64_t i = 0; i < nx; i++) {
		p = rd_bytes(r, &len);
		if (!p || len == 0 || memchr(p, 0, len))
			return SNAP_ECORRUPT;
		e->xattrs[i].name = tree_strdup(t, (const char *)p, len);
		p = rd_bytes(r, &len);
		if (!p)
			return SNAP_ECORRUPT;
		e->xattrs[i].val = tree_alloc(t, len ? len : 1);
		if (!e->xattrs[i].name || !e->xattrs[i].val)
			return SNAP_ENOMEM;
		memcpy(e->xattrs[i].val, p, len);
		e->xattrs[i].len = len;
	}
	switch (e->type) {
	case ET_REG: {
		uint64_t n = rd_varint(r), end = 0;

		/* A chunk reference is at least 37 bytes. */
		if (r->err || n > (uint64_t)(r->end - r->p) / 37)
			return SNAP_ECORRUPT;
		e->nchunks = n;
		if (n) {
			e->chunks = tree_alloc(t, n * sizeof(*e->chunks));
			if (!e->chunks)
				return SNAP_ENOMEM;
		}
		for (uint64_t c = 0; c < n; c++) {
			uint64_t gap = rd_varint(r);

			get_ref(r, packs, npacks, &e->chunks[c].r);
			if (r->err || gap > e->size - end ||
			    e->chunks[c].r.raw > e->size - end - gap)
				return SNAP_ECORRUPT;
			e->chunks[c].off = end + gap;
			end = e->chunks[c].off + e->chunks[c].r.raw;
		}
		break;
	}
	case ET_DIR:
		get_ref(r, packs, npacks, &e->sub);
		e->sub_files = rd_varint(r);
		e->sub_bytes = rd_varint(r);
		break;
	case ET_LNK:
		p = rd_bytes(r, &len);
		if (!p || len == 0 || memchr(p, 0, len))
			return SNAP_ECORRUPT;
		e->target = tree_strdup(t, (const char *)p, len);
		if (!e->target)
			return SNAP_ENOMEM;
		break;
	case ET_CHR:
	case ET_BLK: {
		uint64_t minor;

		v = rd_varint(r);
		minor = rd_varint(r);
		if (v > UINT32_MAX || minor > UINT32_MAX)
			return SNAP_ECORRUPT;
		e->rdev_major = v;
		e->rdev_minor = minor;
		break;
	}
	}
	return r->err ? SNAP_ECORRUPT : 0;
}

int tree_decode(const uint8_t *p, size_t n, struct tree *t)
{
	const uint8_t(*packs)[PACK_ID_LEN];
	uint64_t npacks, count;
	struct rd r;
	int rc = SNAP_ECORRUPT, ver;

	memset(t, 0, sizeof(*t));
	rd_init(&r, p, n);
	if (n < 5 || memcmp(rd_take(&r, 4), tree_magic, 4))
		return SNAP_ECORRUPT;
	ver = rd_u8(&r);
	if (ver < 1 || ver > TREE_VERSION)
		return SNAP_ECORRUPT;
	npacks = rd_varint(&r);
	if (r.err || npacks > (uint64_t)(r.end - r.p) / PACK_ID_LEN)
		return SNAP_ECORRUPT;
	packs = (const uint8_t(*)[PACK_ID_LEN])rd_take(&r, npacks * PACK_ID_LEN);
	count = rd_varint(&r);
	/* An entry is at least 13 bytes. */
	if (r.err || count > (uint64_t)(r.end - r.p) / 13)
		return SNAP_ECORRUPT;
	if (count) {
		t->ents = tree_alloc(t, count * sizeof(*t->ents));
		if (!t->ents)
			goto fail;
		memset(t->ents, 0, count * sizeof(*t->ents));
	}
	for (uint64_t i = 0; i < count; i++) {
		rc = get_entry(&r, t, ver, packs, npacks, &t->ents[i]);
		if (rc)
			goto fail;
		if (i && strcmp(t->ents[i - 1].name, t->ents[i].name) >= 0) {
			rc = SNAP_ECORRUPT;
			goto fail;
		}
	}
	if (r.p != r.end) {
		rc = SNAP_ECORRUPT;
		goto fail;
	}
	t->n = count;
	return 0;
fail:
	tree_free(t);
	return rc;
}

const struct tent *tree_find(const struct tree *t, const char *name)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, t->ents[mid].name);

		if (c == 0)
			return &t->ents[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static size_t lm_index(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

const char *linkmap_get(const struct linkmap *m, uint64_t id)
{
	if (!m->cap)
		return NULL;
	for (size_t i = lm_index(id, m->cap); m->v[i].id;
	     i = (i + 1) & (m->cap - 1))
		if (m->v[i].id == id)
			return m->v[i].path;
	return NULL;
}

int linkmap_put(struct linkmap *m, uint64_t id, const char *path)
{
	char *copy;
	size_t i;

	if (2 * (m->n + 1) > m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		struct lm_slot *v = calloc(cap, sizeof(*v));

		if (!v)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		for (i = 0; i < m->cap; i++) {
			size_t k;

			if (!m->v[i].id)
				continue;
			for (k = lm_index(m->v[i].id, cap); v[k].id;
			     k = (k + 1) & (cap - 1))
				;
			v[k] = m->v[i];
		}
		free(m->v);
		m->v = v;
		m->cap = cap;
	}
	copy = strdup(path);
	if (!copy)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	for (i = lm_index(id, m->cap); m->v[i].id && m->v[i].id != id;
	     i = (i + 1) & (m->cap - 1))
		;
	if (m->v[i].id)
		free(m->v[i].path);
	else
		m->n++;
	m->v[i].id = id;
	m->v[i].path = copy;
	return 0;
}

void linkmap_reset(struct linkmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->v[i].path);
		m->v[i].path = NULL;
		m->v[i].id = 0;
	}
	m->n = 0;
}

void linkmap_free(struct linkmap *m)
{
	linkmap_reset(m);
	free(m->v);
	memset(m, 0, sizeof(*m));
}
