/*
 * store.h - the object store every byte of a repository goes through.
 *
 * A store is a flat namespace of immutable-ish objects named by '/'-separated
 * keys relative to the repository location.  Backends (file now; S3 and
 * Azure behind the same vtable) implement six operations; the engine never
 * touches a backend directly.  All operations are safe to call from several
 * threads at once on the same store.
 *
 * Failure contract: every operation returns 0 or a negative snap_err with a
 * message that names the object ("data/x/abc: ...").  SNAP_ENOENT means the
 * object is not there; SNAP_EEXIST is only returned by a create-only put that
 * found the key taken.  No partial object is ever visible under a key: a put
 * either replaces the whole object or leaves the old state.
 */
#ifndef SNAPFS_STORE_H
#define SNAPFS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define STORE_CREATE_ONLY 1 /* fail with SNAP_EEXIST if the key exists */
#define STORE_TMP_GRACE 3600 /* seconds a put's temporary file is its own */

struct store;

/* Called once per listed object; key is relative to the store root.
 * Return non-zero to stop the listing (that value is returned by list). */
typedef int (*store_list_cb)(const char *key, uint64_t size, void *ctx);

struct store_ops {
	const char *scheme;
	int (*put)(struct store *s, const char *key, const void *p, size_t n,
		   int flags);
	/* Appends the bytes [off, off+len) to out.  len < 0: to the end.
	 * off < 0: the last -off bytes (a suffix range).  Reading past the
	 * end returns what exists; the caller checks the length it needs. */
	int (*get)(struct store *s, const char *key, int64_t off, int64_t len,
		   struct buf *out);
	int (*head)(struct store *s, const char *key, uint64_t *size);
	/* Every object whose key starts with prefix, in no promised order. */
	int (*list)(struct store *s, const char *prefix, store_list_cb cb,
		    void *ctx);
	/* Deleting a missing key is not an error. */
	int (*del)(struct store *s, const char *key);
	/* Optional: delete many keys in few requests (NULL: one by one). */
	int (*del_many)(struct store *s, char **keys, size_t n);
	/* Optional: removes what interrupted puts left under prefix and
	 * list never shows (temporary files older than STORE_TMP_GRACE: a
	 * younger one may belong to a put still running), and directories
	 * that leaves empty.  prefix names a directory ("data/<series>/",
	 * or "" for all); other prefixes may sweep nothing.  NULL: the
	 * backend leaves nothing behind. */
	int (*sweep)(struct store *s, const char *prefix);
	/* Optional: create the bucket / container (NULL: nothing to do). */
	int (*create)(struct store *s);
	void (*close)(struct store *s);
};

/* How to reach a store; zero means the default for each field. */
struct store_opts {
	int parallel;        /* concurrent requests an engine may issue */
	uint64_t limit_up;   /* total upload cap, bytes/s */
	uint64_t limit_down; /* total download cap, bytes/s */
	int anonymous;       /* unsigned requests (public buckets) */
	/* Local stores: read ranges of 256 KiB or more with O_DIRECT, for a
	 * reader that caches what it decodes (the mount): the encrypted
	 * packs in the page cache too would double the memory and copying.
	 * Filesystems without O_DIRECT are read normally. */
	int direct_read;
};

struct store {
	const struct store_ops *ops;
	char *url; /* for messages; never holds a secret */
};

/* Opens the store named by a location (see location.h): a path,
 * file:///path, s3://, minio:// or azure://.  Unknown schemes and
 * malformed locations are SNAP_EINVAL with a message that says which forms
 * are accepted; missing credentials are SNAP_EACCES.  Nothing is contacted
 * yet, and the store does not have to hold a repository (init creates
 * one).  so may be NULL. */
int store_open(const char *location, const struct store_opts *so,
	       struct store **out);

/* True for backends that talk to a server (parallelism pays off). */
int store_is_remote(const struct store *s);
void store_close(struct store *s);

static inline int store_put(struct store *s, const char *key, const void *p,
			    size_t n, int flags)
{
	return s->ops->put(s, key, p, n, flags);
}
static inline int store_get(struct store *s, const char *key, int64_t off,
			    int64_t len, struct buf *out)
{
	return s->ops->get(s, key, off, len, out);
}
static inline int store_head(struct store *s, const char *key,
			     uint64_t *size)
{
	return s->ops->head(s, key, size);
}
static inline int store_list(struct store *s, const char *prefix,
			     store_list_cb cb, void *ctx)
{
	return s->ops->list(s, prefix, cb, ctx);
}
static inline int store_del(struct store *s, const char *key)
{
	return s->ops->del(s, key);
}

static inline int store_sweep(struct store *s, const char *prefix)
{
	return s->ops->sweep ? s->ops->sweep(s, prefix) : 0;
}

/* Reads exactly len bytes at off; a shorter object is SNAP_ECORRUPT
 * ("truncated").  out is cleared first. */
int store_read_exact(struct store *s, const char *key, uint64_t off,
		     size_t len, struct buf *out);

/* True when key holds exactly p[0..n): a create-only put that was retried
 * after a lost reply finds its own object there, which is success. */
int store_holds(struct store *s, const char *key, const void *p, size_t n);

/* Verifies that s refuses a second create-only put of a key (snapfs
 * needs it so that two writers never overwrite each other's manifest):
 * puts a probe object twice, then deletes it (best effort).  0 when the
 * second put was refused; SNAP_EUNSUPP naming the problem when it was
 * accepted; a store error otherwise. */
int store_check_create_only(struct store *s);

/* Every key under prefix, collected (malloc'd; keylist_free()): for
 * callers that act on a listing after it ended, which is also safer than
 * deleting while a backend pages through it. */
struct keylist {
	char **keys;
	size_t n, cap;
};
int store_keys(struct store *s, const char *prefix, struct keylist *kl);
void keylist_free(struct keylist *kl);

/* Deletes every object under prefix, then sweeps it (store_sweep), so
 * that a deleted prefix leaves nothing behind but what a put still running
 * writes; returns the count of objects in *n. */
int store_delete_prefix(struct store *s, const char *prefix, uint64_t *n);

/* Backend constructors (store_open dispatches). */
int store_file_open(const char *path, const struct store_opts *so,
		    struct store **out);
int store_s3_open(const char *url, const struct store_opts *so,
		  struct store **out);
int store_azure_open(const char *url, const struct store_opts *so,
		     struct store **out);

struct http_cfg;
/* Fills the transfer settings a remote backend derives from so. */
void store_http_cfg(const struct store_opts *so, struct http_cfg *hc);

#endif
