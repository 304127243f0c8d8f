/*
 * index.h - the chunk index of one series: chunk id -> where it is stored.
 *
 * The series is the unit of dedup, so a backup loads the index of its own
 * series only (from its backups' index objects) and adds what it writes.  Memory is ~64 bytes per distinct chunk of the series (about 64 MB
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

/* What index_load_backups() read. */
struct index_load {
	size_t backups; /* manifests of the series */
	size_t objects; /* index objects used (ixobj.h) */
	size_t packs;   /* pack trailers read instead, for the others */
	size_t bad;     /* of those, missing or failing authentication */
};

/* The index of what the committed backups of series stored: for each
 * backup, its index object (its manifest and one small object), or, when
 * it has none (an older writer) or it does not match, the trailers of the
 * packs its manifest lists.  Packs no manifest lists (of a killed or failed
 * backup) are never in it: check --repair may delete them.  In parallel,
 * threads at a time.  Bad packs are skipped and counted: the backup then
 * stores those chunks again.  have: a manifest of the series the caller
 * read already (or NULL), not read again. */
int index_load_backups(struct index *ix, struct repo *r, const char *series,
		       const struct manifest *have, int threads,
		       struct index_load *st);

#endif
