/*
 * check.h - verifies a repository's structure and, optionally, its data.
 *
 * Structure: every manifest parses and authenticates; every pack a
 * manifest lists exists and its trailer authenticates; every directory
 * object of every backup decodes (and so authenticates); every chunk and
 * directory reference points at a blob its pack's trailer lists with the
 * same offset and lengths.  With read_data, every blob of every pack is
 * read and authenticated as well; with a subset, only those of the packs
 * in it: slice N of M (by pack id, so the M slices cover every pack once,
 * one a night), or a random share.
 *
 * On the way, each checked series' data prefix is swept (store_sweep):
 * temporary files that killed uploads left there go, those of an upload
 * still running stay.
 *
 * With repair (`check --repair`), what no backup can reach goes: packs of
 * a checked series that no manifest lists and no directory object of its
 * backups references, and, when the whole repository is checked, the
 * data of series that have no backup (a first backup that was killed) and
 * what an interrupted delete left of a tombstoned series.  Never while a
 * writer holds a lease on the series refreshed within the grace
 * (lease.h), nor when a backup landed in the series during the check;
 * stale leases go too.  On an undamaged repository whose writers all
 * finished it deletes nothing.  Each step is told through opts->note.
 * It first verifies that the store refuses a second create-only put
 * (store_check_create_only()), as init does.
 * Writers older than leases take none: no repair while they run.
 *
 * Problems are reported one line each through opts->report, naming the
 * object; the walk goes on after a problem so one run finds them all.
 * Memory grows with the number of packs and directories of one series
 * (each series is checked on its own), not with the repository.
 */
#ifndef SNAPFS_CHECK_H
#define SNAPFS_CHECK_H

#include <stdint.h>

#include "progress.h"
#include "repo.h"

struct check_opts {
	int read_data;
	/* read_data for a subset of the packs: slice (1..slices), or when
	 * slices is 0, a share in (0, 1] (0: all) */
	uint32_t slice, slices;
	double share;
	const char *series; /* only this series (NULL: all) */
	struct progress *progress;
	int repair;
	int64_t grace; /* seconds; at least lease_grace_min() */
	void (*report)(const char *msg, void *ctx);
	void (*note)(const char *msg, void *ctx); /* repair's steps */
	void *report_ctx;
};

struct check_result {
	uint64_t series, backups, trees, packs, blobs, bytes_read;
	uint64_t errors, unreferenced_packs;
	/* repair: objects and abandoned series deleted, leases that kept a
	 * series, stale leases removed */
	uint64_t removed_objects, removed_series, leased, stale_leases;
};

/* "N/M" (1 <= N <= M) or "P%" (0 < P <= 100) into o's subset fields;
 * SNAP_EINVAL otherwise. */
int check_parse_subset(const char *s, struct check_opts *o);

/* Returns 0 when no problem was found, SNAP_ECORRUPT when some were (each
 * reported), or another error when the check itself could not run. */
int check_run(struct repo *r, const struct check_opts *o,
	      struct check_result *res);

#endif
