/*
 * prune.h - deletes the series a keep policy does not keep.
 *
 * Per label: the label's series (tombstoned ones are gone already), each
 * timed by its newest backup, go through ret_evaluate() (retention.h).
 * Two series are never deleted: the newest by that time, and the one the
 * label's next backup continues (repo_newest_series(): the latest start;
 * usually the same series).  Every decision is reported before
 * anything is deleted, so a failed run has said what it meant to do;
 * deletion is tomb_delete_series() (tombstone.h), series by series, the
 * oldest first.
 *
 * Cost: one LIST of manifests/, one manifest read per series (its newest
 * backup; and backup 1 of a series with an older, version-4 id), and the
 * deletes.  Memory: one record per series listed.
 * On failure the first error is returned; series deleted before it stay
 * deleted, the one it stopped in is finished by the next run.
 */
#ifndef SNAPFS_PRUNE_H
#define SNAPFS_PRUNE_H

#include "repo.h"
#include "retention.h"

/* Kept because the label's next backup continues it. */
#define RET_CURRENT (1u << 8)

struct prune_series {
	char series[SERIES_MAX];
	char label[LABEL_MAX + 1];
	/* Its start (a version-7 id's time, else backup 1's) and its newest
	 * backup's time. */
	int64_t first, time;
	uint32_t backups;    /* how many it holds */
	unsigned why;        /* RET_* bits keeping it; 0: deleted */
};

struct prune_opts {
	struct ret_policy policy;
	const char *const *labels; /* only these (NULL: every label) */
	size_t nlabels;
	int dry_run;
	/* Each series' decision, label by label, newest first; called before
	 * the first delete (may be NULL). */
	void (*decided)(void *ctx, const struct prune_series *s);
	/* After a series is deleted, with what went. */
	void (*deleted)(void *ctx, const struct prune_series *s,
			uint32_t backups, uint64_t objects);
	void *ctx;
};

struct prune_result {
	size_t labels, kept, deleted;  /* series */
	uint64_t backups, objects;     /* deleted */
};

int prune_run(struct repo *r, const struct prune_opts *o,
	      struct prune_result *res);

/* ret_reasons() that also names RET_CURRENT. */
void prune_reasons(unsigned why, char *buf, size_t cap);

#endif
