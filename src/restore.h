/*
 * restore.h - materialises a backup (or part of it) on local disk.
 *
 * Layout: TARGET/<group>/... for every group of the backup (or only
 * opts->group), optionally only the subtree opts->path inside each group.
 * Contents, modes, owners (when run as root), mtimes, xattrs, symlinks,
 * hardlinks and holes come back as they were backed up.
 *
 * Safety: every entry is created relative to its parent directory's file
 * descriptor with O_NOFOLLOW / O_EXCL, and directories are reopened with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so neither a hostile backup ("..",
 * "/", names with '/') nor a symlink planted in the target can make a
 * restore write outside TARGET (SNAP_EUNSAFE).  The target must be empty
 * (or missing) unless opts->overwrite.
 *
 * Parallel: the calling thread walks the trees and creates entries; a pool
 * fetches chunks (adjacent chunks of a pack in one ranged read), verifies,
 * decompresses and writes them with pwrite.  A failure (corrupt object,
 * ENOSPC, ...) stops the restore, removes every file it left incomplete,
 * and is returned with a message naming the object or the path.
 */
#ifndef SNAPFS_RESTORE_H
#define SNAPFS_RESTORE_H

#include <stdint.h>

#include "progress.h"
#include "repo.h"

struct restore_opts {
	const char *target;
	const char *group; /* NULL: every group */
	const char *path;  /* NULL: the whole group */
	int threads;       /* 0: default */
	int overwrite;
	struct progress *progress;
	void (*warn)(const char *msg, void *ctx);
	void *warn_ctx;
};

struct restore_result {
	uint64_t files, dirs, links, bytes;
	uint64_t warnings;
	double elapsed;
};

int restore_run(struct repo *r, const char *series, uint32_t num,
		const struct restore_opts *o, struct restore_result *res);

/* Opens rel below root without following any symlink and without leaving
 * root; rel "" is root itself.  Returns an fd or -1 with errno set. */
int open_beneath(int root, const char *rel, int flags);

#endif
