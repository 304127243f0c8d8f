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

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manifest.h"
#include "progress.h"
#include "repo.h"
#include "retention.h"

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
	/* Called for each skipped or changed entry (may be NULL); a
	 * skipped socket is reported too but not counted in warnings. */
	void (*warn)(const char *msg, void *ctx);
	void *warn_ctx;
	/* Called (with warn_ctx) for news that is no warning: the
	 * repository's format was upgraded (may be NULL). */
	void (*info)(const char *msg, void *ctx);
	/* What directory sources leave out (exclude.h; may be NULL);
	 * recorded in the manifest.  Archive sources take none. */
	const struct excl *excl;
	/* When to start a new series instead of continuing (may be NULL). */
	const struct full_policy *full_policy;
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

/*
 * Sessions: the same engine for sources that are not a directory walk
 * (the mount's control/ tree).  A session chooses the series and number
 * at open, is fed a tree directory by directory, and writes the manifest
 * at commit.  Entries of a directory are added in name order.  What is
 * unchanged is added by reference: a file by its chunk list, a directory
 * by its subtree's directory object, a group whole; nothing of it is
 * read, so a commit costs what changed.  References must point into the
 * session's series (its parent's backups), so a new series (full) gets
 * every file's bytes.
 *
 * Feeding may happen from one thread at a time.  Failures: the first
 * error sticks (later calls return it), commit fails with it and writes no
 * manifest; packs already uploaded were reported to on_pack.
 */
struct bsession;
struct bdir;
struct index;

struct bsession_opts {
	const char *label;
	int full;                /* start a new series */
	/* Incremental on this backup; NULL: on the label's newest.  The
	 * new backup is its number + 1 (a create-only put: somebody else
	 * having made that number is SNAP_EEXIST at commit, unless
	 * next_on_conflict: then it takes the next free number, its parent
	 * still the base). */
	const char *base_series;
	uint32_t base_num;
	int next_on_conflict;
	/* The name a new series gets (NULL or "": "<label>-<uuid>"). */
	const char *new_series;
	/* A base (given or the newest) that policy finds due is not
	 * continued: the session starts a new series (may be NULL). */
	const struct full_policy *full_policy;
	/* base_series' index, loaded already (ixkeep.h): the session uses it
	 * and adds what it stores; the caller keeps it.  NULL: loaded at
	 * open. */
	struct index *index;
	size_t max_groups;       /* groups the backup may have */
	const char *token;       /* recorded as stage_token (or NULL) */
	uint64_t ino_next;       /* recorded (or 0) */
	int threads, uploads;
	void (*warn)(const char *msg, void *ctx);
	void *warn_ctx;
	void (*info)(const char *msg, void *ctx); /* as in backup_opts */
	/* Called for each pack uploaded (from upload threads). */
	void (*on_pack)(void *ctx, const uint8_t id[PACK_ID_LEN],
			uint64_t size);
	void *pack_ctx;
};

int bsession_open(struct repo *r, const struct bsession_opts *o,
		  struct bsession **out);
/* The parent backup's manifest; NULL when the session starts a series. */
const struct manifest *bsession_parent(const struct bsession *s);
const char *bsession_series(const struct bsession *s);
uint32_t bsession_num(const struct bsession *s);

/* A group: its directory's metadata comes from g (name, mode, uid, gid,
 * mtime_ns, hardlink_next); root receives its entries until
 * bdir_close(). */
int bsession_group(struct bsession *s, const struct mgroup *g,
		   struct bdir **root);
/* A group taken whole: g's root, counts and metadata, unread. */
int bsession_group_ref(struct bsession *s, const struct mgroup *g);

/* A finished entry (copied): a symlink or special file, a file by its
 * chunk list, a directory by its subtree (e->sub, sub_files, sub_bytes). */
int bdir_add(struct bsession *s, struct bdir *d, const struct tent *e);
/* A directory to be filled: *child until bdir_close(). */
int bdir_add_dir(struct bsession *s, struct bdir *d, const struct tent *meta,
		 struct bdir **child);
/* A file read now from fd (holes kept), named path in messages. */
int bdir_add_fd(struct bsession *s, struct bdir *d, const struct tent *meta,
		int fd, const char *path);
/* A file made of the segments that next() yields, the first at or after
 * off (1; 0 when none is left): [start, end) of data read now through rd
 * and chunked, or with ref set, one chunk of the session's series stored
 * already (end = start + ref->raw), taken as it is.  What lies between
 * segments is a hole. */
struct bseg {
	uint64_t start, end;
	const struct ref *ref;
};
typedef int (*src_segment)(void *src, uint64_t off, struct bseg *seg);
int bdir_add_read(struct bsession *s, struct bdir *d,
		  const struct tent *meta, src_segment next,
		  ssize_t (*rd)(void *src, uint8_t *buf, size_t n, uint64_t off),
		  void *src);
/* No more entries for d (a group root too). */
void bdir_close(struct bsession *s, struct bdir *d);

/* Streaming (overlay_stream.c): a session opened before its tree is
 * known stores chunks as files are written, from any thread.
 * store_async: one data chunk, deduplicated, on the session's workers
 * (p is copied; a full queue makes the caller wait); *r says where it
 * is once bstore_wait(w) returned 0 (else the first failure, its message
 * the waiting thread's snap_errmsg() then).  A wait is
 * initialised before its first store and waited for before it goes.
 * durable: whether a pack that a store named has been uploaded (chunks
 * of packs still being filled or uploaded are not to be relied on yet).
 * error: the session's sticky error (0 while it works).  prepare: what
 * the commit brings, before its first group (token and ino_next as in
 * bsession_opts). */
int bsession_durable(struct bsession *s, const uint8_t pack[PACK_ID_LEN]);
struct bstore_wait {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int pending, rc;
	char msg[256]; /* the first failure's, from its worker */
};
void bstore_wait_init(struct bstore_wait *w);
int bsession_store_async(struct bsession *s, const uint8_t *p, size_t n,
			 struct ref *r, struct bstore_wait *w);
int bstore_wait(struct bstore_wait *w);
int bsession_error(struct bsession *s);
int bsession_prepare(struct bsession *s, const char *token,
		     uint64_t ino_next, size_t max_groups);

/* Waits for everything, writes the manifest; res as for backup_run. */
int bsession_commit(struct bsession *s, struct backup_result *res);
/* Frees the session (after commit, or instead of it: then nothing is
 * committed). */
void bsession_free(struct bsession *s);

#endif
