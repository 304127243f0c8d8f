/*
 * diff.h - what changed between two backups.
 *
 * Both trees are walked side by side, a directory at a time, in name
 * order.  Directory objects are content-addressed, so two directories with
 * the same object id hold the same subtree and are skipped unread: a diff
 * of two backups of a large, mostly unchanged tree reads only the
 * directories on the paths to what changed.  Content is compared by chunk
 * ids (the same bytes chunk to the same ids, in any series of the
 * repository), never by reading data.
 *
 * Kinds, as restic diff prints them:
 *   '+'  only in B        '-'  only in A
 *   'M'  content changed (file data, symlink target, device number)
 *   'U'  metadata only (mode, owner, mtime, extended attributes)
 *   'T'  type changed (a file became a directory, ...)
 * Everything below an added or removed directory is reported too.  A
 * directory whose content changed is not reported for its own mtime,
 * which such a change moves anyway; its mode, owner or attributes are.
 *
 * Memory: two directory objects per level of depth.  Errors (a directory
 * object that fails to read) stop the diff with the repository's error.
 */
#ifndef SNAPFS_DIFF_H
#define SNAPFS_DIFF_H

#include <stdint.h>

#include "manifest.h"
#include "repo.h"
#include "tree.h"

struct diff_stats {
	uint64_t added, removed, changed, meta, type;
	uint64_t bytes_added, bytes_removed; /* sizes of the files concerned */
	uint64_t trees_read;  /* directory objects fetched */
	uint64_t trees_same;  /* directories skipped as identical */
};

/* One change: path is "GROUP/dir/name"; a (in A) or b (in B) is NULL
 * where the entry does not exist.  A non-zero return stops the diff. */
typedef int (*diff_fn)(void *ctx, char kind, const char *path,
		       const struct tent *a, const struct tent *b);

/* Diffs backup a (of series sa) against b (of series sb), both of repo r.
 * Returns 0, the first error of a read, or what fn returned. */
int diff_backups(struct repo *r, const char *sa, const struct manifest *a,
		 const char *sb, const struct manifest *b, diff_fn fn,
		 void *ctx, struct diff_stats *st);

#endif
