/* mirror.c - a repository copied to another store; see mirror.h. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "manifest.h"
#include "mirror.h"
#include "pack.h"
#include "repo.h"
#include "tombstone.h"
#include "util.h"
#include "workq.h"

#define KEY_MAX (SERIES_MAX + 160)

/* The objects under a prefix, sorted by key, with their sizes. */
struct objs {
	struct obj {
		char *key;
		uint64_t size;
	} *v;
	size_t n, cap;
};

struct mctx {
	struct store *src, *dst;
	const struct mirror_opts *o;
	struct mirror_result *res;
	struct errstate es;
	struct workq *q;
};

static int on_obj(const char *key, uint64_t size, void *ctx)
{
	struct objs *o = ctx;

	if (array_grow(&o->v, &o->cap, o->n, sizeof(*o->v), 64))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	o->v[o->n].key = strdup(key);
	o->v[o->n].size = size;
	if (!o->v[o->n].key)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	o->n++;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	return strcmp(((const struct obj *)a)->key, ((const struct obj *)b)->key);
}

static void objs_free(struct objs *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->v[i].key);
	free(o->v);
	memset(o, 0, sizeof(*o));
}

static int list_objs(struct store *st, const char *prefix, struct objs *o)
{
	int rc = store_list(st, prefix, on_obj, o);

	if (rc == 0 && o->n)
		qsort(o->v, o->n, sizeof(*o->v), cmp_obj);
	return rc;
}

static const struct obj *find_obj(const struct objs *o, const char *key)
{
	struct obj k = {(char *)key, 0};

	return o->n ? bsearch(&k, o->v, o->n, sizeof(*o->v), cmp_obj) : NULL;
}

static void add_stat(uint64_t *v, uint64_t n)
{
	__atomic_add_fetch(v, n, __ATOMIC_RELAXED);
}

/* One object from SRC into DST, create-only; size is what SRC listed
 * (UINT64_MAX: unknown). */
static int copy_object(struct mctx *m, const char *key, uint64_t size,
		       int is_pack)
{
	struct buf b = BUF_INIT;
	uint64_t got = 0;
	int rc = store_get(m->src, key, 0, -1, &b);

	if (rc == 0 && size != UINT64_MAX && b.len != size)
		rc = snap_seterr(SNAP_ECORRUPT, "%s: %s lists %" PRIu64
				 " bytes, reading it gave %zu", key,
				 m->src->url, size, b.len);
	rc = rc ? rc : store_put(m->dst, key, b.p, b.len, STORE_CREATE_ONLY);
	if (rc == SNAP_EEXIST) {
		/* Copied by an earlier run, or while this one listed. */
		rc = store_head(m->dst, key, &got);
		if (rc == 0 && got != b.len)
			rc = snap_seterr(SNAP_EEXIST, "%s: %s holds %" PRIu64
					 " bytes, %s %zu: not the same object",
					 key, m->dst->url, got, m->src->url,
					 b.len);
		if (rc == 0)
			add_stat(&m->res->present, 1);
	} else if (rc == 0) {
		rc = store_head(m->dst, key, &got);
		if (rc == 0 && got != b.len)
			rc = snap_seterr(SNAP_EIO, "%s: %s holds %" PRIu64
					 " bytes after the copy, not %zu", key,
					 m->dst->url, got, b.len);
		if (rc == 0) {
			add_stat(is_pack ? &m->res->packs : &m->res->manifests, 1);
			add_stat(&m->res->bytes, b.len);
		}
	}
	if (rc == 0)
		progress_add(m->o->progress, 1, b.len);
	buf_free(&b);
	return rc;
}

struct cjob {
	struct mctx *m;
	uint64_t size;
	char key[KEY_MAX];
};

static void copy_job(void *arg)
{
	struct cjob *j = arg;
	int rc;

	if (!errstate_failed(&j->m->es)) {
		rc = copy_object(j->m, j->key, j->size, 1);
		if (rc)
			errstate_fail(&j->m->es, rc);
	}
	free(j);
}

/* Whether a series is among those asked for. */
static int wanted(const struct mirror_opts *o, const char *series)
{
	char label[LABEL_MAX + 1];
	int ok = !o->nseries && !o->nlabels;

	for (size_t i = 0; !ok && i < o->nseries; i++)
		ok = !strcmp(o->series[i], series);
	series_label(series, label);
	for (size_t i = 0; !ok && i < o->nlabels; i++)
		ok = !strcmp(o->labels[i], label);
	return ok;
}

/* The packs a manifest lists, each in DST before the manifest is. */
static int manifest_packs(struct mctx *m, const char *series,
			  const struct buf *text, const struct objs *sp,
			  const struct objs *dp)
{
	json_t *j = json_loadb((const char *)text->p, text->len, 0, NULL), *v;
	size_t i;
	int rc = 0;

	if (!json_is_array(json_object_get(j, "packs"))) {
		json_decref(j);
		return snap_seterr(SNAP_ECORRUPT, "%s: a manifest of %s without "
				   "its packs", m->src->url, series);
	}
	json_array_foreach(json_object_get(j, "packs"), i, v) {
		const char *hex = json_string_value(v);
		uint8_t id[PACK_ID_LEN];
		char key[KEY_MAX];

		if (!hex || hex_decode(hex, id, PACK_ID_LEN)) {
			rc = snap_seterr(SNAP_ECORRUPT, "%s: bad pack id in a "
					 "manifest of %s", m->src->url, series);
			break;
		}
		pack_key(series, id, key, sizeof(key));
		if (find_obj(sp, key) || find_obj(dp, key))
			continue;
		/* Uploaded after the listing, by a backup that has since
		 * committed: copied now, before the manifest that needs it. */
		rc = copy_object(m, key, UINT64_MAX, 1);
		if (rc)
			break;
	}
	json_decref(j);
	return rc;
}

/* Copies, in parallel, the objects of sp (SRC's listing) that dp (DST's)
 * lacks; one DST holds under the same key must have the same size. */
static int copy_missing(struct mctx *m, const struct objs *sp,
			const struct objs *dp)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sp->n && !errstate_failed(&m->es);
	     i++) {
		const struct obj *d = find_obj(dp, sp->v[i].key);
		struct cjob *j;

		if (d && d->size == sp->v[i].size) {
			add_stat(&m->res->present, 1);
			progress_add(m->o->progress, 1, sp->v[i].size);
			continue;
		}
		if (d) {
			rc = snap_seterr(SNAP_EEXIST, "%s: %s holds %" PRIu64
					 " bytes, %s %" PRIu64 ": not the "
					 "same object", sp->v[i].key,
					 m->dst->url, d->size, m->src->url,
					 sp->v[i].size);
			break;
		}
		j = malloc(sizeof(*j));
		if (!j) {
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
			break;
		}
		j->m = m;
		j->size = sp->v[i].size;
		snprintf(j->key, sizeof(j->key), "%s", sp->v[i].key);
		rc = workq_submit(m->q, copy_job, j);
		if (rc)
			free(j);
	}
	workq_wait(m->q);
	if (rc == 0)
		rc = errstate_failed(&m->es) ? errstate_result(&m->es) : 0;
	return rc;
}

static int mirror_series(struct mctx *m, const char *series,
			 const struct backup_id *b, size_t nb,
			 const struct objs *dst_manifests)
{
	struct objs sp = {0}, dp = {0}, si = {0}, di = {0};
	char prefix[KEY_MAX], key[KEY_MAX];
	int rc;

	snprintf(prefix, sizeof(prefix), "data/%s/", series);
	rc = list_objs(m->src, prefix, &sp);
	rc = rc ? rc : list_objs(m->dst, prefix, &dp);
	rc = rc ? rc : copy_missing(m, &sp, &dp);
	/* Index objects before the manifests that name them (ixobj.h). */
	snprintf(prefix, sizeof(prefix), "index/%s/", series);
	rc = rc ? rc : list_objs(m->src, prefix, &si);
	rc = rc ? rc : list_objs(m->dst, prefix, &di);
	rc = rc ? rc : copy_missing(m, &si, &di);
	objs_free(&si);
	objs_free(&di);
	/* Manifests in order, so DST's newest backup is always whole. */
	for (size_t i = 0; rc == 0 && i < nb; i++) {
		struct buf text = BUF_INIT, theirs = BUF_INIT;

		manifest_key(series, b[i].num, key, sizeof(key));
		if (find_obj(dst_manifests, key)) {
			add_stat(&m->res->present, 1);
			continue;
		}
		rc = store_get(m->src, key, 0, -1, &text);
		rc = rc ? rc : manifest_packs(m, series, &text, &sp, &dp);
		rc = rc ? rc : store_put(m->dst, key, text.p, text.len,
					 STORE_CREATE_ONLY);
		if (rc == SNAP_EEXIST) {
			rc = store_get(m->dst, key, 0, -1, &theirs);
			if (rc == 0 && (theirs.len != text.len ||
					memcmp(theirs.p, text.p, text.len)))
				rc = snap_seterr(SNAP_EEXIST, "%s: %s holds "
						 "another backup under that "
						 "number", key, m->dst->url);
			if (rc == 0)
				add_stat(&m->res->present, 1);
		} else if (rc == 0) {
			add_stat(&m->res->manifests, 1);
			add_stat(&m->res->bytes, text.len);
		}
		buf_free(&text);
		buf_free(&theirs);
	}
	objs_free(&sp);
	objs_free(&dp);
	return rc;
}

static int same_field(json_t *a, json_t *b, const char *name)
{
	return json_equal(json_object_get(a, name), json_object_get(b, name));
}

/* Whether DST's config may take SRC's: the same keys and chunking (a
 * repository keeps them for life), and no key slot of DST's own that
 * SRC's would drop (somebody's way in to the mirror). */
static int config_follows(struct mctx *m, json_t *js, json_t *jd)
{
	json_t *es = json_object_get(js, "encryption");
	json_t *ed = json_object_get(jd, "encryption"), *o;
	size_t i;

	if (!same_field(js, jd, "chunker") || json_is_null(es) != json_is_null(ed) ||
	    (json_is_object(es) && (!same_field(es, ed, "key_check") ||
				    !same_field(es, ed, "cipher") ||
				    !same_field(es, ed, "key"))))
		return snap_seterr(SNAP_EINVAL, "%s: %s has the repository's "
				   "id but other keys or chunking: not a "
				   "mirror of it", m->dst->url, CONFIG_KEY);
	json_array_foreach(json_object_get(ed, "slots"), i, o) {
		json_t *so;
		size_t k;
		int found = 0;

		json_array_foreach(json_object_get(es, "slots"), k, so)
			found |= same_field(o, so, "id");
		if (!found)
			return snap_seterr(SNAP_EINVAL, "%s has key slot %s, "
					   "which %s does not: add the secret "
					   "at the source (snapctl key add) or "
					   "remove it at the mirror",
					   m->dst->url,
					   json_string_value(json_object_get(o, "id")),
					   m->src->url);
	}
	return 0;
}

/* DST's snapfs.json: SRC's when DST is empty or holds an older copy of
 * the same repository; another repository is refused. */
static int mirror_config(struct mctx *m)
{
	struct buf s = BUF_INIT, d = BUF_INIT;
	json_t *js = NULL, *jd = NULL;
	const char *ids, *idd;
	int rc = store_get(m->src, CONFIG_KEY, 0, -1, &s);

	if (rc == SNAP_ENOENT)
		rc = snap_seterr(SNAP_ENOTREPO, "%s is not a snapfs repository",
				 m->src->url);
	if (rc)
		goto out;
	js = json_loadb((const char *)s.p, s.len, 0, NULL);
	ids = json_string_value(json_object_get(js, "id"));
	if (!ids) {
		rc = snap_seterr(SNAP_ENOTREPO, "%s: %s is not a snapfs "
				 "repository config", m->src->url, CONFIG_KEY);
		goto out;
	}
	rc = store_get(m->dst, CONFIG_KEY, 0, -1, &d);
	if (rc == SNAP_ENOENT) {
		rc = store_put(m->dst, CONFIG_KEY, s.p, s.len, STORE_CREATE_ONLY);
		m->res->config = rc == 0;
		goto out;
	}
	if (rc)
		goto out;
	jd = json_loadb((const char *)d.p, d.len, 0, NULL);
	idd = json_string_value(json_object_get(jd, "id"));
	if (!idd || strcmp(ids, idd)) {
		rc = snap_seterr(SNAP_EINVAL, "%s holds another repository "
				 "(id %s, not %s): mirror into an empty "
				 "location or the repository's own mirror",
				 m->dst->url, idd ? idd : "unknown", ids);
		goto out;
	}
	if (json_integer_value(json_object_get(jd, "version")) >
	    json_integer_value(json_object_get(js, "version"))) {
		rc = snap_seterr(SNAP_EINVAL, "%s is of a newer format than %s",
				 m->dst->url, m->src->url);
		goto out;
	}
	rc = config_follows(m, js, jd);
	if (rc == 0 && !json_equal(js, jd)) {
		rc = store_put(m->dst, CONFIG_KEY, s.p, s.len, 0);
		m->res->config = rc == 0;
	}
out:
	json_decref(js);
	json_decref(jd);
	buf_free(&s);
	buf_free(&d);
	return rc;
}

/* The series of a sorted backup list: [*i, *j) is one. */
static int next_series(const struct backup_id *v, size_t n, size_t *i,
		       size_t *j)
{
	if (*i >= n)
		return 0;
	for (*j = *i + 1; *j < n && !strcmp(v[*j].series, v[*i].series);)
		(*j)++;
	return 1;
}

static int has_series(const struct backup_id *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].series, s))
			return 1;
	return 0;
}

int mirror_run(struct store *src, struct store *dst,
	       const struct mirror_opts *o, struct mirror_result *res)
{
	struct mctx m = {.src = src, .dst = dst, .o = o, .res = res};
	struct backup_id *sv = NULL, *dv = NULL;
	struct objs dman = {0};
	size_t ns = 0, nd = 0, i, j;
	double t0 = mono_sec();
	int rc;

	memset(res, 0, sizeof(*res));
	errstate_init(&m.es, NULL, NULL);
	/* The listing first: a backup that upgrades SRC's format after it
	 * is not copied, and one before it has its format in the config. */
	rc = repo_store_list(src, "manifests/", &sv, &ns);
	rc = rc ? rc : mirror_config(&m);
	rc = rc ? rc : repo_store_list(dst, "manifests/", &dv, &nd);
	/* A series being deleted is not copied, nor one deleted from DST
	 * (it would not be seen there); tombstone.h. */
	rc = rc ? rc : tomb_filter(src, sv, &ns);
	rc = rc ? rc : tomb_filter(dst, sv, &ns);
	rc = rc ? rc : tomb_filter(dst, dv, &nd);
	rc = rc ? rc : list_objs(dst, "manifests/", &dman);
	rc = rc ? rc
		: workq_create(&m.q, o->parallel > 0 ? o->parallel : 4,
			       (size_t)(o->parallel > 0 ? o->parallel : 4) * 2);
	for (i = 0; rc == 0 && next_series(sv, ns, &i, &j); i = j) {
		if (wanted(o, sv[i].series)) {
			res->series++;
			rc = mirror_series(&m, sv[i].series, sv + i, j - i, &dman);
		}
	}
	/* A source that lists nothing (emptied, or the wrong prefix with the
	 * right config) must not empty its mirror. */
	if (rc == 0 && o->remove && ns == 0 && nd > 0)
		rc = snap_seterr(SNAP_EINVAL, "%s lists no backups: --remove "
				 "would delete every series of %s; delete them "
				 "there with 'snapctl delete' if that is meant",
				 src->url, dst->url);
	/* Only after everything is copied: a failed run removes nothing. */
	for (i = 0; rc == 0 && o->remove && next_series(dv, nd, &i, &j);
	     i = j) {
		uint32_t nb;
		uint64_t np;

		if (!wanted(o, dv[i].series) || has_series(sv, ns, dv[i].series))
			continue;
		rc = tomb_delete_series(dst, dv[i].series, &nb, &np);
		res->removed += rc == 0;
	}
	if (m.q)
		workq_destroy(m.q);
	objs_free(&dman);
	free(sv);
	free(dv);
	errstate_destroy(&m.es);
	res->elapsed = mono_sec() - t0;
	return rc;
}
