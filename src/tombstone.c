/*
 * tombstone.c - see tombstone.h.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int tomb_filter(struct store *st, struct backup_id *v, size_t *n)
{
	struct series_set t = {0};
	size_t k = 0;
	int rc = series_set_list(st, TOMB_PREFIX, &t);

	for (size_t i = 0; rc == 0 && t.n && i < *n; i++)
		if (!series_set_has(&t, v[i].series))
			v[k++] = v[i];
	if (rc == 0 && t.n)
		*n = k;
	series_set_free(&t);
	return rc;
}

static int put_tombstone(struct store *st, const char *series)
{
	char key[SERIES_MAX + 16], host[256] = "";
	json_t *j;
	char *text = NULL;
	int rc;

	tomb_key(series, key, sizeof(key));
	host_name(host, sizeof(host));
	j = json_pack("{s:s,s:I,s:s}", "series", series, "deleted",
		      (json_int_t)now_ns(), "host", host);
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
