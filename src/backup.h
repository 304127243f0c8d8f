/*
 * backup.h - turns directory trees into the next backup of a label.
 *
 * Each group (a directory) becomes one tree of directory objects.  The
 * backup is incremental against the newest backup of the label's newest
 * series unless opts->full or the label has none, in which case it starts a
 * new series "<label>-<uuid>" at backupNum 1.
 *
 * Pipeline: the calling thread walks the source and reads files (holes are
 * skipped with SEEK_DATA/SEEK_HOLE), cutting FastCDC chunks; a bounded pool
 * hashes, dedups against the series index, compresses and encrypts them
 * into packs; a second pool uploads full packs.  Files whose size, mtime,
 * ctime and inode match the parent backup reuse its chunk list unread.
 * Memory is bounded by the queue sizes (about 100 MB), not by the data.
 *
 * Nothing is visible until the end: the manifest is written with a
 * create-only put after every pack is durable.  On failure no manifest is
 * written; packs already uploaded are reused by the next attempt.
 */
#ifndef SNAPFS_BACKUP_H
#define SNAPFS_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "progress.h"
#include "repo.h"

struct backup_group {
	const char *name; /* group name (one path component) */
	const char *path; /* source directory */
};

struct backup_opts {
	const char *label;
	int full;
	const struct backup_group *groups;
	size_t ngroups;
	int threads; /* chunk workers; 0: one per CPU */
	int uploads; /* parallel pack uploads; 0: default */
	struct progress *progress; /* may be NULL */
	/* Called for each skipped or changed entry (may be NULL). */
	void (*warn)(const char *msg, void *ctx);
	void *warn_ctx;
};

struct backup_result {
	char series[SERIES_MAX];
	uint32_t num;
	int full;
	uint64_t files, dirs, bytes;      /* what the backup holds */
	uint64_t files_new, files_reused; /* read vs. taken from the parent */
	uint64_t bytes_read;              /* file bytes read and chunked */
	uint64_t bytes_new;               /* stored bytes added (packs) */
	uint64_t chunks_new, chunks_dedup;
	uint64_t packs;
	uint64_t warnings;
	double elapsed;
};

int backup_run(struct repo *r, const struct backup_opts *o,
	       struct backup_result *res);

#endif
