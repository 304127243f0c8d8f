/* store.c - location parsing and helpers shared by all backends. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "http.h"
#include "store.h"

int store_open(const char *location, const struct store_opts *so,
	       struct store **out)
{
	const char *sep;

	*out = NULL;
	if (!location || !*location)
		return snap_seterr(SNAP_EINVAL,
				   "no repository given (use -r LOCATION or "
				   "SNAPFS_REPOSITORY)");
	sep = strstr(location, "://");
	if (!sep)
		return store_file_open(location, so, out);
	if (strncmp(location, "file://", 7) == 0) {
		if (location[7] != '/')
			return snap_seterr(SNAP_EINVAL,
					   "bad location '%s': file:// needs "
					   "an absolute path (file:///path)",
					   location);
		return store_file_open(location + 7, so, out);
	}
	if (!strncmp(location, "s3://", 5) || !strncmp(location, "minio://", 8))
		return store_s3_open(location, so, out);
	if (!strncmp(location, "azure://", 8))
		return store_azure_open(location, so, out);
	return snap_seterr(SNAP_EINVAL,
			   "unsupported location '%.*s://...': use a path, "
			   "file:///path, s3://, minio:// or azure://",
			   (int)(sep - location), location);
}

int store_is_remote(const struct store *s)
{
	return strcmp(s->ops->scheme, "file") != 0;
}

void store_http_cfg(const struct store_opts *so, struct http_cfg *hc)
{
	const char *env = getenv("SNAPFS_HTTP_STALL_TIMEOUT");
	int par = so && so->parallel > 0 ? so->parallel : 8;

	/* The caps are totals; curl applies them per connection. */
	if (so && so->limit_up)
		hc->limit_up = so->limit_up / par ? so->limit_up / par : 1;
	if (so && so->limit_down)
		hc->limit_down = so->limit_down / par ? so->limit_down / par : 1;
	if (env)
		hc->stall_timeout = strtol(env, NULL, 10);
	env = getenv("SNAPFS_HTTP_RETRIES");
	if (env)
		hc->retries = strtol(env, NULL, 10);
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

int store_read_exact(struct store *s, const char *key, uint64_t off,
		     size_t len, struct buf *out)
{
	out->len = 0;
	/* Whole before the first byte arrives: grown by doubling as the body
	 * came in, the buffer was copied and faulted in afresh at each step
	 * (three quarters of a restore's page faults). */
	SNAP_TRY(buf_reserve(out, len));
	SNAP_TRY(store_get(s, key, (int64_t)off, (int64_t)len, out));
	if (out->len != len)
		return snap_seterr(SNAP_ECORRUPT,
				   "%s: truncated (wanted %zu bytes at offset "
				   "%llu, got %zu)",
				   key, len, (unsigned long long)off, out->len);
	return 0;
}

int store_check_create_only(struct store *s)
{
	char key[64], hex[17], msg[1024];
	uint8_t r[8];
	int rc;

	SNAP_TRY(random_bytes(r, sizeof(r)));
	hex_encode(r, sizeof(r), hex);
	snprintf(key, sizeof(key), "snapfs-probe-%s", hex);
	SNAP_TRY(store_put(s, key, "1", 1, STORE_CREATE_ONLY));
	/* Other bytes: a retried put finding its own object succeeds. */
	rc = store_put(s, key, "2", 1, STORE_CREATE_ONLY);
	if (rc == 0)
		rc = snap_seterr(SNAP_EUNSUPP,
				 "%s does not honour create-only writes: a "
				 "second put of %s with If-None-Match: * was "
				 "accepted; snapfs needs them so that writers "
				 "never overwrite each other's backups (MinIO "
				 "and Ceph releases have shipped this bug: "
				 "upgrade the server)",
				 s->url, key);
	else if (rc == SNAP_EEXIST)
		rc = 0;
	snprintf(msg, sizeof(msg), "%s", snap_errmsg());
	(void)store_del(s, key);
	snap_errset_msg(msg);
	return rc;
}

int store_holds(struct store *s, const char *key, const void *p, size_t n)
{
	struct buf have = BUF_INIT;
	int same = store_get(s, key, 0, -1, &have) == 0 && have.len == n &&
		   (n == 0 || !memcmp(have.p, p, n));

	buf_free(&have);
	return same;
}

static int collect(const char *key, uint64_t size, void *ctx)
{
	struct keylist *kl = ctx;

	(void)size;
	if (kl->n == kl->cap) {
		size_t cap = kl->cap ? kl->cap * 2 : 64;
		char **k = realloc(kl->keys, cap * sizeof(*k));

		if (!k)
			return snap_seterr(SNAP_ENOMEM, "out of memory");
		kl->keys = k;
		kl->cap = cap;
	}
	kl->keys[kl->n] = strdup(key);
	if (!kl->keys[kl->n])
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	kl->n++;
	return 0;
}

int store_keys(struct store *s, const char *prefix, struct keylist *kl)
{
	return store_list(s, prefix, collect, kl);
}

void keylist_free(struct keylist *kl)
{
	for (size_t i = 0; i < kl->n; i++)
		free(kl->keys[i]);
	free(kl->keys);
	memset(kl, 0, sizeof(*kl));
}

int store_delete_prefix(struct store *s, const char *prefix, uint64_t *n)
{
	struct keylist kl = {0};
	int rc;

	*n = 0;
	/* Collect first: deleting while a backend pages through a listing
	 * can make it skip keys. */
	rc = store_list(s, prefix, collect, &kl);
	if (rc == 0 && s->ops->del_many) {
		rc = s->ops->del_many(s, kl.keys, kl.n);
		if (rc == 0)
			*n = kl.n;
	}
	for (size_t i = 0; rc == 0 && !s->ops->del_many && i < kl.n; i++) {
		rc = store_del(s, kl.keys[i]);
		if (rc == 0)
			(*n)++;
	}
	if (rc == 0)
		rc = store_sweep(s, prefix);
	keylist_free(&kl);
	return rc;
}
