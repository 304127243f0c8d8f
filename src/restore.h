/*
 * restore.h - materialises a backup (or part of it) on local disk.
 *
 * Layout: TARGET/<group>/... for every group of the backup (or only
 * opts->group), optionally only the subtree opts->path inside each group.
 * Contents, modes, owners (when run as root), mtimes, xattrs, symlinks,
 * hardlinks, holes, FIFOs and device nodes come back as they were backed
 * up.  A device node needs CAP_MKNOD: without it each is a warning.
 *
 * Safety: every entry is created relative to its parent directory's file
 * descriptor with O_NOFOLLOW / O_EXCL, and directories are reopened (for
 * their metadata, and as the source of a hard link) with RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS, so neither a hostile backup ("..", "/", names with
 * '/') nor a symlink planted in the target, before or during the restore,
 * can make a restore write, link or chmod outside TARGET (SNAP_EUNSAFE).
 * The target must be empty (or missing) unless opts->overwrite or
 * opts->skip_existing.
 *
 * Resuming: with skip_existing, a regular file already in the target is
 * read back and kept when every chunk hashes to the id the backup records
 * and its holes read as zeros; otherwise it is rewritten in place.  So a
 * restore that was killed (files created but unwritten, one half-written)
 * is finished by running it again, fetching only what is missing.
 *
 * flat: restore the one group opts->group as TARGET itself (its contents
 * directly in TARGET, the group's metadata on TARGET).
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
	int skip_existing; /* keep files that verify; implies overwrite */
	int flat;          /* opts->group's contents directly in target */
	int set_owner;     /* every entry owned by uid:gid */
	uint32_t uid, gid;
	struct progress *progress;
	void (*warn)(const char *msg, void *ctx);
	void *warn_ctx;
};

struct restore_result {
	uint64_t files, dirs, links, bytes;
	uint64_t specials; /* FIFOs and device nodes */
	uint64_t files_kept, bytes_kept; /* skip_existing: verified, not fetched */
	uint64_t warnings;
	double elapsed;
};

int restore_run(struct repo *r, const char *series, uint32_t num,
		const struct restore_opts *o, struct restore_result *res);

/* Checks that dir holds exactly group's tree of backup series/num: the
 * same names and types, sizes, permission bits, symlink targets, device
 * numbers and, for
 * every regular file, contents (each chunk hashed against its id, holes
 * zero).  Nothing is fetched but directory objects.  A difference is
 * SNAP_ECORRUPT naming the first path that differs; res counts what was
 * checked (files, dirs, links, specials, bytes). */
int restore_verify(struct repo *r, const char *series, uint32_t num,
		   const char *group, const char *dir,
		   struct restore_result *res);

/* Opens rel below root without following any symlink and without leaving
 * root; rel "" is root itself.  Returns an fd or -1 with errno set (ELOOP
 * or ENOTDIR for a symlink on the way, EXDEV for "..").  Uses openat2
 * RESOLVE_BENEATH, and where openat2 is missing or denied (ENOSYS, or
 * EPERM as container seccomp profiles answer) an equivalent walk of
 * O_NOFOLLOW opens, one component at a time. */
int open_beneath(int root, const char *rel, int flags);

#endif
