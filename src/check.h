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
	void (*report)(const char *msg, void *ctx);
	void *report_ctx;
};

struct check_result {
	uint64_t series, backups, trees, packs, blobs, bytes_read;
	uint64_t errors, unreferenced_packs;
};

/* "N/M" (1 <= N <= M) or "P%" (0 < P <= 100) into o's subset fields;
 * SNAP_EINVAL otherwise. */
int check_parse_subset(const char *s, struct check_opts *o);

/* Returns 0 when no problem was found, SNAP_ECORRUPT when some were (each
 * reported), or another error when the check itself could not run. */
int check_run(struct repo *r, const struct check_opts *o,
	      struct check_result *res);

#endif
