/*
 * tombstone.c - see tombstone.h.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "manifest.h"
#include "ixobj.h"
#include "tombstone.h"
#include "util.h"

#define TOMB_PREFIX "tombstones/"

void tomb_key(const char *series, char *out, size_t n)
{
	snprintf(out, n, TOMB_PREFIX "%s", series);
}

int tomb_exists(struct store *st, const char *series)
{
	char key[SERIES_MAX + 16];
	uint64_t size;
	int rc;

	tomb_key(series, key, sizeof(key));
	rc = store_head(st, key, &size);
	if (rc == SNAP_ENOENT)
		return 0;
	return rc ? rc : 1;
}

struct names {
	char (*v)[SERIES_MAX];
	size_t n, cap;
};

static int name_cb(const char *key, uint64_t size, void *ctx)
{
	struct names *t = ctx;
	const char *s = key + strlen(TOMB_PREFIX);

	(void)size;
	if (strlen(s) >= SERIES_MAX || series_check(s))
		return 0; /* not ours */
	SNAP_TRY(array_grow(&t->v, &t->cap, t->n, sizeof(*t->v), 16));
	snprintf(t->v[t->n++], SERIES_MAX, "%s", s);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int tomb_filter(struct store *st, struct backup_id *v, size_t *n)
{
	struct names t = {0};
	size_t k = 0;
	int rc;

	rc = store_list(st, TOMB_PREFIX, name_cb, &t);
	if (rc || t.n == 0)
		goto out;
	qsort(t.v, t.n, sizeof(*t.v), cmp_name);
	for (size_t i = 0; i < *n; i++)
		if (!bsearch(v[i].series, t.v, t.n, sizeof(*t.v), cmp_name))
			v[k++] = v[i];
	*n = k;
out:
	free(t.v);
	return rc;
}

static int put_tombstone(struct store *st, const char *series)
{
	char key[SERIES_MAX + 16], host[256] = "";
	json_t *j;
	char *text = NULL;
	int rc;

	tomb_key(series, key, sizeof(key));
	if (gethostname(host, sizeof(host) - 1))
		host[0] = 0;
	j = json_pack("{s:s,s:I,s:s}", "series", series, "deleted",
		      (json_int_t)now_ns(), "host", host);
	if (!j) /* a host name that is not UTF-8 */
		j = json_pack("{s:s,s:I}", "series", series, "deleted",
			      (json_int_t)now_ns());
	if (j)
		text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	rc = store_put(st, key, text, strlen(text), STORE_CREATE_ONLY);
	free(text);
	/* A delete that stopped part way left it: go on where it stopped. */
	return rc == SNAP_EEXIST ? 0 : rc;
}

/* Deletes the manifests of series listed now, newest first: an older
 * backup restores only while its packs remain, so data goes last. */
static int delete_manifests(struct store *st, const char *series,
			    uint32_t *backups)
{
	char prefix[SERIES_MAX + 16], key[SERIES_MAX + 32];
	struct backup_id *v;
	size_t n;
	int rc = 0;

	snprintf(prefix, sizeof(prefix), "manifests/%s/", series);
	SNAP_TRY(repo_store_list(st, prefix, &v, &n));
	for (size_t i = n; rc == 0 && i-- > 0;) {
		if (strcmp(v[i].series, series))
			continue;
		manifest_key(series, v[i].num, key, sizeof(key));
		rc = store_del(st, key);
		*backups += rc == 0;
	}
	free(v);
	return rc;
}

int tomb_delete_series(struct store *st, const char *series,
		       uint32_t *backups, uint64_t *objects)
{
	static const char *const prefixes[] = {"manifests", "index", "data",
					       "leases"};
	char prefix[SERIES_MAX + 16];
	uint64_t n;
	int rc;

	*backups = 0;
	*objects = 0;
	SNAP_TRY(series_check(series));
	rc = put_tombstone(st, series);
	rc = rc ? rc : delete_manifests(st, series, backups);
	/* Then what else there is: packs, and writers' leases (lease.h):
	 * none can commit into the series any more. */
	for (size_t i = 0; rc == 0 && i < sizeof(prefixes) / sizeof(*prefixes);
	     i++) {
		snprintf(prefix, sizeof(prefix), "%s/%s/", prefixes[i], series);
		rc = store_delete_prefix(st, prefix, &n);
		*objects += n;
	}
	/* A backup that put its manifest between the tombstone and now
	 * takes it away itself; this one is for a writer that died before
	 * it could. */
	rc = rc ? rc : delete_manifests(st, series, backups);
	if (rc)
		snap_preerr(rc, "deleting series %s (it is marked deleted and "
				"no longer listed; run the delete again to "
				"finish it)", series);
	return rc;
}

int tomb_withdraw(struct store *st, const char *series, uint32_t num,
		  const uint8_t (*packs)[PACK_ID_LEN], size_t npacks)
{
	char key[SERIES_MAX + 160];
	int rc = 0;

	if (num) {
		manifest_key(series, num, key, sizeof(key));
		rc = store_del(st, key);
	}
	if (num && rc == 0) {
		ixobj_key(series, num, key, sizeof(key));
		rc = store_del(st, key);
	}
	for (size_t i = 0; rc == 0 && i < npacks; i++) {
		pack_key(series, packs[i], key, sizeof(key));
		rc = store_del(st, key);
	}
	if (rc)
		return snap_preerr(rc, "series %s was deleted while this "
				       "backup ran, and removing what it "
				       "stored failed", series);
	return snap_seterr(SNAP_ENOENT, "series %s was deleted while this "
			   "backup ran: nothing was committed (run the "
			   "backup again to start a new series)", series);
}
