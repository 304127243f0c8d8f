/*
 * mirror.h - copies a repository to another store (snapctl mirror).
 *
 * Works on objects, with no key: what is copied is already encrypted and
 * authenticated, so a mirror host needs no secret.  Series by series:
 * the packs DST lacks first (in parallel), then the manifests DST lacks
 * in backupNum order, each only once every pack that manifest and its
 * predecessors wrote is in DST; so DST never holds a backup it cannot
 * read, whenever the copy stops.  Objects are immutable: every put is
 * create-only, an object DST has already is checked (its size) and
 * skipped, one DST has with another size is an error, never overwritten.
 * A run after an interruption copies only what is missing.
 *
 * DST must be empty (snapfs.json is copied first) or hold the same
 * repository (its id, keys and chunking); a different one is refused.
 * snapfs.json itself is the one mutable object: when SRC's differs (a
 * format upgrade, key slots added, a passphrase changed), DST's takes
 * SRC's before anything is copied, so DST opens with the same secrets and
 * no object of a newer format lands in an older one; SRC is listed before
 * its config is read, so every backup listed is of that format or older.
 * A key slot only DST has is never dropped: that is refused.
 *
 * remove deletes from DST the series SRC does not have (of the selected
 * labels, when some are), newest manifest first, only after the whole copy
 * succeeded, and never all of them because SRC lists nothing.
 *
 * Memory: one listing of a series at a time, and one object per copy in
 * flight.
 */
#ifndef SNAPFS_MIRROR_H
#define SNAPFS_MIRROR_H

#include <stddef.h>
#include <stdint.h>

#include "progress.h"
#include "store.h"

struct mirror_opts {
	const char *const *series; /* only these series ids (n 0: all) */
	size_t nseries;
	const char *const *labels; /* only these labels' series */
	size_t nlabels;
	int remove;
	int parallel;              /* copies in flight (0: 4) */
	struct progress *progress; /* may be NULL */
};

struct mirror_result {
	uint64_t series;           /* series looked at */
	uint64_t packs, manifests; /* copied */
	uint64_t bytes;            /* copied */
	uint64_t present;          /* objects DST had already */
	uint64_t removed;          /* series removed from DST */
	int config;                /* snapfs.json written to DST */
	double elapsed;
};

/* 0, or the first error with a message naming the object and the store.
 * On an error nothing is removed from DST. */
int mirror_run(struct store *src, struct store *dst,
	       const struct mirror_opts *o, struct mirror_result *res);

#endif
