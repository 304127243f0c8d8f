/*
 * commit.h - a label's writable tree (overlay.h) made into its next
 * backup: the overlay as a source of the backup engine's session
 * (backup.h).
 *
 * The walk starts at the label directory and descends only into staged
 * directories: an unchanged group is taken whole, an unchanged directory
 * by its directory object, an unchanged file by its chunk list, all unread;
 * staged files are read from the stage.  The cost is that of the changed
 * directories and the changed bytes.  Two cases walk more: a new series
 * (full: references cannot cross series, so every base file is read again
 * from the base series and stored anew), and a group where a hardlinked
 * base file was changed (every name of it must get the new content, and
 * names are found by walking the group).
 *
 * Entries written from the stage carry their mount inode number with
 * bit 63 set, so the next mount's numbers match; new hardlinks get ids
 * above the group's recorded hardlink_next.
 *
 * The caller holds the overlay's gate closed (no change can happen
 * meanwhile); readers go on.  On failure nothing is committed and the
 * message says why; packs already uploaded were reported to on_pack.
 */
#ifndef SNAPFS_COMMIT_H
#define SNAPFS_COMMIT_H

#include "backup.h"
#include "overlay.h"

struct commit_opts {
	const char *label;
	int full;
	/* The series the backup continues ("": the label's newest, or a new
	 * series when it has none) and its backup. */
	const char *series;
	uint32_t num;
	const char *token; /* recorded in the manifest */
	int next_on_conflict; /* see bsession_opts */
	const char *new_series; /* see bsession_opts */
	const struct full_policy *full_policy; /* see bsession_opts */
	struct index *index;  /* see bsession_opts */
	/* A session opened already (the one files streamed into,
	 * ovl_stream_take()); commit_tree frees it.  NULL: it opens one. */
	struct bsession *session;
	/* The series of the stage's stored chunks (ovl_stream_series()): a
	 * backup of another series reads them back from it. */
	const char *stream_series;
	int threads, uploads;
	void (*warn)(const char *msg, void *ctx);
	void *warn_ctx;
	void (*on_pack)(void *ctx, const uint8_t id[PACK_ID_LEN],
			uint64_t size);
	void *pack_ctx;
};

int commit_tree(struct ovl *o, struct repo *r, struct cache *c,
		const struct commit_opts *co, struct backup_result *res);

#endif
