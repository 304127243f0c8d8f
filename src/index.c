/* index.c - open-addressing hash of chunk id -> ref; see index.h. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "index.h"
#include "ixobj.h"
#include "manifest.h"
#include "workq.h"

#define EMPTY UINT32_MAX

void index_init(struct index *ix)
{
	memset(ix, 0, sizeof(*ix));
}

void index_free(struct index *ix)
{
	free(ix->slots);
	index_init(ix);
}

static size_t slot_of(const uint8_t *id, size_t cap)
{
	uint64_t h;

	/* Ids are uniformly distributed (SHA-256 / HMAC output). */
	memcpy(&h, id, sizeof(h));
	return h & (cap - 1);
}

int index_get(const struct index *ix, const uint8_t id[ID_LEN],
	      struct ref *r)
{
	if (!ix->cap)
		return 0;
	for (size_t i = slot_of(id, ix->cap);; i = (i + 1) & (ix->cap - 1)) {
		const struct ref *s = &ix->slots[i];

		if (s->raw == EMPTY)
			return 0;
		if (memcmp(s->id, id, ID_LEN) == 0) {
			if (r)
				*r = *s;
			return 1;
		}
	}
}

static void insert(struct ref *slots, size_t cap, const struct ref *r,
		   int *added)
{
	for (size_t i = slot_of(r->id, cap);; i = (i + 1) & (cap - 1)) {
		if (slots[i].raw == EMPTY ||
		    memcmp(slots[i].id, r->id, ID_LEN) == 0) {
			*added = slots[i].raw == EMPTY;
			slots[i] = *r;
			return;
		}
	}
}

int index_put(struct index *ix, const struct ref *r)
{
	int added;

	if ((ix->n + 1) * 10 > ix->cap * 7) {
		size_t cap = ix->cap ? ix->cap * 2 : 1024;
		struct ref *s = malloc(cap * sizeof(*s));

		if (!s)
			return snap_seterr(SNAP_ENOMEM,
					   "out of memory growing chunk index");
		for (size_t i = 0; i < cap; i++)
			s[i].raw = EMPTY;
		for (size_t i = 0; i < ix->cap; i++)
			if (ix->slots[i].raw != EMPTY)
				insert(s, cap, &ix->slots[i], &added);
		free(ix->slots);
		ix->slots = s;
		ix->cap = cap;
	}
	insert(ix->slots, ix->cap, r, &added);
	ix->n += added;
	return 0;
}

struct loadctx {
	struct index *ix;
	struct repo *r;
	pthread_mutex_t lock;
	size_t npacks, bad;
	int err;
	char msg[1024];
};

struct loadjob {
	struct loadctx *lc;
	char key[160];
};

static void load_one(void *arg)
{
	struct loadjob *j = arg;
	struct loadctx *lc = j->lc;
	struct pack_entry *e = NULL;
	size_t n = 0;
	uint64_t size;
	struct ref r;
	int rc;

	rc = pack_read_index(lc->r->st, &lc->r->keys, j->key, &e, &n, &size);
	pthread_mutex_lock(&lc->lock);
	/* A pack a manifest names and that is gone is damage check reports;
	 * the backup stores those chunks again. */
	if (rc == SNAP_ECORRUPT || rc == SNAP_ENOENT) {
		lc->bad++;
	} else if (rc) {
		if (!lc->err) {
			lc->err = rc;
			snprintf(lc->msg, sizeof(lc->msg), "%s", snap_errmsg());
		}
	} else {
		hex_decode(strrchr(j->key, '/') + 1, r.pack, PACK_ID_LEN);
		lc->npacks++;
		for (size_t i = 0; i < n && !lc->err; i++) {
			memcpy(r.id, e[i].id, ID_LEN);
			r.off = e[i].off;
			r.len = e[i].len;
			r.raw = e[i].raw;
			if (index_put(lc->ix, &r)) {
				lc->err = SNAP_ENOMEM;
				snprintf(lc->msg, sizeof(lc->msg), "%s",
					 snap_errmsg());
			}
		}
	}
	pthread_mutex_unlock(&lc->lock);
	free(e);
	free(j);
}

static int cmp_pack(const void *a, const void *b)
{
	return memcmp(a, b, PACK_ID_LEN);
}

/* Loads the trailers of packs[0..n) (sorted in place; repeats once), in
 * parallel, threads at a time. */
static int load_packs(struct index *ix, struct repo *r, const char *series,
		      uint8_t (*packs)[PACK_ID_LEN], size_t n, int threads,
		      size_t *npacks, size_t *bad)
{
	struct loadctx lc = {.ix = ix, .r = r};
	struct workq *q = NULL;
	int rc;

	qsort(packs, n, sizeof(*packs), cmp_pack);
	pthread_mutex_init(&lc.lock, NULL);
	rc = workq_create(&q, threads, 4 * (size_t)threads);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct loadjob *j;

		if (i && !memcmp(packs[i], packs[i - 1], PACK_ID_LEN))
			continue;
		if (!(j = malloc(sizeof(*j)))) {
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
			break;
		}
		j->lc = &lc;
		pack_key(series, packs[i], j->key, sizeof(j->key));
		if ((rc = workq_submit(q, load_one, j)))
			free(j);
	}
	if (q)
		workq_destroy(q);
	pthread_mutex_destroy(&lc.lock);
	if (rc == 0 && lc.err) {
		rc = lc.err;
		snap_errset_msg(lc.msg);
	}
	*npacks = lc.npacks;
	*bad = lc.bad;
	return rc;
}

/* --- from the backups' index objects (ixobj.h) ---------------------------- */

struct bload {
	struct index *ix;
	struct repo *r;
	const char *series;
	const struct manifest *have; /* read already (or NULL) */
	pthread_mutex_t lock;
	uint8_t (*fall)[PACK_ID_LEN]; /* packs of backups without an object */
	size_t nfall, cap, objs;
	int err;
	char msg[1024];
};

struct bjob {
	struct bload *b;
	uint32_t num;
};

static void load_backup(void *arg)
{
	struct bjob *j = arg;
	struct bload *b = j->b;
	struct manifest m;
	const struct manifest *mp = &m;
	int rc = 0;

	memset(&m, 0, sizeof(m));
	if (b->have && b->have->num == j->num)
		mp = b->have;
	else
		rc = repo_load_manifest(b->r, b->series, j->num, &m);
	if (rc == 0 && mp->index_token[0]) {
		rc = ixobj_load(b->r, b->series, j->num, mp->index_token, b->ix,
				&b->lock);
		if (rc == 0) {
			pthread_mutex_lock(&b->lock);
			b->objs++;
			pthread_mutex_unlock(&b->lock);
			goto out;
		}
		/* No object, or not the one named: the trailers then. */
		if (rc == SNAP_ENOENT || rc == SNAP_ECORRUPT)
			rc = 0;
	}
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; rc == 0 && i < mp->npacks; i++) {
		rc = array_grow(&b->fall, &b->cap, b->nfall, sizeof(*b->fall),
				64);
		if (rc == 0)
			memcpy(b->fall[b->nfall++], mp->packs[i], PACK_ID_LEN);
	}
	/* A manifest deleted meanwhile (its series going) adds nothing. */
	if (rc && rc != SNAP_ENOENT && !b->err) {
		b->err = rc;
		snprintf(b->msg, sizeof(b->msg), "%s", snap_errmsg());
	}
	pthread_mutex_unlock(&b->lock);
out:
	manifest_free(&m);
	free(j);
}

int index_load_backups(struct index *ix, struct repo *r, const char *series,
		       const struct manifest *have, int threads,
		       struct index_load *st)
{
	struct bload b = {.ix = ix, .r = r, .series = series, .have = have};
	struct backup_id *v = NULL;
	char prefix[SERIES_MAX + 16];
	struct workq *q = NULL;
	size_t n = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&b.lock, NULL);
	snprintf(prefix, sizeof(prefix), "manifests/%s/", series);
	rc = repo_store_list(r->st, prefix, &v, &n);
	rc = rc ? rc : workq_create(&q, threads, 2 * (size_t)threads);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct bjob *j;

		if (strcmp(v[i].series, series))
			continue;
		if (!(j = malloc(sizeof(*j)))) {
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
			break;
		}
		j->b = &b;
		j->num = v[i].num;
		if ((rc = workq_submit(q, load_backup, j)))
			free(j);
		st->backups++;
	}
	if (q)
		workq_destroy(q);
	if (rc == 0 && b.err) {
		rc = b.err;
		snap_errset_msg(b.msg);
	}
	st->objects = b.objs;
	if (rc == 0 && b.nfall)
		rc = load_packs(ix, r, series, b.fall, b.nfall, threads,
				&st->packs, &st->bad);
	pthread_mutex_destroy(&b.lock);
	free(b.fall);
	free(v);
	return rc;
}
