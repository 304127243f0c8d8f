/*
 * repo.h - a repository: a store plus its config and keys.
 *
 * repo_open() reads PREFIX/snapfs.json, checks the format version (every
 * version up to FORMAT_VERSION is read), and
 * unlocks the keys: a key file's bytes are the master key (checked against
 * the config's key check); a passphrase runs scrypt to unwrap the random
 * master key stored in the config.  Wrong or missing keys fail here with
 * SNAP_EKEY and a message saying what to supply, before any data is read.
 *
 * The rest are the read primitives the engines and the mount share:
 * listing backups, resolving "SERIES[/N]" specs, loading manifests, and
 * fetching one blob by ref (a ranged read of its pack, authenticated).
 * All are thread-safe once the repo is open.
 */
#ifndef SNAPFS_REPO_H
#define SNAPFS_REPO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "chunker.h"
#include "crypto.h"
#include "keysrc.h"
#include "manifest.h"
#include "store.h"
#include "tree.h"

#define CONFIG_KEY "snapfs.json"

/* The repository format (snapfs.json "version") of new repositories, and
 * the newest this snapfs reads.  1: snapfs 0.1; 2: directory objects may
 * be version 2 (FIFOs and devices, tree.h).  See snapfs(5). */
#define FORMAT_VERSION 3 /* the newest read; see man/snapfs.5 VERSIONS */
#define FORMAT_INIT 2    /* what init writes: 3 only comes with key slots */

/* How to open (or create) a repository. */
struct open_opts {
	struct key_source key;  /* 16/24/32-byte key (keysrc.h) */
	struct key_source pass; /* first line is the passphrase */
	int no_encryption;         /* init only */
	int create_bucket;         /* init only: create bucket / container */
	struct store_opts store;   /* parallelism, rate caps, anonymous */
};

struct repo {
	struct store *st;
	struct keys keys;
	struct chunker chunker;
	char id[37];
	uint32_t pack_size;
	int format;           /* snapfs.json "version"; see repo_require_format() */
	pthread_mutex_t lock; /* format upgrades, config changes */
	/* What opened it (keyslot.h): the master key, which slot ("": the
	 * primary secret), and whether a passphrase did. */
	uint8_t master[32];
	size_t master_len;
	char slot[17];
	int opened_by_pass;
};

struct backup_id {
	char series[SERIES_MAX];
	uint32_t num;
};

/* Creates a repository at location.  Encrypted unless ko->no_encryption;
 * then a key file or password file is required.  A location that already
 * holds a repository is SNAP_EEXIST. */
int repo_init(const char *location, const struct open_opts *ko);

int repo_open(const char *location, const struct open_opts *ko,
	      struct repo **out);
void repo_close(struct repo *r);

/* Changes snapfs.json: reads it afresh (under r's lock; SNAP_ECORRUPT
 * when it is another repository's now), lets fn change it, and writes it
 * back in init's encoding unless fn returns 1 (nothing to write).  fn's
 * error is returned as it is. */
struct json_t;
int repo_update_config(struct repo *r,
		       int (*fn)(struct json_t *cfg, void *ctx), void *ctx);

/* Makes sure the repository's format is at least version before a writer
 * stores an object that needs it (a version-2 directory object), so that
 * an older snapfs refuses the repository with "format version N is not
 * supported" instead of calling the object corrupt.  An older repository
 * gets snapfs.json rewritten with the new version and nothing else changed;
 * *upgraded is then 1 (for the caller to say so).  Writers racing to do it
 * write the same bytes, and one that finds it done does nothing.
 * Thread-safe.  SNAP_EUNSUPP for a version above FORMAT_VERSION, or a
 * store error (the repository is then unchanged). */
int repo_require_format(struct repo *r, int version, int *upgraded);

/* Every backup in the repository, sorted by series id then number, but
 * for tombstoned series (tombstone.h).  *out is malloc'd. */
int repo_list(struct repo *r, struct backup_id **out, size_t *n);
/* The backups whose manifests are under prefix of store st, sorted,
 * tombstoned or not (for tools that work on objects without opening the
 * repository). */
int repo_store_list(struct store *st, const char *prefix,
		    struct backup_id **out, size_t *n);
/* Distinct series ids, sorted: those that name the first path component
 * after a prefix of a store's keys ("data/" finds data/<series>/...,
 * "tombstones/" tombstones/<series>).  series_set_list() adds a prefix's
 * (one listing); the set is sorted and without repeats after each call. */
struct series_set {
	char (*v)[SERIES_MAX];
	size_t n, cap;
};
int series_set_list(struct store *st, const char *prefix,
		    struct series_set *s);
int series_set_has(const struct series_set *s, const char *series);
void series_set_free(struct series_set *s);

/* Resolves a spec "SERIES[/N]"; *num is N, or 0 when no number was given.
 * SERIES is tried as, in this order:
 *   - a series id (LABEL-UUID): taken as is, without asking the store;
 *   - a label: its newest series (repo_newest_series()).  A label never
 *     resolves to another label's series: "zk1" is not "zk10-...";
 *   - a prefix of a series id that matches that one series only and
 *     includes at least 8 hex digits of its uuid ("zk1-3f2a9c1b").
 * Fails with SNAP_ENOENT "no series with label L" when nothing qualifies
 * (listing the series ids that start with L, if any), SNAP_EINVAL when the
 * prefix starts several series ids (listing them) or the spec is malformed. */
int repo_resolve(struct repo *r, const char *spec, char series[SERIES_MAX],
		 uint32_t *num);

/* Like repo_resolve() but fills in the latest number when none is given
 * and checks that the backup exists. */
int repo_resolve_backup(struct repo *r, const char *spec,
			char series[SERIES_MAX], uint32_t *num);

/* Newest series of a label (by creation of its first backup, which a
 * version-7 series id tells without a read: uuid_v7()); SNAP_ENOENT when
 * the label has none. */
int repo_newest_series(struct repo *r, const char *label,
		       char series[SERIES_MAX]);

/* Highest backup number of a series (0 and SNAP_ENOENT when none). */
int repo_latest_num(struct repo *r, const char *series, uint32_t *num);

int repo_load_manifest(struct repo *r, const char *series, uint32_t num,
		       struct manifest *m);

/* The manifest's JSON as stored, unparsed (at most MANIFEST_MAX bytes). */
int repo_manifest_text(struct repo *r, const char *series, uint32_t num,
		       struct buf *text);

/* Reads [off, off+len) of a pack of the series.  A missing or short pack
 * is SNAP_ECORRUPT naming it. */
int repo_read_pack(struct repo *r, const char *series,
		   const uint8_t pack[PACK_ID_LEN], uint64_t off, size_t len,
		   struct buf *out);

/* Fetches and authenticates one blob; out is resized to ref->raw bytes.
 * scratch is reused across calls by the same thread. */
int repo_read_blob(struct repo *r, const char *series, const struct ref *ref,
		   struct buf *out, struct buf *scratch);

/* Decodes already-fetched pack bytes holding the blob (for callers that
 * read several blobs with one ranged request). */
int repo_decode_blob(struct repo *r, const char *series,
		     const struct ref *ref, const uint8_t *enc, uint8_t *out,
		     struct buf *scratch);

/* Decodes a directory object from already-fetched pack bytes. */
int repo_decode_tree(struct repo *r, const char *series,
		     const struct ref *ref, const uint8_t *enc, struct tree *t);

/* Buffers a thread reuses across repo_read_blobs() calls. */
struct blob_bufs {
	struct buf enc, raw, scratch;
};

void blob_bufs_free(struct blob_bufs *b);

/* Called with the plaintext of blob i; non-zero stops the read and is
 * returned. */
typedef int (*blob_fn)(void *ctx, size_t i, const uint8_t *raw, size_t len);

/* Fetches n blobs with as few ranged reads as their layout allows: in
 * pack order, one read spanning neighbours and the small gaps between them
 * (cheaper to read than to ask for twice), at most 16 MiB per read.  Each
 * blob is authenticated and handed to fn, in pack order rather than the
 * given one.  The first failure ends the call. */
int repo_read_blobs(struct repo *r, const char *series,
		    const struct ref *const *refs, size_t n, blob_fn fn,
		    void *ctx, struct blob_bufs *b);

/* Fetches and decodes a directory object. */
int repo_read_tree(struct repo *r, const char *series, const struct ref *ref,
		   struct tree *t);

/* Reads the first line of a password file / a key file (for the CLI). */

#endif
