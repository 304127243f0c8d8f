/* store.c - location parsing and helpers shared by all backends. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "store.h"

int store_open(const char *location, struct store **out)
{
	const char *sep;

	*out = NULL;
	if (!location || !*location)
		return snap_seterr(SNAP_EINVAL,
				   "no repository given (use -r LOCATION or "
				   "SNAPFS_REPOSITORY)");
	sep = strstr(location, "://");
	if (!sep)
		return store_file_open(location, out);
	if (strncmp(location, "file://", 7) == 0) {
		if (location[7] != '/')
			return snap_seterr(SNAP_EINVAL,
					   "bad location '%s': file:// needs "
					   "an absolute path (file:///path)",
					   location);
		return store_file_open(location + 7, out);
	}
	return snap_seterr(SNAP_EINVAL,
			   "unsupported location '%.*s://...': use a path or "
			   "file:///path",
			   (int)(sep - location), location);
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
	SNAP_TRY(store_get(s, key, (int64_t)off, (int64_t)len, out));
	if (out->len != len)
		return snap_seterr(SNAP_ECORRUPT,
				   "%s: truncated (wanted %zu bytes at offset "
				   "%llu, got %zu)",
				   key, len, (unsigned long long)off, out->len);
	return 0;
}

struct keylist {
	char **keys;
	size_t n, cap;
};

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

int store_delete_prefix(struct store *s, const char *prefix, uint64_t *n)
{
	struct keylist kl = {0};
	int rc;

	*n = 0;
	/* Collect first: deleting while a backend pages through a listing
	 * can make it skip keys. */
	rc = store_list(s, prefix, collect, &kl);
	for (size_t i = 0; rc == 0 && i < kl.n; i++) {
		rc = store_del(s, kl.keys[i]);
		if (rc == 0)
			(*n)++;
	}
	for (size_t i = 0; i < kl.n; i++)
		free(kl.keys[i]);
	free(kl.keys);
	return rc;
}
