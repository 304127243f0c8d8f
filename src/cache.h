/*
 * cache.h - the mount's bounded caches of blobs and manifests.
 *
 * cache_chunk() / cache_tree() return a pinned, decoded blob: a data
 * chunk's plaintext or a decoded directory object.  They look in memory,
 * then on disk, then fetch from the store (a ranged read of the pack).
 * Concurrent requests for one blob share one fetch; cache_prefetch()
 * starts a fetch in the background and returns at once.
 *
 * Memory: decoded blobs sit in one LRU bounded by mem_bytes.  A pinned
 * blob is never evicted, so the bound is exceeded only by what readers
 * hold at that instant (a few chunks per reading thread).
 *
 * Disk (optional, dir != NULL): blobs exactly as stored in their packs,
 * so the disk never holds the plaintext of an encrypted repository and
 * every hit is authenticated again: a damaged cache file is deleted and
 * the blob fetched from the store, never reported as corruption.  Files
 * live under DIR/<repo id>/ and are evicted oldest-first beyond
 * disk_bytes; the index is rebuilt from the directory at open.  Manifests
 * (immutable once written) are kept there too, synced, so a remount
 * browses without refetching them; they are authenticated on every use,
 * and a damaged one is replaced from the store.  Each copy is written under
 * a temporary name of its own and renamed into place.  A second process on
 * the same directory runs
 * without the disk cache (flock), with a warning in *warning.
 *
 * Failures: a failed fetch is never cached; every waiter gets the code and
 * message, and the next request tries again.  A full or read-only cache
 * disk only disables caching of that blob.
 *
 * Thread-safe.  The repo must outlive the cache.
 */
#ifndef SNAPFS_CACHE_H
#define SNAPFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"

struct cache_opts {
	size_t mem_bytes;     /* decoded blobs kept in memory */
	const char *dir;      /* disk cache directory, or NULL for none */
	uint64_t disk_bytes;  /* disk cache bound */
	int prefetch_threads; /* background fetchers */
};

struct cache_stats {
	uint64_t mem_hits, disk_hits, fetches, fetch_bytes, prefetches;
	uint64_t mem_used, disk_used, disk_files;
};

struct cache;
struct centry;

int cache_open(struct repo *r, const struct cache_opts *o, struct cache **out,
	       char *warning, size_t wlen);
/* Waits for background fetches, then frees everything (no pins may
 * remain). */
void cache_close(struct cache *c);

/* A data chunk: *data holds ref->raw bytes, valid until cache_release(). */
int cache_chunk(struct cache *c, const char *series, const struct ref *ref,
		struct centry **e, const uint8_t **data);

/* A directory object, valid until cache_release(). */
int cache_tree(struct cache *c, const char *series, const struct ref *ref,
	       struct centry **e, const struct tree **t);

void cache_release(struct cache *c, struct centry *e);

/* Starts fetching a data chunk unless it is cached, being fetched, or too
 * many prefetches are already queued.  Errors are dropped: a later
 * cache_chunk() will meet them. */
void cache_prefetch(struct cache *c, const char *series,
		    const struct ref *ref);

/* A backup's manifest, parsed and authenticated into *m (manifest_free()
 * it), and its JSON text as stored into text: from the disk cache when a
 * copy there parses, else from the store.  A cached copy that does not
 * parse is deleted and replaced by the store's, so only the store's copy
 * failing is an error (message as manifest_parse() or the store's). */
int cache_manifest(struct cache *c, const char *series, uint32_t num,
		   struct buf *text, struct manifest *m);

void cache_get_stats(struct cache *c, struct cache_stats *s);

#endif
