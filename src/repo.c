/* repo.c - repository config, keys, listing and reads; see repo.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "blob.h"
#include "err.h"
#include "keyslot.h"
#include "repo.h"
#include "tombstone.h"


static json_t *hexj(const uint8_t *p, size_t n)
{
	char h[2 * 64 + 1];

	hex_encode(p, n, h);
	return json_string(h);
}

static int hexget(json_t *o, const char *name, uint8_t *out, size_t n)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s && strlen(s) == 2 * n && hex_decode(s, out, n) == 0 ? 0 : -1;
}

/* The one encoding of a config: an upgrade changes nothing else, and two
 * writers upgrading at once write the same bytes. */
static char *config_text(const json_t *cfg)
{
	return json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
}

int repo_init(const char *location, const struct open_opts *ko)
{
	struct store *st = NULL;
	json_t *cfg = NULL, *enc = json_null(), *chunker;
	uint8_t seed[32];
	char id[37], *text = NULL;
	uint64_t size;
	int rc;

	rc = store_open(location, &ko->store, &st);
	if (rc)
		goto out;
	if (ko->create_bucket && st->ops->create) {
		rc = st->ops->create(st);
		if (rc)
			goto out;
	}
	rc = store_head(st, CONFIG_KEY, &size);
	if (rc == 0) {
		rc = snap_seterr(SNAP_EEXIST,
				 "%s already holds a snapfs repository",
				 st->url);
		goto out;
	}
	if (rc != SNAP_ENOENT)
		goto out;
	rc = store_check_create_only(st);
	if (rc)
		goto out;
	rc = uuid_v4(id);
	if (rc)
		goto out;
	if (!ko->no_encryption) {
		json_decref(enc);
		enc = NULL;
		rc = keyslot_create(id, ko, &enc);
		if (rc)
			goto out;
	}
	chunker = json_pack("{s:s,s:i,s:i,s:i}", "algorithm", "fastcdc",
			    "min_size", CHUNK_MIN, "avg_size", CHUNK_AVG,
			    "max_size", CHUNK_MAX);
	if (ko->no_encryption) {
		rc = random_bytes(seed, sizeof(seed));
		if (rc)
			goto out;
		json_object_set_new(chunker, "gear_seed", hexj(seed, 32));
	}
	{
		char created[40];

		format_time(now_ns(), created);
		cfg = json_pack("{s:s,s:i,s:s,s:s,s:o,s:i,s:o}", "format",
				"snapfs", "version", FORMAT_INIT, "id", id,
				"created", created, "chunker", chunker,
				"pack_size", PACK_TARGET, "encryption", enc);
	}
	enc = NULL;
	text = cfg ? config_text(cfg) : NULL;
	if (!text) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	rc = store_put(st, CONFIG_KEY, text, strlen(text), STORE_CREATE_ONLY);
	if (rc == SNAP_EEXIST)
		snap_seterr(rc, "%s already holds a snapfs repository",
			    st->url);
out:
	free(text);
	json_decref(cfg);
	json_decref(enc);
	store_close(st);
	return rc;
}

static int unlock(struct repo *r, json_t *enc, const struct open_opts *ko)
{
	SNAP_TRY(keyslot_unlock(r->id, r->st->url, enc, ko, r->master,
				&r->master_len, r->slot, &r->opened_by_pass));
	return keys_derive(&r->keys, r->master, r->master_len, r->id);
}

int repo_open(const char *location, const struct open_opts *ko,
	      struct repo **out)
{
	struct repo *r;
	struct buf text = BUF_INIT;
	json_t *cfg = NULL, *ch, *enc, *v;
	json_error_t jerr;
	uint8_t seed[32];
	const char *s;
	int rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	pthread_mutex_init(&r->lock, NULL);
	rc = store_open(location, &ko->store, &r->st);
	if (rc)
		goto out;
	rc = store_get(r->st, CONFIG_KEY, 0, -1, &text);
	if (rc == SNAP_ENOENT) {
		rc = snap_seterr(SNAP_ENOTREPO,
				 "%s is not a snapfs repository (no %s; create "
				 "one with 'snapctl init')",
				 r->st->url, CONFIG_KEY);
		goto out;
	}
	if (rc)
		goto out;
	cfg = json_loadb((char *)text.p, text.len, 0, &jerr);
	if (!cfg || !json_is_object(cfg) ||
	    !json_is_string(json_object_get(cfg, "format")) ||
	    strcmp(json_string_value(json_object_get(cfg, "format")),
		   "snapfs")) {
		rc = snap_seterr(SNAP_ENOTREPO,
				 "%s: %s is not a snapfs repository config",
				 r->st->url, CONFIG_KEY);
		goto out;
	}
	v = json_object_get(cfg, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > FORMAT_VERSION) {
		rc = snap_seterr(SNAP_EUNSUPP,
				 "%s: repository format version %lld is not "
				 "supported (this snapfs reads 1 to %d)",
				 r->st->url,
				 (long long)json_integer_value(v),
				 FORMAT_VERSION);
		goto out;
	}
	r->format = (int)json_integer_value(v);
	s = json_string_value(json_object_get(cfg, "id"));
	if (!s || strlen(s) != 36) {
		rc = snap_seterr(SNAP_ECORRUPT, "%s: bad repository id",
				 CONFIG_KEY);
		goto out;
	}
	memcpy(r->id, s, 37);
	v = json_object_get(cfg, "pack_size");
	r->pack_size = json_is_integer(v) ? json_integer_value(v) : PACK_TARGET;
	if (r->pack_size < (64u << 10) || r->pack_size > (256u << 20))
		r->pack_size = PACK_TARGET;
	enc = json_object_get(cfg, "encryption");
	if (json_is_object(enc)) {
		rc = unlock(r, enc, ko);
		if (rc)
			goto out;
		memcpy(seed, r->keys.gear, 32);
	} else {
		keys_plain(&r->keys);
	}
	ch = json_object_get(cfg, "chunker");
	if (!json_is_object(ch) ||
	    (!r->keys.encrypted && hexget(ch, "gear_seed", seed, 32))) {
		rc = snap_seterr(SNAP_ECORRUPT, "%s: bad chunker section",
				 CONFIG_KEY);
		goto out;
	}
	rc = chunker_init(
		&r->chunker, seed,
		json_integer_value(json_object_get(ch, "min_size")),
		json_integer_value(json_object_get(ch, "avg_size")),
		json_integer_value(json_object_get(ch, "max_size")));
	if (rc == 0 && r->chunker.max > (16u << 20))
		rc = snap_seterr(SNAP_EUNSUPP, "chunk size limit too large");
	if (rc)
		snap_preerr(rc, "%s", CONFIG_KEY);
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	json_decref(cfg);
	buf_free(&text);
	if (rc)
		repo_close(r);
	else
		*out = r;
	return rc;
}

void repo_close(struct repo *r)
{
	if (!r)
		return;
	keys_wipe(&r->keys);
	OPENSSL_cleanse(r->master, sizeof(r->master));
	store_close(r->st);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int repo_update_config(struct repo *r, int (*fn)(json_t *cfg, void *ctx),
		       void *ctx)
{
	struct buf text = BUF_INIT;
	json_t *cfg = NULL;
	json_error_t jerr;
	const char *id;
	char *out = NULL;
	int rc;

	pthread_mutex_lock(&r->lock);
	/* Read afresh: another writer may have changed it meanwhile. */
	rc = store_get(r->st, CONFIG_KEY, 0, -1, &text);
	if (rc)
		goto out;
	cfg = json_loadb((char *)text.p, text.len, 0, &jerr);
	id = cfg ? json_string_value(json_object_get(cfg, "id")) : NULL;
	if (!json_is_integer(json_object_get(cfg, "version")) || !id ||
	    strcmp(id, r->id)) {
		rc = snap_seterr(SNAP_ECORRUPT,
				 "%s: %s changed since the repository was "
				 "opened",
				 r->st->url, CONFIG_KEY);
		goto out;
	}
	rc = fn(cfg, ctx);
	if (rc) {
		rc = rc == 1 ? 0 : rc;
		goto out;
	}
	if (!(out = config_text(cfg))) {
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		goto out;
	}
	rc = store_put(r->st, CONFIG_KEY, out, strlen(out), 0);
	if (rc)
		snap_preerr(rc, "writing %s", CONFIG_KEY);
	else
		__atomic_store_n(&r->format,
				 (int)json_integer_value(
					 json_object_get(cfg, "version")),
				 __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&r->lock);
	if (out)
		OPENSSL_cleanse(out, strlen(out));
	free(out);
	json_decref(cfg);
	buf_free(&text);
	return rc;
}

struct upgrade {
	int version, upgraded;
};

static int do_upgrade(json_t *cfg, void *ctx)
{
	struct upgrade *u = ctx;

	if (json_integer_value(json_object_get(cfg, "version")) >= u->version)
		return 1; /* another writer did it */
	if (json_object_set_new(cfg, "version", json_integer(u->version)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	u->upgraded = 1;
	return 0;
}

int repo_require_format(struct repo *r, int version, int *upgraded)
{
	struct upgrade u = {version, 0};
	int rc;

	*upgraded = 0;
	if (__atomic_load_n(&r->format, __ATOMIC_ACQUIRE) >= version)
		return 0;
	if (version > FORMAT_VERSION)
		return snap_seterr(SNAP_EUNSUPP,
				   "format version %d is not supported "
				   "(this snapfs writes 1 to %d)",
				   version, FORMAT_VERSION);
	rc = repo_update_config(r, do_upgrade, &u);
	if (rc) {
		snap_preerr(rc, "upgrading %s to format %d", CONFIG_KEY,
			    version);
		return rc;
	}
	/* Whoever wrote it, the repository is at version now. */
	pthread_mutex_lock(&r->lock);
	if (r->format < version)
		__atomic_store_n(&r->format, version, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&r->lock);
	*upgraded = u.upgraded;
	return 0;
}

struct listctx {
	struct backup_id *v;
	size_t n, cap;
};

static int list_cb(const char *key, uint64_t size, void *ctx)
{
	struct listctx *lc = ctx;
	const char *p = key + strlen("manifests/"), *slash = strchr(p, '/');
	char *end;
	unsigned long num;

	(void)size;
	if (!slash || (size_t)(slash - p) >= SERIES_MAX)
		return 0;
	errno = 0;
	num = strtoul(slash + 1, &end, 10);
	if (errno || num == 0 || num > UINT32_MAX || strcmp(end, ".json"))
		return 0;
	SNAP_TRY(array_grow(&lc->v, &lc->cap, lc->n, sizeof(*lc->v), 32));
	snprintf(lc->v[lc->n].series, SERIES_MAX, "%.*s", (int)(slash - p), p);
	if (series_check(lc->v[lc->n].series))
		return 0; /* not ours; ignore */
	lc->v[lc->n].num = num;
	lc->n++;
	return 0;
}

static int cmp_bid(const void *a, const void *b)
{
	const struct backup_id *x = a, *y = b;
	int c = strcmp(x->series, y->series);

	if (c)
		return c;
	return x->num < y->num ? -1 : x->num > y->num;
}

int repo_store_list(struct store *st, const char *prefix,
		    struct backup_id **out, size_t *n)
{
	struct listctx lc = {0};
	int rc = store_list(st, prefix, list_cb, &lc);

	if (rc) {
		free(lc.v);
		return rc;
	}
	if (lc.n)
		qsort(lc.v, lc.n, sizeof(*lc.v), cmp_bid);
	*out = lc.v;
	*n = lc.n;
	return 0;
}

struct setctx {
	struct series_set *s;
	size_t skip; /* the prefix */
};

static int set_cb(const char *key, uint64_t size, void *ctx)
{
	struct setctx *sc = ctx;
	struct series_set *s = sc->s;
	const char *p = key + sc->skip, *e = strchr(p, '/');
	size_t len = e ? (size_t)(e - p) : strlen(p);

	(void)size;
	if (len >= SERIES_MAX)
		return 0;
	/* Listings come mostly sorted: skip the run of one series. */
	if (s->n && !strncmp(s->v[s->n - 1], p, len) && !s->v[s->n - 1][len])
		return 0;
	SNAP_TRY(array_grow(&s->v, &s->cap, s->n, sizeof(*s->v), 64));
	memcpy(s->v[s->n], p, len);
	s->v[s->n][len] = 0;
	if (series_check(s->v[s->n]) == 0)
		s->n++; /* else not ours */
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int series_set_list(struct store *st, const char *prefix,
		    struct series_set *s)
{
	struct setctx sc = {s, strlen(prefix)};
	size_t k = 0;
	int rc = store_list(st, prefix, set_cb, &sc);

	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_name);
	for (size_t i = 0; i < s->n; i++)
		if (!k || strcmp(s->v[k - 1], s->v[i]))
			memmove(s->v[k++], s->v[i], SERIES_MAX);
	s->n = k;
	return rc;
}

int series_set_has(const struct series_set *s, const char *series)
{
	return s->n &&
	       bsearch(series, s->v, s->n, sizeof(*s->v), cmp_name) != NULL;
}

void series_set_free(struct series_set *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* What readers see: series being deleted or deleted are not there. */
static int list_prefix(struct repo *r, const char *prefix,
		       struct backup_id **out, size_t *n)
{
	int rc;

	SNAP_TRY(repo_store_list(r->st, prefix, out, n));
	rc = *n ? tomb_filter(r->st, *out, n) : 0;
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int repo_list(struct repo *r, struct backup_id **out, size_t *n)
{
	return list_prefix(r, "manifests/", out, n);
}

int repo_latest_num(struct repo *r, const char *series, uint32_t *num)
{
	char prefix[SERIES_MAX + 16];
	struct backup_id *v;
	size_t n;

	*num = 0;
	snprintf(prefix, sizeof(prefix), "manifests/%s/", series);
	SNAP_TRY(list_prefix(r, prefix, &v, &n));
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].series, series) == 0 && v[i].num > *num)
			*num = v[i].num;
	free(v);
	if (*num == 0)
		return snap_seterr(SNAP_ENOENT, "series %s has no backups",
				   series);
	return 0;
}

int repo_newest_series(struct repo *r, const char *label,
		       char series[SERIES_MAX])
{
	char prefix[LABEL_MAX + 16], lbl[LABEL_MAX + 1];
	struct backup_id *v;
	size_t n;
	int64_t best = INT64_MIN;
	int rc = 0;

	series[0] = 0;
	snprintf(prefix, sizeof(prefix), "manifests/%s-", label);
	SNAP_TRY(list_prefix(r, prefix, &v, &n));
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct manifest m;
		int64_t t, ms;

		/* The first listed number of each series is its oldest. */
		if (i && strcmp(v[i].series, v[i - 1].series) == 0)
			continue;
		series_label(v[i].series, lbl);
		if (strcmp(lbl, label) != 0)
			continue;
		/* A version-7 id carries the series' start: no read. */
		ms = uuid_v7_ms(v[i].series + strlen(v[i].series) - 36);
		if (ms >= 0) {
			t = ms * 1000000;
		} else {
			rc = repo_load_manifest(r, v[i].series, v[i].num, &m);
			if (rc)
				break;
			t = m.created;
			manifest_free(&m);
		}
		if (t > best) {
			best = t;
			memcpy(series, v[i].series, SERIES_MAX);
		}
	}
	free(v);
	if (rc == 0 && !series[0])
		rc = snap_seterr(SNAP_ENOENT, "no backups with label '%s'",
				 label);
	return rc;
}

/* A series-id prefix must reach this far into the uuid: labels may hold
 * '-', so "zk1-a" could be label "zk1-a" as well as the start of
 * "zk1-a3f...", and a shorter prefix is too easily another label's id. */
#define PREFIX_UUID_DIGITS 8
#define CANDIDATES_SHOWN 5

/* Appends ", id" (or ": id" first) to a candidate list, up to
 * CANDIDATES_SHOWN ids. */
static void add_candidate(char *list, size_t cap, size_t i, const char *id)
{
	size_t len = strlen(list);

	if (i < CANDIDATES_SHOWN)
		snprintf(list + len, cap - len, "%s%s", i ? ", " : ": ", id);
	else if (i == CANDIDATES_SHOWN)
		snprintf(list + len, cap - len, ", ...");
}

/* The series whose id starts with name, when it is the only one and name
 * reaches PREFIX_UUID_DIGITS into its uuid.  is_label says whether name
 * could be a label, which words the message: the caller has found no
 * series with that label. */
static int resolve_prefix(struct repo *r, const char *name, int is_label,
			  char series[SERIES_MAX])
{
	char list[CANDIDATES_SHOWN * (SERIES_MAX + 2) + 8] = "";
	const char *what = is_label ? "no series with label" : "no series";
	char lbl[LABEL_MAX + 1];
	struct backup_id *v = NULL;
	size_t n, len = strlen(name), matches = 0, long_enough = 0;
	int rc;

	rc = repo_list(r, &v, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(v[i].series, v[i - 1].series) == 0)
			continue;
		if (strncmp(v[i].series, name, len) != 0)
			continue;
		add_candidate(list, sizeof(list), matches++, v[i].series);
		series_label(v[i].series, lbl);
		if (len >= strlen(lbl) + 1 + PREFIX_UUID_DIGITS) {
			long_enough++;
			memcpy(series, v[i].series, SERIES_MAX);
		}
	}
	free(v);
	if (matches == 1 && long_enough == 1)
		return 0;
	series[0] = 0;
	if (matches == 0)
		return snap_seterr(SNAP_ENOENT, "%s %s", what, name);
	if (long_enough == 0)
		return snap_seterr(SNAP_ENOENT,
				   "%s %s (series ids starting with it%s; a "
				   "prefix must include %d hex digits of the "
				   "uuid)",
				   what, name, list, PREFIX_UUID_DIGITS);
	return snap_seterr(SNAP_EINVAL,
			   "%s %s, and it is the start of %zu series ids%s: "
			   "give more of the id",
			   what, name, matches, list);
}

int repo_resolve(struct repo *r, const char *spec, char series[SERIES_MAX],
		 uint32_t *num)
{
	char name[256], *slash, *end;
	int rc;

	*num = 0;
	series[0] = 0;
	if (strlen(spec) >= sizeof(name) || !*spec)
		return snap_seterr(SNAP_EINVAL, "bad backup '%s'", spec);
	strcpy(name, spec);
	slash = strchr(name, '/');
	if (slash) {
		unsigned long x;

		*slash = 0;
		errno = 0;
		x = strtoul(slash + 1, &end, 10);
		if (errno || *end || x == 0 || x > UINT32_MAX ||
		    slash[1] == '-' || slash[1] == '+')
			return snap_seterr(SNAP_EINVAL,
					   "bad backup number in '%s': "
					   "expected SERIES/N with N >= 1",
					   spec);
		*num = x;
	}
	if (!*name)
		return snap_seterr(SNAP_EINVAL, "bad backup '%s'", spec);
	if (series_check(name) == 0) {
		memcpy(series, name, strlen(name) + 1);
		return 0;
	}
	if (label_check(name) == 0) {
		rc = repo_newest_series(r, name, series);
		if (rc != SNAP_ENOENT)
			return rc;
		return resolve_prefix(r, name, 1, series);
	}
	return resolve_prefix(r, name, 0, series);
}

int repo_resolve_backup(struct repo *r, const char *spec,
			char series[SERIES_MAX], uint32_t *num)
{
	char key[160];
	uint64_t size;
	int rc;

	SNAP_TRY(repo_resolve(r, spec, series, num));
	if (*num == 0)
		return repo_latest_num(r, series, num);
	manifest_key(series, *num, key, sizeof(key));
	rc = store_head(r->st, key, &size);
	if (rc == SNAP_ENOENT)
		return snap_seterr(rc, "backup %s/%u does not exist", series,
				   *num);
	return rc;
}

int repo_manifest_text(struct repo *r, const char *series, uint32_t num,
		       struct buf *text)
{
	char key[160];
	int rc;

	manifest_key(series, num, key, sizeof(key));
	text->len = 0;
	rc = store_get(r->st, key, 0, -1, text);
	if (rc == SNAP_ENOENT)
		rc = snap_seterr(rc, "backup %s/%u: manifest %s is missing",
				 series, num, key);
	if (rc == 0 && text->len > MANIFEST_MAX)
		rc = snap_seterr(SNAP_ECORRUPT, "%s: implausibly large", key);
	return rc;
}

int repo_load_manifest(struct repo *r, const char *series, uint32_t num,
		       struct manifest *m)
{
	struct buf text = BUF_INIT;
	int rc = repo_manifest_text(r, series, num, &text);

	if (rc == 0)
		rc = manifest_parse((char *)text.p, text.len, &r->keys, series,
				    num, m);
	buf_free(&text);
	return rc;
}

#define MAX_READ (16u << 20)
#define READ_GAP (1u << 20)

void blob_bufs_free(struct blob_bufs *b)
{
	buf_free(&b->enc);
	buf_free(&b->raw);
	buf_free(&b->scratch);
}

static int cmp_ref(const void *a, const void *b, void *ctx)
{
	const struct ref *const *refs = ctx;
	const struct ref *x = refs[*(const size_t *)a];
	const struct ref *y = refs[*(const size_t *)b];
	int c = memcmp(x->pack, y->pack, PACK_ID_LEN);

	return c ? c : (x->off > y->off) - (x->off < y->off);
}

int repo_read_blobs(struct repo *r, const char *series,
		    const struct ref *const *refs, size_t n, blob_fn fn,
		    void *ctx, struct blob_bufs *b)
{
	size_t *order = malloc((n ? n : 1) * sizeof(*order)), i = 0;
	int rc = 0;

	if (!order)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	for (size_t k = 0; k < n; k++)
		order[k] = k;
	qsort_r(order, n, sizeof(*order), cmp_ref, (void *)refs);
	while (i < n && rc == 0) {
		const struct ref *first = refs[order[i]];
		uint64_t start = first->off, end = start + first->len;
		size_t k = i + 1;

		for (; k < n; k++) {
			const struct ref *x = refs[order[k]];
			uint64_t xend = (uint64_t)x->off + x->len;

			if (memcmp(x->pack, first->pack, PACK_ID_LEN) ||
			    x->off > end + READ_GAP ||
			    (xend > end ? xend : end) - start > MAX_READ)
				break;
			if (xend > end)
				end = xend;
		}
		rc = repo_read_pack(r, series, first->pack, start, end - start,
				    &b->enc);
		for (; rc == 0 && i < k; i++) {
			const struct ref *x = refs[order[i]];

			b->raw.len = 0;
			rc = buf_reserve(&b->raw, x->raw);
			rc = rc ? rc
				: repo_decode_blob(r, series, x,
						   b->enc.p + (x->off - start),
						   b->raw.p, &b->scratch);
			rc = rc ? rc : fn(ctx, order[i], b->raw.p, x->raw);
		}
	}
	free(order);
	return rc;
}

int repo_decode_blob(struct repo *r, const char *series,
		     const struct ref *ref, const uint8_t *enc, uint8_t *out,
		     struct buf *scratch)
{
	char key[160], id[2 * ID_LEN + 1];
	int rc = blob_decode(&r->keys, ref->id, enc, ref->len, out, ref->raw,
			     scratch);

	if (rc == SNAP_ECORRUPT) {
		pack_key(series, ref->pack, key, sizeof(key));
		hex_encode(ref->id, ID_LEN, id);
		snap_seterr(rc,
			    "%s at offset %u: blob %.16s fails authentication "
			    "(corrupt or tampered object)",
			    key, ref->off, id);
	}
	return rc;
}

int repo_read_pack(struct repo *r, const char *series,
		   const uint8_t pack[PACK_ID_LEN], uint64_t off, size_t len,
		   struct buf *out)
{
	char key[160];
	int rc;

	pack_key(series, pack, key, sizeof(key));
	rc = store_read_exact(r->st, key, off, len, out);
	/* A backup that names a pack that is gone is damaged, not absent. */
	if (rc == SNAP_ENOENT)
		rc = snap_seterr(SNAP_ECORRUPT, "%s: pack is missing", key);
	return rc;
}

int repo_read_blob(struct repo *r, const char *series, const struct ref *ref,
		   struct buf *out, struct buf *scratch)
{
	struct buf enc = BUF_INIT;
	int rc;

	rc = repo_read_pack(r, series, ref->pack, ref->off, ref->len, &enc);
	if (rc)
		goto out;
	out->len = 0;
	rc = buf_reserve(out, ref->raw);
	if (rc)
		goto out;
	rc = repo_decode_blob(r, series, ref, enc.p, out->p, scratch);
	if (rc == 0)
		out->len = ref->raw;
out:
	buf_free(&enc);
	return rc;
}

int repo_decode_tree(struct repo *r, const char *series,
		     const struct ref *ref, const uint8_t *enc, struct tree *t)
{
	struct buf raw = BUF_INIT, scratch = BUF_INIT;
	char key[160], id[2 * ID_LEN + 1];
	int rc = buf_reserve(&raw, ref->raw);

	rc = rc ? rc : repo_decode_blob(r, series, ref, enc, raw.p, &scratch);
	if (rc == 0) {
		rc = tree_decode(raw.p, ref->raw, t);
		if (rc == SNAP_ECORRUPT) {
			pack_key(series, ref->pack, key, sizeof(key));
			hex_encode(ref->id, ID_LEN, id);
			snap_seterr(rc,
				    "%s: directory object %.16s is malformed "
				    "(bad or hostile entry)",
				    key, id);
		}
	}
	buf_free(&raw);
	buf_free(&scratch);
	return rc;
}

int repo_read_tree(struct repo *r, const char *series, const struct ref *ref,
		   struct tree *t)
{
	struct buf enc = BUF_INIT;
	int rc = repo_read_pack(r, series, ref->pack, ref->off, ref->len, &enc);

	if (rc == 0)
		rc = repo_decode_tree(r, series, ref, enc.p, t);
	buf_free(&enc);
	return rc;
}
