/* index.c - open-addressing hash of chunk id -> ref; see index.h. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "index.h"
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
	const char *series;
	const uint8_t (*only)[PACK_ID_LEN];
	size_t nonly;
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
	if (rc == SNAP_ECORRUPT) {
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

struct listjobs {
	struct loadctx *lc;
	struct workq *q;
};

static int cmp_pack(const void *a, const void *b)
{
	return memcmp(a, b, PACK_ID_LEN);
}

static int on_pack(const char *key, uint64_t size, void *ctx)
{
	struct listjobs *lj = ctx;
	const char *slash = strrchr(key, '/');
	struct loadjob *j;
	uint8_t id[PACK_ID_LEN];

	(void)size;
	if (!slash || hex_decode(slash + 1, id, PACK_ID_LEN))
		return 0; /* not a pack name */
	if (lj->lc->only && !bsearch(id, lj->lc->only, lj->lc->nonly,
				     PACK_ID_LEN, cmp_pack))
		return 0;
	j = malloc(sizeof(*j));
	if (!j)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	j->lc = lj->lc;
	snprintf(j->key, sizeof(j->key), "%s", key);
	return workq_submit(lj->q, load_one, j);
}

int index_load_series(struct index *ix, struct repo *r, const char *series,
		      int threads, size_t *npacks, size_t *bad)
{
	return index_load_packs(ix, r, series, NULL, 0, threads, npacks, bad);
}

int index_load_packs(struct index *ix, struct repo *r, const char *series,
		     uint8_t (*only)[PACK_ID_LEN], size_t nonly,
		     int threads, size_t *npacks, size_t *bad)
{
	struct loadctx lc = {.ix = ix, .r = r, .series = series,
			     .only = only, .nonly = nonly};
	struct listjobs lj = {.lc = &lc};
	char prefix[SERIES_MAX + 8];
	int rc;

	if (nonly)
		qsort(only, nonly, sizeof(*only), cmp_pack);
	pthread_mutex_init(&lc.lock, NULL);
	snprintf(prefix, sizeof(prefix), "data/%s/", series);
	rc = workq_create(&lj.q, threads, 4 * threads);
	if (rc == 0) {
		rc = store_list(r->st, prefix, on_pack, &lj);
		workq_destroy(lj.q);
	}
	pthread_mutex_destroy(&lc.lock);
	if (rc == 0 && lc.err) {
		rc = lc.err;
		snap_errset_msg(lc.msg);
	}
	*npacks = lc.npacks;
	*bad = lc.bad;
	return rc;
}
