/* check.c - repository verification; see check.h. */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "index.h"
#include "ixobj.h"
#include "lease.h"
#include "tombstone.h"

struct packinfo {
	uint8_t id[PACK_ID_LEN];
	int state; /* 0 unknown, 1 good, -1 bad / missing */
	int listed; /* named by a manifest */
	int orphan; /* neither listed nor referenced (a repair candidate) */
	struct pack_entry *ents;
	size_t n;
};

struct cctx {
	struct repo *r;
	const struct check_opts *o;
	struct check_result *res;
	const char *series;
	struct packinfo *packs;
	size_t npacks, packcap;
	struct index packix; /* pack id -> position in packs (in ref.off) */
	struct index blobs;  /* blob_key() -> lengths, from loaded trailers */
	struct index seen;   /* directory objects already walked */
	struct errstate es;
};

/* Problems go through the errstate's warning channel: counted, reported
 * one line each, and the walk goes on. */
#define report(c, ...) errstate_warn(&(c)->es, __VA_ARGS__)

/* Hash keys for the lookups, so that checking a series stays linear in
 * its size.  A blob is known by (id, pack, offset, type): a blob stored
 * twice (a backup that could not read a damaged pack stores its chunks
 * again) is checked where each reference points. */
static void pack_hkey(const uint8_t *pack, uint8_t k[ID_LEN])
{
	memset(k, 0, ID_LEN);
	memcpy(k, pack, PACK_ID_LEN);
}

static void blob_hkey(const uint8_t *id, const uint8_t *pack, uint32_t off,
		      uint8_t type, uint8_t k[ID_LEN])
{
	uint8_t in[ID_LEN + PACK_ID_LEN + 5];

	memcpy(in, id, ID_LEN);
	memcpy(in + ID_LEN, pack, PACK_ID_LEN);
	put_u32le(in + ID_LEN + PACK_ID_LEN, off);
	in[sizeof(in) - 1] = type;
	sha256(in, sizeof(in), k);
}

static struct packinfo *pack_get(struct cctx *c, const uint8_t *id, int add)
{
	struct ref r = {0};

	pack_hkey(id, r.id);
	if (index_get(&c->packix, r.id, &r))
		return &c->packs[r.off];
	if (!add)
		return NULL;
	if (array_grow(&c->packs, &c->packcap, c->npacks, sizeof(*c->packs),
		       64))
		return NULL;
	r.off = c->npacks;
	if (index_put(&c->packix, &r))
		return NULL;
	memset(&c->packs[c->npacks], 0, sizeof(*c->packs));
	memcpy(c->packs[c->npacks].id, id, PACK_ID_LEN);
	return &c->packs[c->npacks++];
}

static int on_pack(const char *key, uint64_t size, void *ctx)
{
	struct cctx *c = ctx;
	const char *slash = strrchr(key, '/');
	uint8_t id[PACK_ID_LEN];

	(void)size;
	if (!slash || hex_decode(slash + 1, id, PACK_ID_LEN))
		return 0;
	return pack_get(c, id, 1) ? 0
				  : snap_seterr(SNAP_ENOMEM, "out of memory");
}

/* Loads (once) and returns a pack's trailer, reporting failures once. */
static struct packinfo *pack_load(struct cctx *c, const uint8_t *id)
{
	struct packinfo *p = pack_get(c, id, 1);
	char key[160];
	uint64_t size;

	if (!p)
		return NULL;
	if (p->state == 0) {
		pack_key(c->series, id, key, sizeof(key));
		if (pack_read_index(c->r->st, &c->r->keys, key, &p->ents, &p->n,
				    &size) == 0) {
			p->state = 1;
			c->res->packs++;
			for (size_t i = 0; i < p->n && p->state == 1; i++) {
				struct ref b = {0};

				blob_hkey(p->ents[i].id, id, p->ents[i].off,
					  p->ents[i].type, b.id);
				b.len = p->ents[i].len;
				b.raw = p->ents[i].raw;
				if (index_put(&c->blobs, &b)) {
					p->state = -1;
					report(c, "%s: %s", key, snap_errmsg());
				}
			}
		} else {
			p->state = -1;
			report(c, "%s", snap_errmsg());
		}
	}
	return p->state == 1 ? p : NULL;
}

static void check_ref(struct cctx *c, const struct ref *r, uint8_t type,
		      const char *where)
{
	char key[160], id[2 * ID_LEN + 1];
	struct ref b;

	if (!pack_load(c, r->pack))
		return; /* already reported */
	blob_hkey(r->id, r->pack, r->off, type, b.id);
	if (index_get(&c->blobs, b.id, &b) && b.len == r->len &&
	    b.raw == r->raw)
		return;
	pack_key(c->series, r->pack, key, sizeof(key));
	hex_encode(r->id, ID_LEN, id);
	report(c, "%s: blob %.16s at offset %u (used by %s) is not in the "
		  "pack's index",
	       key, id, r->off, where);
}

static int walk_tree(struct cctx *c, const struct ref *ref, const char *path)
{
	struct tree t;
	char *sub = NULL;
	int rc;

	if (index_get(&c->seen, ref->id, NULL))
		return 0; /* shared with a backup already checked */
	check_ref(c, ref, BT_TREE, path);
	rc = repo_read_tree(c->r, c->series, ref, &t);
	if (rc == SNAP_ENOMEM)
		return rc;
	if (rc) {
		report(c, "%s: %s", path, snap_errmsg());
		return 0;
	}
	SNAP_TRY(index_put(&c->seen, ref));
	c->res->trees++;
	for (size_t i = 0; i < t.n && rc == 0; i++) {
		const struct tent *e = &t.ents[i];

		rc = path_join(&sub, path, e->name);
		if (rc)
			break;
		if (e->type == ET_REG)
			for (size_t k = 0; k < e->nchunks; k++)
				check_ref(c, &e->chunks[k].r, BT_DATA, sub);
		else if (e->type == ET_DIR)
			rc = walk_tree(c, &e->sub, sub);
	}
	free(sub);
	tree_free(&t);
	return rc;
}

/* A backup's index object (ixobj.h): the next backups take its refs as
 * they are, so each must be a blob its pack's trailer lists. */
static int check_ixobj(struct cctx *c, const struct manifest *m)
{
	struct index ix;
	char key[SERIES_MAX + 32];
	size_t bad = 0;
	int rc;

	index_init(&ix);
	ixobj_key(c->series, m->num, key, sizeof(key));
	rc = ixobj_load(c->r, c->series, m->num, m->index_token, &ix, NULL);
	if (rc == SNAP_ENOENT || rc == SNAP_ECORRUPT) {
		/* Readers fall back to the trailers: damage, not a loss. */
		report(c, "%s", snap_errmsg());
		rc = 0;
	}
	for (size_t i = 0; rc == 0 && i < ix.cap; i++) {
		const struct ref *e = &ix.slots[i];
		struct ref b;
		uint8_t k[ID_LEN];
		int found = 0;

		if (e->raw == UINT32_MAX || !pack_load(c, e->pack))
			continue; /* a missing pack is reported already */
		for (uint8_t t = BT_DATA; t <= BT_TREE && !found; t++) {
			blob_hkey(e->id, e->pack, e->off, t, k);
			found = index_get(&c->blobs, k, &b) && b.len == e->len &&
				b.raw == e->raw;
		}
		bad += !found;
	}
	if (bad)
		report(c, "%s: %zu entr%s name no blob of their pack", key, bad,
		       bad == 1 ? "y" : "ies");
	index_free(&ix);
	return rc;
}

/* Is the pack in the subset to read? */
static int in_subset(const struct check_opts *o, const uint8_t *id)
{
	uint32_t h = (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 |
		     (uint32_t)id[2] << 8 | id[3];
	uint8_t r[4];

	if (o->slices)
		return h % o->slices == o->slice - 1;
	if (o->share <= 0 || o->share >= 1)
		return 1;
	if (random_bytes(r, sizeof(r)))
		return 1; /* reading more is never wrong */
	h = (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 |
	    r[3];
	return h < o->share * 4294967296.0;
}

/* Reads a whole pack and authenticates every blob its trailer lists. */
static int read_pack(struct cctx *c, struct packinfo *p)
{
	struct buf data = BUF_INIT, raw = BUF_INIT, scratch = BUF_INIT;
	char key[160];
	int rc = 0;

	pack_key(c->series, p->id, key, sizeof(key));
	if (store_get(c->r->st, key, 0, -1, &data)) {
		report(c, "%s", snap_errmsg());
		goto out;
	}
	c->res->bytes_read += data.len;
	progress_add(c->o->progress, 0, data.len);
	for (size_t i = 0; i < p->n; i++) {
		const struct pack_entry *e = &p->ents[i];
		struct ref r;

		memcpy(r.id, e->id, ID_LEN);
		memcpy(r.pack, p->id, PACK_ID_LEN);
		r.off = e->off;
		r.len = e->len;
		r.raw = e->raw;
		raw.len = 0;
		rc = buf_reserve(&raw, e->raw);
		if (rc)
			break;
		if ((uint64_t)e->off + e->len > data.len)
			report(c, "%s: truncated at blob %zu", key, i);
		else if (repo_decode_blob(c->r, c->series, &r, data.p + e->off,
					  raw.p, &scratch))
			report(c, "%s", snap_errmsg());
		else
			c->res->blobs++;
	}
out:
	buf_free(&data);
	buf_free(&raw);
	buf_free(&scratch);
	return rc;
}

/* --- repair ---------------------------------------------------------- */

static void note(struct cctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct cctx *c, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	if (!c->o->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->o->note(msg, c->o->report_ctx);
}

/* Whether series may lose what nothing references: no live lease, no
 * tombstone (the delete finishes it), and its backups are still the n
 * the check walked (listed after the leases: a writer puts its manifest
 * before it drops its lease, so one of the two is seen). */
static int may_repair(struct cctx *c, const char *series,
		      const struct backup_id *b, size_t n, const char *what)
{
	char who[300], prefix[SERIES_MAX + 16];
	struct backup_id *v;
	uint64_t live;
	size_t nv, k = 0;
	int rc, same;

	SNAP_TRY(lease_scan(c->r->st, series, c->o->grace, who, sizeof(who),
			    &live, &c->res->stale_leases));
	if (live) {
		c->res->leased++;
		note(c, "series %s: %s kept: a writer holds a lease on it "
			"(%s)", series, what, who);
		return 0;
	}
	snprintf(prefix, sizeof(prefix), "manifests/%s/", series);
	SNAP_TRY(repo_store_list(c->r->st, prefix, &v, &nv));
	for (size_t i = 0; i < nv; i++)
		k += !strcmp(v[i].series, series);
	same = k == n;
	for (size_t i = 0, j = 0; same && i < nv; i++)
		if (!strcmp(v[i].series, series))
			same = v[i].num == b[j++].num;
	free(v);
	if (!same) {
		note(c, "series %s: %s kept: a backup landed in it during "
			"the check", series, what);
		return 0;
	}
	rc = tomb_exists(c->r->st, series);
	return rc < 0 ? rc : !rc;
}

/* Whether key names the index object (ixobj.h) of a number b lacks. */
static int stray_index(const char *key, const struct backup_id *b, size_t n)
{
	const char *p = strrchr(key, '/');
	unsigned long num;
	char *end;

	if (!p)
		return 0;
	num = strtoul(p + 1, &end, 10);
	if (*end || !num)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (b[i].num == num)
			return 0;
	return 1;
}

static int repair_series(struct cctx *c, const struct backup_id *b, size_t n,
			 int orphans)
{
	struct keylist k = {0};
	char key[160];
	uint64_t gone = 0;
	size_t strays = 0;
	int rc;

	snprintf(key, sizeof(key), "index/%s/", c->series);
	rc = store_keys(c->r->st, key, &k);
	for (size_t i = 0; i < k.n; i++)
		strays += stray_index(k.keys[i], b, n);
	if (rc == 0 && (orphans || strays))
		rc = may_repair(c, c->series, b, n, "unreferenced packs");
	for (size_t i = 0; rc == 1 && i < k.n; i++)
		if (stray_index(k.keys[i], b, n) &&
		    (rc = store_del(c->r->st, k.keys[i])) == 0) {
			gone++;
			rc = 1;
		}
	keylist_free(&k);
	for (size_t i = 0; rc == 1 && i < c->npacks; i++) {
		if (!c->packs[i].orphan)
			continue;
		pack_key(c->series, c->packs[i].id, key, sizeof(key));
		if ((rc = store_del(c->r->st, key)) == 0) {
			gone++;
			rc = 1;
		}
	}
	c->res->removed_objects += gone;
	if (gone)
		note(c, "series %s: removed %" PRIu64 " object(s) no backup "
			"references (packs, index objects)",
		     c->series, gone);
	return rc < 0 ? rc : 0;
}

/* What no series with backups owns: data of series without one (and of
 * tombstoned ones: their delete is finished), and stale leases. */
static int repair_rest(struct cctx *c, const struct backup_id *b, size_t n)
{
	struct series_set s = {0};
	int rc;

	rc = series_set_list(c->r->st, "data/", &s);
	rc = rc ? rc : series_set_list(c->r->st, "index/", &s);
	rc = rc ? rc : series_set_list(c->r->st, "leases/", &s);
	for (size_t i = 0; rc == 0 && i < s.n; i++) {
		const char *name = s.v[i];
		char prefix[SERIES_MAX + 8];
		int has = 0, ok;
		uint64_t objs = 0, live;
		uint32_t nb;
		char who[8];

		for (size_t j = 0; j < n && !has; j++)
			has = !strcmp(b[j].series, name);
		if (has) { /* only its stale leases */
			rc = lease_scan(c->r->st, name, c->o->grace, who,
					sizeof(who), &live,
					&c->res->stale_leases);
			continue;
		}
		rc = tomb_exists(c->r->st, name);
		if (rc == 1) {
			rc = tomb_delete_series(c->r->st, name, &nb, &objs);
			if (rc == 0 && objs)
				note(c, "series %s: finished its delete (%" PRIu64
					" objects)", name, objs);
			c->res->removed_series += rc == 0 && objs;
			c->res->removed_objects += rc == 0 ? objs : 0;
			continue;
		}
		ok = rc ? rc : may_repair(c, name, NULL, 0, "data without a backup");
		rc = ok < 0 ? ok : 0;
		for (int pk = 0; rc == 0 && ok == 1 && pk < 2; pk++) {
			uint64_t o;

			snprintf(prefix, sizeof(prefix), "%s/%s/",
				 pk ? "index" : "data", name);
			rc = store_delete_prefix(c->r->st, prefix, &o);
			objs += o;
		}
		if (rc == 0 && objs) {
			c->res->removed_series++;
			c->res->removed_objects += objs;
			note(c, "series %s: removed %" PRIu64 " pack(s) of a "
				"backup that never committed", name, objs);
		}
	}
	series_set_free(&s);
	return rc;
}

static int check_series(struct cctx *c, const struct backup_id *b, size_t n)
{
	char prefix[SERIES_MAX + 8];
	uint64_t before = c->res->unreferenced_packs;
	int rc;

	snprintf(prefix, sizeof(prefix), "data/%s/", c->series);
	/* Housekeeping on the way: what killed uploads left there, which no
	 * listing shows.  Best effort: a read-only repository is still
	 * checked. */
	(void)store_sweep(c->r->st, prefix);
	rc = store_list(c->r->st, prefix, on_pack, c);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct manifest m;
		char where[SERIES_MAX + 300];

		if (repo_load_manifest(c->r, b[i].series, b[i].num, &m)) {
			report(c, "%s", snap_errmsg());
			continue;
		}
		c->res->backups++;
		for (size_t k = 0; k < m.npacks; k++) {
			struct packinfo *p = pack_get(c, m.packs[k], 0);
			char key[160];

			if (!p || p->state == -1) {
				pack_key(c->series, m.packs[k], key,
					 sizeof(key));
				if (!p)
					report(c, "%s: missing (listed by "
						  "backup %u)",
					       key, m.num);
				continue;
			}
			p->listed = 1;
		}
		for (size_t g = 0; g < m.ngroups && rc == 0; g++) {
			snprintf(where, sizeof(where), "%s/%u/%s", c->series,
				 m.num, m.groups[g].name);
			rc = walk_tree(c, &m.groups[g].root, where);
		}
		if (rc == 0 && m.index_token[0])
			rc = check_ixobj(c, &m);
		manifest_free(&m);
	}
	for (size_t i = 0; i < c->npacks && rc == 0; i++) {
		struct packinfo *p = &c->packs[i];

		if (!p->listed && p->state == 0) {
			c->res->unreferenced_packs++;
			p->orphan = 1;
		}
		if (c->o->read_data && in_subset(c->o, p->id) &&
		    pack_load(c, p->id))
			rc = read_pack(c, p);
	}
	if (rc == 0 && c->o->repair)
		rc = repair_series(c, b, n,
				   c->res->unreferenced_packs > before);
	return rc;
}

int check_parse_subset(const char *s, struct check_opts *o)
{
	char *end;
	unsigned long n, m;
	double p;

	o->slice = o->slices = 0;
	o->share = 0;
	if (strchr(s, '/')) {
		n = strtoul(s, &end, 10);
		if (end != s && *end == '/') {
			const char *ms = end + 1;

			m = strtoul(ms, &end, 10);
			if (end != ms && !*end && n >= 1 && n <= m &&
			    m <= 1000000) {
				o->slice = (uint32_t)n;
				o->slices = (uint32_t)m;
				return 0;
			}
		}
	} else {
		p = strtod(s, &end);
		if (end != s && !strcmp(end, "%") && p > 0 && p <= 100) {
			o->share = p / 100;
			return 0;
		}
	}
	return snap_seterr(SNAP_EINVAL, "bad subset '%s': N/M (slice N of M, "
			   "e.g. 3/7) or P%% (e.g. 10%%)", s);
}

static void reset_series(struct cctx *c)
{
	for (size_t i = 0; i < c->npacks; i++)
		free(c->packs[i].ents);
	c->npacks = 0;
	index_free(&c->packix);
	index_free(&c->blobs);
	index_free(&c->seen);
}

int check_run(struct repo *r, const struct check_opts *o,
	      struct check_result *res)
{
	struct cctx c = {.r = r, .o = o, .res = res};
	struct backup_id *b = NULL;
	size_t n = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	index_init(&c.packix);
	index_init(&c.blobs);
	index_init(&c.seen);
	errstate_init(&c.es, o->report, o->report_ctx);
	/* Repair deletes on what it read: the store must be one that keeps
	 * writers from overwriting each other (store.h). */
	rc = o->repair ? store_check_create_only(r->st) : 0;
	rc = rc ? rc : repo_list(r, &b, &n);
	for (size_t i = 0; i < n && rc == 0;) {
		size_t j = i;

		while (j < n && !strcmp(b[j].series, b[i].series))
			j++;
		if (!o->series || !strcmp(o->series, b[i].series)) {
			c.series = b[i].series;
			res->series++;
			rc = check_series(&c, b + i, j - i);
			reset_series(&c);
		}
		i = j;
	}
	if (rc == 0 && o->repair && !o->series)
		rc = repair_rest(&c, b, n);
	free(b);
	free(c.packs);
	reset_series(&c);
	res->errors = c.es.warnings;
	errstate_destroy(&c.es);
	if (rc == 0 && res->errors)
		rc = snap_seterr(SNAP_ECORRUPT, "check found %llu problem(s)",
				 (unsigned long long)res->errors);
	return rc;
}
