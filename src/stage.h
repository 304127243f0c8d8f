/*
 * stage.h - the persistent stage of one label of the mount's control/
 * directory: what has been changed since its base backup, kept so that it
 * survives a killed daemon or a reboot.
 *
 * A stage is a directory (stage_dir, one per label) holding stage.db, an
 * SQLite database in WAL mode, and data/<ino>, the local copies of files
 * whose content changed.  The database holds:
 *   - meta: base backup, flags (full, empty), the commit token, state,
 *     counters;
 *   - inodes: every entry that differs from the base, keyed by its mount
 *     inode number, with its metadata and where its content comes from
 *     (its base entry, or data/<ino>);
 *   - dirents: (directory, name) -> inode, or a whiteout hiding a base
 *     entry; a directory's listing is its base directory object merged
 *     with its dirents;
 *   - xattrs of inodes whose attributes changed;
 *   - packs uploaded by commit attempts (so abort can delete them), and
 *     the paths dropped by crash recovery (for status);
 *   - srefs: chunks of files streamed into the store while they were
 *     written (overlay_stream.c), each (inode, offset) -> its ref.  Their
 *     bytes are no longer in data/<ino> (punched out), and the inode's
 *     srefs column bounds them (the end of the last one; 0: none).  They
 *     lie in the packs of meta's stream_series, uploaded before they
 *     were recorded.
 * Every change the overlay makes is one transaction (stage_begin ..
 * stage_end), or one step of a batch of them (below), written to the WAL
 * before the operation that needs it is answered: a file's close, an
 * fsync, any change to a data file that a committed row trusts, and the
 * commit protocol's steps; the rest within a batch's age (overlay.h).  The WAL is synced by stage_sync()
 * (the overlay calls it every few seconds and at commit), so after a
 * power loss the stage is what it was at the last sync, never torn.
 *
 * Content durability: an inode's wstate says whether data/<ino> can be
 * trusted after a crash: WS_CLEAN (closed and synced, or fsynced),
 * WS_WRITING (open for writing and written since), WS_UNSYNCED (closed,
 * not yet synced: good after kill -9, not after a reboot).  stage_open()
 * of a stage left by a crash reverts every inode that cannot be trusted
 * to its base version (or removes it when it is new) and lists the paths
 * in the dropped table: a file is never a mix of old and new bytes.
 *
 * Locking: stage_open() takes an exclusive flock on stage_dir/lock; a
 * second process gets SNAP_EACCES ("in use by pid N").  Calls are not
 * thread-safe: the caller (overlay.c) serialises them with its label lock.
 * Failures are SNAP_EIO (SQLite or file errors, with the message), or
 * SNAP_ENOSPC when the disk is full; a failed transaction is rolled back.
 */
#ifndef SNAPFS_STAGE_H
#define SNAPFS_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "pack.h"
#include "tree.h"

struct stage;

enum wstate { WS_CLEAN = 0, WS_WRITING = 1, WS_UNSYNCED = 2 };

/* Where an inode's base side comes from.  A directory's base entries are
 * the directory object btree (B_TREE), the groups of the base manifest
 * (B_GROUPS: the label directory), or nothing (B_NONE: a new directory).
 * A non-directory copied up from the base keeps its base entry's location
 * (otree, oname) for its content and attributes. */
enum base_kind { B_NONE = 0, B_TREE = 1, B_GROUPS = 2 };

struct sinode {
	uint64_t ino;
	uint8_t type; /* ET_* */
	uint32_t mode, uid, gid;
	int64_t mtime_ns, ctime_ns;
	uint64_t size;
	uint32_t rdev_major, rdev_minor;
	uint32_t nlink;
	char *target;     /* ET_LNK, malloc'd */
	uint8_t bkind;    /* enum base_kind (directories) */
	struct ref btree; /* B_TREE */
	uint8_t has_orig; /* copied up from a base entry */
	struct ref otree; /* the directory object holding it */
	char *oname;      /* its name there, malloc'd */
	/* the base entry's metadata, which crash recovery puts back */
	uint32_t o_mode, o_uid, o_gid;
	int64_t o_mtime_ns, o_ctime_ns;
	uint64_t o_size;
	uint64_t bgroup, bhl; /* a base hardlink: group root inode, id */
	uint8_t data;     /* content is data/<ino> */
	uint8_t own_xattrs; /* attributes are in the stage, not the base */
	uint8_t wstate;
	uint64_t srefs;   /* stored chunks end at or before this (0: none) */
};

/* The stage's header.  Strings are NUL-terminated. */
struct stage_meta {
	char repo_id[37];
	char key_check[65]; /* hex of the repository's key check */
	char base_series[SERIES_MAX]; /* "" when the label has no backup */
	uint32_t base_num;
	int full, empty;
	char token[33]; /* the commit token, recorded in the manifest */
	char state[32]; /* STATUS_* of the last operation */
	char last_error[512];
	int committing; /* a commit started and has not ended */
	uint64_t next_ino;
	uint64_t staged_files, staged_bytes;
	/* The series the stored chunks of streamed files are in ("": none
	 * yet): the next backup must be of it to take them as they are. */
	char stream_series[SERIES_MAX];
};

/* What stage_open() found. */
struct stage_found {
	int created; /* a new, empty stage */
	int recovered; /* the last daemon did not close it */
	uint64_t dropped; /* inodes reverted by recovery */
};

/* Opens (creating when absent) the stage in dir.  *found says whether it
 * is new or was left by a crash; recovery has run when this returns.
 * SNAP_EACCES when another process holds it.  dir NULL: an empty stage in
 * memory with no data files (for a label that takes no changes). */
int stage_open(const char *dir, struct stage **out, struct stage_found *found);
/* Syncs and closes; the stage stays on disk. */
void stage_close(struct stage *s);
/* Removes a closed stage's directory and everything in it. */
int stage_remove(const char *dir);

const char *stage_dir(const struct stage *s);

int stage_get_meta(struct stage *s, struct stage_meta *m);
int stage_put_meta(struct stage *s, const struct stage_meta *m);
/* Just meta's next_ino (kept cheap: it is reserved ahead in blocks). */
int stage_set_next_ino(struct stage *s, uint64_t next);

/* Transactions: everything between begin and end is atomic; end(s, rc)
 * commits when rc == 0, else rolls back; it returns rc, or the commit's
 * failure.  stage_rollbacks() counts the transactions rolled back.
 *
 * Batching (stage_batch(), the overlay's): an outermost end() keeps
 * the transaction open instead, its changes visible to every later call
 * (each call is a savepoint of it: a failed one rolls back alone), and
 * stage_commit() commits the whole batch.  A batch is committed at once
 * where a call needs it: stage_durable() inside a call, or
 * stage_must_commit() (inside: the same; outside: commit now); the stage
 * does so itself before it changes data files that committed rows may
 * trust (stage_data_open for writing, except O_CREAT | O_TRUNC;
 * stage_data_unlink), before recording stored chunks (their bytes are
 * punched next), packs and meta, and in sync, flush_log, clear and close.
 * Everything else waits for the batcher's stage_commit(): a killed daemon
 * loses the calls since, never a part of one.  A commit that fails rolls
 * the batch back; stage_lost() counts such losses (the caller's copies
 * of what the batch held are stale then). */
int stage_begin(struct stage *s);
int stage_end(struct stage *s, int rc);
uint64_t stage_rollbacks(const struct stage *s);
void stage_batch(struct stage *s);
int stage_commit(struct stage *s);
void stage_durable(struct stage *s);
int stage_must_commit(struct stage *s);
/* mono_sec() when the open batch began; 0 when none is open. */
double stage_batch_since(const struct stage *s);
uint64_t stage_lost(const struct stage *s);

/* Inodes.  get fills *in (free with sinode_free); SNAP_ENOENT when the
 * inode is not staged. */
int stage_inode_get(struct stage *s, uint64_t ino, struct sinode *in);
int stage_inode_put(struct stage *s, const struct sinode *in);
/* Deletes the inode and its attributes (not its names or data). */
int stage_inode_del(struct stage *s, uint64_t ino);
void sinode_free(struct sinode *in);
/* Calls fn for every staged inode (for recovery, hardlinks, counting). */
int stage_inode_each(struct stage *s, int (*fn)(void *ctx,
						 const struct sinode *in),
		     void *ctx);

/* Directory entries.  get: 0 with *ino (0 = a whiteout) or SNAP_ENOENT
 * when the name is not staged in dir. */
int stage_dirent_get(struct stage *s, uint64_t dir, const char *name,
		     uint64_t *ino);
int stage_dirent_put(struct stage *s, uint64_t dir, const char *name,
		     uint64_t ino);
int stage_dirent_del(struct stage *s, uint64_t dir, const char *name);
/* Every staged entry of dir, sorted bytewise by name. */
int stage_dirent_each(struct stage *s, uint64_t dir,
		      int (*fn)(void *ctx, const char *name, uint64_t ino),
		      void *ctx);
/* The directory and name of a staged entry pointing at ino (the first,
 * for hardlinks); SNAP_ENOENT when none.  name is malloc'd. */
int stage_dirent_of(struct stage *s, uint64_t ino, uint64_t *dir,
		    char **name);
int stage_dirent_clear(struct stage *s, uint64_t dir);

/* Extended attributes of inodes with own_xattrs. */
int stage_xattr_get(struct stage *s, uint64_t ino, const char *name,
		    struct buf *val);
int stage_xattr_set(struct stage *s, uint64_t ino, const char *name,
		    const void *val, size_t len);
int stage_xattr_del(struct stage *s, uint64_t ino, const char *name);
int stage_xattr_clear(struct stage *s, uint64_t ino);
int stage_xattr_each(struct stage *s, uint64_t ino,
		     int (*fn)(void *ctx, const char *name, const void *val,
			       size_t len),
		     void *ctx);

/* data/<ino>: open with open(2) flags (O_CREAT makes it), unlink. */
int stage_data_open(struct stage *s, uint64_t ino, int flags, int *fd);
int stage_data_unlink(struct stage *s, uint64_t ino);
/* The bytes all data files occupy on disk (a walk of data/). */
int stage_data_usage(struct stage *s, uint64_t *bytes);
/* The 512-byte blocks data/<ino> occupies (its holes stay holes). */
int stage_data_blocks(struct stage *s, uint64_t ino, uint64_t *blocks);

/* Stored chunks of a streamed file (they go with the inode, in recovery
 * and at clear).  add also raises the inode's srefs.  range: the chunks
 * overlapping [off, end), in order, malloc'd into *v; maxlen is the
 * largest a chunk can be (the scan starts that far before off). */
int stage_sref_add(struct stage *s, uint64_t ino, const struct chunk *c);
int stage_sref_range(struct stage *s, uint64_t ino, uint64_t off,
		     uint64_t end, size_t maxlen, struct chunk **v, size_t *n);
int stage_sref_del(struct stage *s, uint64_t ino, uint64_t off);
int stage_sref_clear(struct stage *s, uint64_t ino);

/* Packs uploaded by commit attempts of this stage. */
int stage_pack_add(struct stage *s, const uint8_t id[PACK_ID_LEN]);
int stage_pack_each(struct stage *s,
		    int (*fn)(void *ctx, const uint8_t id[PACK_ID_LEN]),
		    void *ctx);

/* Paths reverted by crash recovery (kept until the next clear). */
int stage_dropped_each(struct stage *s,
		       int (*fn)(void *ctx, const char *path), void *ctx);

/* Makes everything so far durable: syncs the data files and the
 * database, then marks WS_UNSYNCED inodes clean. */
int stage_sync(struct stage *s);
/* Makes the transactions so far durable (an fsync of the log only). */
int stage_flush_log(struct stage *s);

/* Empties the stage (after a commit landed, or on abort): inodes, dirents,
 * xattrs, packs, dropped paths and data files.  meta is kept. */
int stage_clear(struct stage *s);

/* The stage keeps a little space in reserve, so that the transactions
 * that free space work on a full disk: a write that failed with ENOSPC
 * (and a transaction that did) releases it.  stage_reserve() takes it
 * again if it can, and answers whether n bytes of file data may be
 * written: SNAP_ENOSPC when the reserve cannot be had or the disk would
 * keep less than 16 MiB free, the database's room.  A batch that SQLite
 * cannot commit is lost whole (SQLite rolls it back after SQLITE_FULL),
 * and with it calls that had already succeeded; so short of room the
 * stage goes tight: it commits the open batch now and every call after
 * it on its own (stage_tight()), until twice the room is free again. */
void stage_reserve_free(struct stage *s);
int stage_reserve(struct stage *s, uint64_t n);
void stage_tight(struct stage *s);

/* The free space of the stage's filesystem (for statfs). */
int stage_statfs(struct stage *s, uint64_t *bsize, uint64_t *blocks,
		 uint64_t *bfree, uint64_t *bavail);

#endif
