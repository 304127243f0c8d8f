/*
 * index.h - the chunk index of one series: chunk id -> where it is stored.
 *
 * The series is the unit of dedup, so a backup loads the index of its own
 * series only (from the trailers of the series' packs) and adds what it
 * writes.  Memory is ~64 bytes per distinct chunk of the series (about 64 MB
 * per TiB of unique data at the 1 MiB average chunk) and does not depend on
 * the size of the repository.  Not thread-safe: the backup engine guards it
 * with its pack lock.
 */
#ifndef SNAPFS_INDEX_H
#define SNAPFS_INDEX_H

#include <stddef.h>

#include "pack.h"
#include "repo.h"

struct index {
	struct ref *slots; /* empty slot: raw == UINT32_MAX */
	size_t cap, n;
};

void index_init(struct index *ix);
void index_free(struct index *ix);
/* Returns 1 and fills *r when id is known, else 0. */
int index_get(const struct index *ix, const uint8_t id[ID_LEN],
	      struct ref *r);
/* Adds or replaces.  0 or SNAP_ENOMEM. */
int index_put(struct index *ix, const struct ref *r);

/* Loads the trailers of every pack under data/<series>/ (in parallel).
 * Packs that fail authentication are skipped with *bad counting them: the
 * backup then simply stores those chunks again. */
int index_load_series(struct index *ix, struct repo *r, const char *series,
		      int threads, size_t *npacks, size_t *bad);
/* The same for the packs among only[] (n of them; sorted in place). */
int index_load_packs(struct index *ix, struct repo *r, const char *series,
		     uint8_t (*only)[PACK_ID_LEN], size_t nonly,
		     int threads, size_t *npacks, size_t *bad);

#endif
