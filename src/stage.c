/* stage.c - the persistent stage of a control label; see stage.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "stage.h"

/* 2: stored chunks of streamed files (the sref table, inode.srefs). */
#define SCHEMA_VERSION 2

enum {
	Q_INODE_GET,
	Q_INODE_PUT,
	Q_INODE_DEL,
	Q_INODE_ALL,
	Q_DIRENT_GET,
	Q_DIRENT_PUT,
	Q_DIRENT_DEL,
	Q_DIRENT_LIST,
	Q_DIRENT_OF,
	Q_DIRENT_CLEAR,
	Q_XATTR_GET,
	Q_XATTR_SET,
	Q_XATTR_DEL,
	Q_XATTR_LIST,
	Q_XATTR_CLEAR,
	Q_META_GET,
	Q_META_PUT,
	Q_PACK_ADD,
	Q_PACK_LIST,
	Q_DROPPED_ADD,
	Q_DROPPED_LIST,
	Q_SREF_ADD,
	Q_SREF_RANGE,
	Q_SREF_DEL,
	Q_SREF_CLEAR,
	Q_SREF_END,
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_SAVEPOINT,
	Q_RELEASE,
	Q_ROLLBACK_TO,
	NQ
};

static const char *const sql[NQ] = {
	[Q_INODE_GET] = "SELECT type, mode, uid, gid, mtime, ctime, size, "
			"rdev_major, rdev_minor, nlink, target, bkind, btree, "
			"has_orig, otree, oname, o_mode, o_uid, o_gid, o_mtime, "
			"o_ctime, o_size, bgroup, bhl, data, own_xattrs, wstate, "
			"ino, srefs FROM inode WHERE ino = ?1",
	[Q_INODE_PUT] = "INSERT OR REPLACE INTO inode (ino, type, mode, uid, "
			"gid, mtime, ctime, size, rdev_major, rdev_minor, nlink, "
			"target, bkind, btree, has_orig, otree, oname, o_mode, "
			"o_uid, o_gid, o_mtime, o_ctime, o_size, bgroup, bhl, "
			"data, own_xattrs, wstate, srefs) VALUES (?1, ?2, ?3, ?4, "
			"?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
			"?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, "
			"?28, ?29)",
	[Q_INODE_DEL] = "DELETE FROM inode WHERE ino = ?1",
	[Q_INODE_ALL] = "SELECT type, mode, uid, gid, mtime, ctime, size, "
			"rdev_major, rdev_minor, nlink, target, bkind, btree, "
			"has_orig, otree, oname, o_mode, o_uid, o_gid, o_mtime, "
			"o_ctime, o_size, bgroup, bhl, data, own_xattrs, wstate, "
			"ino, srefs FROM inode ORDER BY ino",
	[Q_DIRENT_GET] = "SELECT ino FROM dirent WHERE dir = ?1 AND name = ?2",
	[Q_DIRENT_PUT] = "INSERT OR REPLACE INTO dirent (dir, name, ino) "
			 "VALUES (?1, ?2, ?3)",
	[Q_DIRENT_DEL] = "DELETE FROM dirent WHERE dir = ?1 AND name = ?2",
	[Q_DIRENT_LIST] = "SELECT name, ino FROM dirent WHERE dir = ?1 "
			  "ORDER BY name",
	[Q_DIRENT_OF] = "SELECT dir, name FROM dirent WHERE ino = ?1 LIMIT 1",
	[Q_DIRENT_CLEAR] = "DELETE FROM dirent WHERE dir = ?1",
	[Q_XATTR_GET] = "SELECT value FROM xattr WHERE ino = ?1 AND name = ?2",
	[Q_XATTR_SET] = "INSERT OR REPLACE INTO xattr (ino, name, value) "
			"VALUES (?1, ?2, ?3)",
	[Q_XATTR_DEL] = "DELETE FROM xattr WHERE ino = ?1 AND name = ?2",
	[Q_XATTR_LIST] = "SELECT name, value FROM xattr WHERE ino = ?1 "
			 "ORDER BY name",
	[Q_XATTR_CLEAR] = "DELETE FROM xattr WHERE ino = ?1",
	[Q_META_GET] = "SELECT v FROM meta WHERE k = ?1",
	[Q_META_PUT] = "INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)",
	[Q_PACK_ADD] = "INSERT OR IGNORE INTO pack (id) VALUES (?1)",
	[Q_PACK_LIST] = "SELECT id FROM pack",
	[Q_DROPPED_ADD] = "INSERT INTO dropped (path) VALUES (?1)",
	[Q_DROPPED_LIST] = "SELECT path FROM dropped ORDER BY rowid",
	[Q_SREF_ADD] = "INSERT OR REPLACE INTO sref (ino, off, ref) "
		       "VALUES (?1, ?2, ?3)",
	/* ?2: where the chunks may start (the range's start less the
	 * largest chunk), so the scan is bounded by the range. */
	[Q_SREF_RANGE] = "SELECT off, ref FROM sref WHERE ino = ?1 AND "
			 "off >= ?2 AND off < ?3 ORDER BY off",
	[Q_SREF_DEL] = "DELETE FROM sref WHERE ino = ?1 AND off = ?2",
	[Q_SREF_CLEAR] = "DELETE FROM sref WHERE ino = ?1",
	[Q_SREF_END] = "UPDATE inode SET srefs = max(srefs, ?2) WHERE ino = ?1",
	/* Prepared once: every change is a transaction of its own, or a
	 * savepoint of the batch (stage_batch). */
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_SAVEPOINT] = "SAVEPOINT op",
	[Q_RELEASE] = "RELEASE op",
	[Q_ROLLBACK_TO] = "ROLLBACK TO op",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v);"
	"CREATE TABLE IF NOT EXISTS inode ("
	" ino INTEGER PRIMARY KEY, type INTEGER, mode INTEGER, uid INTEGER,"
	" gid INTEGER, mtime INTEGER, ctime INTEGER, size INTEGER,"
	" rdev_major INTEGER, rdev_minor INTEGER, nlink INTEGER, target BLOB,"
	" bkind INTEGER, btree BLOB, has_orig INTEGER, otree BLOB, oname BLOB,"
	" o_mode INTEGER, o_uid INTEGER, o_gid INTEGER, o_mtime INTEGER,"
	" o_ctime INTEGER, o_size INTEGER, bgroup INTEGER, bhl INTEGER,"
	" data INTEGER, own_xattrs INTEGER, wstate INTEGER,"
	" srefs INTEGER DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS dirent (dir INTEGER, name BLOB,"
	" ino INTEGER, PRIMARY KEY (dir, name)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS xattr (ino INTEGER, name TEXT, value BLOB,"
	" PRIMARY KEY (ino, name)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS pack (id BLOB PRIMARY KEY);"
	"CREATE TABLE IF NOT EXISTS dropped (path TEXT);"
	"CREATE TABLE IF NOT EXISTS sref (ino INTEGER, off INTEGER, ref BLOB,"
	" PRIMARY KEY (ino, off)) WITHOUT ROWID;";

struct stage {
	char *dir;
	sqlite3 *db;
	sqlite3_stmt *q[NQ];
	int lockfd, datafd;
	int depth; /* stage_begin nesting */
	int reserved; /* the reserve file is in place */
	uint64_t rollbacks;
	/* Batching (stage_batch): a transaction left open across calls,
	 * since when, how many calls it holds; the current call must be
	 * committed at its end. */
	int batching, open, durable;
	int tight; /* the disk is nearly full: every call commits */
	unsigned ops;
	double opened_at;
	uint64_t lost;
};

/* A batch is committed at this many calls even before it is due: its
 * pages stay in SQLite's cache until then. */
#define BATCH_OPS 512

/* Room kept for the transactions that free space (an unlink after a
 * write found the disk full): SQLite needs some to write its log. */
#define RESERVE (2u << 20)

static void reserve_make(struct stage *s)
{
	char path[4200];
	int fd;

	if (s->datafd < 0 || s->reserved)
		return;
	snprintf(path, sizeof(path), "%s/reserve", s->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (posix_fallocate(fd, 0, RESERVE) == 0)
		s->reserved = 1;
	else
		unlink(path);
	close(fd);
}

void stage_reserve_free(struct stage *s)
{
	char path[4200];

	if (s->datafd < 0)
		return;
	snprintf(path, sizeof(path), "%s/reserve", s->dir);
	unlink(path);
	s->reserved = 0;
}

/* Room the data files leave free for the database: more than the writes
 * in flight at once can take (the kernel sends up to 12 of 1 MiB) between
 * a check and the database's next commit. */
#define HEADROOM (16u << 20)

static uint64_t avail(struct stage *s)
{
	uint64_t bsize, blocks, bfree, bavail;

	if (stage_statfs(s, &bsize, &blocks, &bfree, &bavail))
		return UINT64_MAX; /* nothing to measure: no limit */
	return bavail * bsize;
}

/* SQLite found the disk full: it may have rolled the batch back. */
static void db_full(struct stage *s)
{
	stage_reserve_free(s);
	s->tight = 1;
}

void stage_tight(struct stage *s)
{
	s->tight = 1;
	(void)stage_must_commit(s); /* a failure shows at the next call */
}

int stage_reserve(struct stage *s, uint64_t n)
{
	uint64_t a = avail(s);

	reserve_make(s);
	if (s->datafd >= 0 && (!s->reserved || a < n + HEADROOM)) {
		stage_tight(s);
		return snap_seterr(SNAP_ENOSPC, "stage %s: disk full", s->dir);
	}
	if (s->tight && a >= 2 * (n + HEADROOM))
		s->tight = 0;
	return 0;
}

static int dberr(struct stage *s, const char *what)
{
	int code = sqlite3_errcode(s->db);

	if (code == SQLITE_FULL) {
		db_full(s);
		return snap_seterr(SNAP_ENOSPC, "stage %s: %s: disk full",
				   s->dir, what);
	}
	return snap_seterr(SNAP_EIO, "stage %s: %s: %s", s->dir, what,
			   sqlite3_errmsg(s->db));
}

static int exec(struct stage *s, const char *text)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, text, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		if (rc == SQLITE_FULL)
			db_full(s);
		rc = rc == SQLITE_FULL
			     ? snap_seterr(SNAP_ENOSPC, "stage %s: disk full",
					   s->dir)
			     : snap_seterr(SNAP_EIO, "stage %s: %s", s->dir,
					   msg ? msg : "database error");
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

/* The statement for query i, reset and ready to bind. */
static sqlite3_stmt *q(struct stage *s, int i)
{
	sqlite3_reset(s->q[i]);
	sqlite3_clear_bindings(s->q[i]);
	return s->q[i];
}

/* Runs a statement that returns no rows. */
static int run(struct stage *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : dberr(s, what);
}

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
	sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
	return (uint64_t)sqlite3_column_int64(st, i);
}

/* A ref as 60 bytes: id, pack, then off, len, raw little-endian. */
static void ref_pack(const struct ref *r, uint8_t out[60])
{
	memcpy(out, r->id, ID_LEN);
	memcpy(out + ID_LEN, r->pack, PACK_ID_LEN);
	put_u32le(out + 48, r->off);
	put_u32le(out + 52, r->len);
	put_u32le(out + 56, r->raw);
}

static int ref_unpack(sqlite3_stmt *st, int i, struct ref *r)
{
	const uint8_t *p = sqlite3_column_blob(st, i);

	memset(r, 0, sizeof(*r));
	if (!p)
		return 0;
	if (sqlite3_column_bytes(st, i) != 60)
		return -1;
	memcpy(r->id, p, ID_LEN);
	memcpy(r->pack, p + ID_LEN, PACK_ID_LEN);
	r->off = get_u32le(p + 48);
	r->len = get_u32le(p + 52);
	r->raw = get_u32le(p + 56);
	return 0;
}

static char *col_str(sqlite3_stmt *st, int i)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	char *s;

	if (!p)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s) {
		memcpy(s, p, (size_t)n);
		s[n] = 0;
	}
	return s;
}

/* ---- meta ------------------------------------------------------------- */

static int meta_text(struct stage *s, const char *k, char *out, size_t n)
{
	sqlite3_stmt *st = q(s, Q_META_GET);
	const unsigned char *v;
	int rc;

	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	out[0] = 0;
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_text(st, 0);
		snprintf(out, n, "%s", v ? (const char *)v : "");
	} else if (rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return dberr(s, "reading meta");
	}
	sqlite3_reset(st);
	return 0;
}

static int meta_u64(struct stage *s, const char *k, uint64_t *v)
{
	char text[32];

	SNAP_TRY(meta_text(s, k, text, sizeof(text)));
	*v = strtoull(text, NULL, 10);
	return 0;
}

static int meta_set(struct stage *s, const char *k, const char *v)
{
	sqlite3_stmt *st = q(s, Q_META_PUT);

	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
	return run(s, st, "writing meta");
}

static int meta_set_u64(struct stage *s, const char *k, uint64_t v)
{
	char text[32];

	snprintf(text, sizeof(text), "%" PRIu64, v);
	return meta_set(s, k, text);
}

int stage_get_meta(struct stage *s, struct stage_meta *m)
{
	uint64_t v;

	memset(m, 0, sizeof(*m));
	SNAP_TRY(meta_text(s, "repo_id", m->repo_id, sizeof(m->repo_id)));
	SNAP_TRY(meta_text(s, "key_check", m->key_check,
			   sizeof(m->key_check)));
	SNAP_TRY(meta_text(s, "base_series", m->base_series,
			   sizeof(m->base_series)));
	SNAP_TRY(meta_u64(s, "base_num", &v));
	m->base_num = (uint32_t)v;
	SNAP_TRY(meta_u64(s, "full", &v));
	m->full = v != 0;
	SNAP_TRY(meta_u64(s, "empty", &v));
	m->empty = v != 0;
	SNAP_TRY(meta_text(s, "token", m->token, sizeof(m->token)));
	SNAP_TRY(meta_text(s, "state", m->state, sizeof(m->state)));
	SNAP_TRY(meta_text(s, "last_error", m->last_error,
			   sizeof(m->last_error)));
	SNAP_TRY(meta_u64(s, "committing", &v));
	m->committing = v != 0;
	SNAP_TRY(meta_u64(s, "next_ino", &m->next_ino));
	SNAP_TRY(meta_u64(s, "staged_files", &m->staged_files));
	SNAP_TRY(meta_text(s, "stream_series", m->stream_series,
			   sizeof(m->stream_series)));
	return meta_u64(s, "staged_bytes", &m->staged_bytes);
}

int stage_set_next_ino(struct stage *s, uint64_t next)
{
	return meta_set_u64(s, "next_ino", next);
}

int stage_put_meta(struct stage *s, const struct stage_meta *m)
{
	int rc = stage_begin(s);

	rc = rc ? rc : meta_set(s, "repo_id", m->repo_id);
	rc = rc ? rc : meta_set(s, "key_check", m->key_check);
	rc = rc ? rc : meta_set(s, "base_series", m->base_series);
	rc = rc ? rc : meta_set_u64(s, "base_num", m->base_num);
	rc = rc ? rc : meta_set_u64(s, "full", (uint64_t)m->full);
	rc = rc ? rc : meta_set_u64(s, "empty", (uint64_t)m->empty);
	rc = rc ? rc : meta_set(s, "token", m->token);
	rc = rc ? rc : meta_set(s, "state", m->state);
	rc = rc ? rc : meta_set(s, "last_error", m->last_error);
	rc = rc ? rc : meta_set_u64(s, "committing", (uint64_t)m->committing);
	rc = rc ? rc : meta_set_u64(s, "next_ino", m->next_ino);
	rc = rc ? rc : meta_set_u64(s, "staged_files", m->staged_files);
	rc = rc ? rc : meta_set_u64(s, "staged_bytes", m->staged_bytes);
	rc = rc ? rc : meta_set(s, "stream_series", m->stream_series);
	stage_durable(s); /* the commit protocol's steps */
	return stage_end(s, rc);
}

/* ---- transactions ----------------------------------------------------- */

/* Keeps the error that made it roll back (SQLite may have rolled back
 * already, after SQLITE_FULL). */
static void rollback(struct stage *s)
{
	s->rollbacks++;
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->q[Q_ROLLBACK]);
		sqlite3_reset(s->q[Q_ROLLBACK]);
	}
}

uint64_t stage_rollbacks(const struct stage *s)
{
	return s->rollbacks;
}

/* The open transaction is gone (SQLite rolls back by itself after some
 * errors, SQLITE_FULL among them): a batch loses its earlier calls. */
static void batch_gone(struct stage *s)
{
	if (s->open && sqlite3_get_autocommit(s->db)) {
		s->open = 0;
		s->lost++;
	}
}

int stage_begin(struct stage *s)
{
	int rc = 0;

	if (s->depth++)
		return 0;
	if (!s->batching || !s->open)
		rc = run(s, s->q[Q_BEGIN], "begin");
	if (rc == 0 && s->batching) {
		if (!s->open) {
			s->open = 1;
			s->ops = 0;
			s->opened_at = mono_sec();
		}
		rc = run(s, s->q[Q_SAVEPOINT], "savepoint");
	}
	if (rc)
		s->depth--;
	return rc;
}

int stage_commit(struct stage *s)
{
	int r;

	s->durable = 0;
	if (!s->open || s->depth)
		return 0;
	s->open = 0;
	r = run(s, s->q[Q_COMMIT], "commit");
	if (r) {
		rollback(s);
		s->lost++;
	}
	return r;
}

int stage_end(struct stage *s, int rc)
{
	int r;

	if (--s->depth)
		return rc;
	if (!s->batching) {
		s->durable = 0;
		if (rc) {
			rollback(s);
			return rc;
		}
		r = run(s, s->q[Q_COMMIT], "commit");
		if (r)
			rollback(s);
		return r;
	}
	if (rc) {
		/* This call only; the batch goes on. */
		s->rollbacks++;
		if (!sqlite3_get_autocommit(s->db)) {
			sqlite3_step(s->q[Q_ROLLBACK_TO]);
			sqlite3_reset(s->q[Q_ROLLBACK_TO]);
			sqlite3_step(s->q[Q_RELEASE]);
			sqlite3_reset(s->q[Q_RELEASE]);
		}
		batch_gone(s);
		if (s->durable)
			(void)stage_commit(s); /* rc says what failed */
		return rc;
	}
	r = run(s, s->q[Q_RELEASE], "release");
	batch_gone(s);
	if (r == 0 && (s->durable || s->tight || ++s->ops >= BATCH_OPS))
		r = stage_commit(s);
	return r;
}

void stage_durable(struct stage *s)
{
	s->durable = 1;
}

int stage_must_commit(struct stage *s)
{
	return s->depth ? (stage_durable(s), 0) : stage_commit(s);
}

void stage_batch(struct stage *s)
{
	s->batching = 1;
}

double stage_batch_since(const struct stage *s)
{
	return s->open ? s->opened_at : 0;
}

uint64_t stage_lost(const struct stage *s)
{
	return s->lost;
}

/* ---- inodes ----------------------------------------------------------- */

void sinode_free(struct sinode *in)
{
	free(in->target);
	free(in->oname);
	in->target = in->oname = NULL;
}

static int inode_row(struct stage *s, sqlite3_stmt *st, struct sinode *in)
{
	memset(in, 0, sizeof(*in));
	in->type = (uint8_t)sqlite3_column_int(st, 0);
	in->mode = (uint32_t)sqlite3_column_int64(st, 1);
	in->uid = (uint32_t)sqlite3_column_int64(st, 2);
	in->gid = (uint32_t)sqlite3_column_int64(st, 3);
	in->mtime_ns = sqlite3_column_int64(st, 4);
	in->ctime_ns = sqlite3_column_int64(st, 5);
	in->size = col_u64(st, 6);
	in->rdev_major = (uint32_t)sqlite3_column_int64(st, 7);
	in->rdev_minor = (uint32_t)sqlite3_column_int64(st, 8);
	in->nlink = (uint32_t)sqlite3_column_int64(st, 9);
	in->target = col_str(st, 10);
	in->bkind = (uint8_t)sqlite3_column_int(st, 11);
	in->has_orig = (uint8_t)sqlite3_column_int(st, 13);
	in->oname = col_str(st, 15);
	in->o_mode = (uint32_t)sqlite3_column_int64(st, 16);
	in->o_uid = (uint32_t)sqlite3_column_int64(st, 17);
	in->o_gid = (uint32_t)sqlite3_column_int64(st, 18);
	in->o_mtime_ns = sqlite3_column_int64(st, 19);
	in->o_ctime_ns = sqlite3_column_int64(st, 20);
	in->o_size = col_u64(st, 21);
	in->bgroup = col_u64(st, 22);
	in->bhl = col_u64(st, 23);
	in->data = (uint8_t)sqlite3_column_int(st, 24);
	in->own_xattrs = (uint8_t)sqlite3_column_int(st, 25);
	in->wstate = (uint8_t)sqlite3_column_int(st, 26);
	in->ino = col_u64(st, 27);
	in->srefs = col_u64(st, 28);
	if (ref_unpack(st, 12, &in->btree) || ref_unpack(st, 14, &in->otree) ||
	    (sqlite3_column_type(st, 10) != SQLITE_NULL && !in->target) ||
	    (sqlite3_column_type(st, 15) != SQLITE_NULL && !in->oname)) {
		sinode_free(in);
		return snap_seterr(SNAP_EIO, "stage %s: inode %" PRIu64
				   " is damaged", s->dir, in->ino);
	}
	return 0;
}

int stage_inode_get(struct stage *s, uint64_t ino, struct sinode *in)
{
	sqlite3_stmt *st = q(s, Q_INODE_GET);
	int rc;

	bind_u64(st, 1, ino);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = inode_row(s, st, in);
	else if (rc == SQLITE_DONE)
		rc = snap_seterr(SNAP_ENOENT, "inode %" PRIu64 " not staged",
				 ino);
	else
		rc = dberr(s, "reading an inode");
	sqlite3_reset(st);
	return rc;
}

int stage_inode_put(struct stage *s, const struct sinode *in)
{
	sqlite3_stmt *st = q(s, Q_INODE_PUT);
	uint8_t bt[60], ot[60];

	bind_u64(st, 1, in->ino);
	sqlite3_bind_int(st, 2, in->type);
	sqlite3_bind_int64(st, 3, in->mode);
	sqlite3_bind_int64(st, 4, in->uid);
	sqlite3_bind_int64(st, 5, in->gid);
	sqlite3_bind_int64(st, 6, in->mtime_ns);
	sqlite3_bind_int64(st, 7, in->ctime_ns);
	bind_u64(st, 8, in->size);
	sqlite3_bind_int64(st, 9, in->rdev_major);
	sqlite3_bind_int64(st, 10, in->rdev_minor);
	sqlite3_bind_int64(st, 11, in->nlink);
	if (in->target)
		sqlite3_bind_blob(st, 12, in->target, (int)strlen(in->target),
				  SQLITE_STATIC);
	sqlite3_bind_int(st, 13, in->bkind);
	if (in->bkind == B_TREE) {
		ref_pack(&in->btree, bt);
		sqlite3_bind_blob(st, 14, bt, 60, SQLITE_STATIC);
	}
	sqlite3_bind_int(st, 15, in->has_orig);
	if (in->has_orig) {
		ref_pack(&in->otree, ot);
		sqlite3_bind_blob(st, 16, ot, 60, SQLITE_STATIC);
		sqlite3_bind_blob(st, 17, in->oname, (int)strlen(in->oname),
				  SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 18, in->o_mode);
	sqlite3_bind_int64(st, 19, in->o_uid);
	sqlite3_bind_int64(st, 20, in->o_gid);
	sqlite3_bind_int64(st, 21, in->o_mtime_ns);
	sqlite3_bind_int64(st, 22, in->o_ctime_ns);
	bind_u64(st, 23, in->o_size);
	bind_u64(st, 24, in->bgroup);
	bind_u64(st, 25, in->bhl);
	sqlite3_bind_int(st, 26, in->data);
	sqlite3_bind_int(st, 27, in->own_xattrs);
	sqlite3_bind_int(st, 28, in->wstate);
	bind_u64(st, 29, in->srefs);
	return run(s, st, "writing an inode");
}

int stage_inode_del(struct stage *s, uint64_t ino)
{
	sqlite3_stmt *st = q(s, Q_XATTR_CLEAR);

	bind_u64(st, 1, ino);
	SNAP_TRY(run(s, st, "clearing attributes"));
	SNAP_TRY(stage_sref_clear(s, ino));
	st = q(s, Q_INODE_DEL);
	bind_u64(st, 1, ino);
	return run(s, st, "deleting an inode");
}

/* ---- stored chunks of streamed files ---------------------------------- */

int stage_sref_add(struct stage *s, uint64_t ino, const struct chunk *c)
{
	sqlite3_stmt *st = q(s, Q_SREF_ADD);
	uint8_t r[60];

	/* The chunk's bytes are punched out of data/<ino> next. */
	SNAP_TRY(stage_must_commit(s));
	ref_pack(&c->r, r);
	bind_u64(st, 1, ino);
	bind_u64(st, 2, c->off);
	sqlite3_bind_blob(st, 3, r, 60, SQLITE_STATIC);
	SNAP_TRY(run(s, st, "recording a stored chunk"));
	st = q(s, Q_SREF_END);
	bind_u64(st, 1, ino);
	bind_u64(st, 2, c->off + c->r.raw);
	return run(s, st, "recording a stored chunk");
}

int stage_sref_range(struct stage *s, uint64_t ino, uint64_t off,
		     uint64_t end, size_t maxlen, struct chunk **v, size_t *n)
{
	sqlite3_stmt *st = q(s, Q_SREF_RANGE);
	size_t cap = 0;
	int rc = 0, r;

	*v = NULL;
	*n = 0;
	bind_u64(st, 1, ino);
	bind_u64(st, 2, off > maxlen ? off - maxlen : 0);
	bind_u64(st, 3, end > INT64_MAX ? INT64_MAX : end);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct chunk c;

		c.off = col_u64(st, 0);
		if (ref_unpack(st, 1, &c.r) ||
		    sqlite3_column_bytes(st, 1) != 60) {
			rc = snap_seterr(SNAP_EIO, "stage %s: the stored "
					 "chunks of inode %" PRIu64 " are "
					 "damaged", s->dir, ino);
			break;
		}
		if (c.off + c.r.raw <= off)
			continue;
		rc = array_grow(v, &cap, *n, sizeof(**v), 16);
		if (rc)
			break;
		(*v)[(*n)++] = c;
	}
	if (rc == 0 && r != SQLITE_ROW && r != SQLITE_DONE)
		rc = dberr(s, "reading stored chunks");
	sqlite3_reset(st);
	if (rc) {
		free(*v);
		*v = NULL;
		*n = 0;
	}
	return rc;
}

int stage_sref_del(struct stage *s, uint64_t ino, uint64_t off)
{
	sqlite3_stmt *st = q(s, Q_SREF_DEL);

	bind_u64(st, 1, ino);
	bind_u64(st, 2, off);
	return run(s, st, "deleting a stored chunk");
}

int stage_sref_clear(struct stage *s, uint64_t ino)
{
	sqlite3_stmt *st = q(s, Q_SREF_CLEAR);

	bind_u64(st, 1, ino);
	return run(s, st, "deleting stored chunks");
}

int stage_xattr_clear(struct stage *s, uint64_t ino)
{
	sqlite3_stmt *st = q(s, Q_XATTR_CLEAR);

	bind_u64(st, 1, ino);
	return run(s, st, "clearing attributes");
}

/* Rows are copied out before fn runs, so fn may change the stage. */
int stage_inode_each(struct stage *s,
		     int (*fn)(void *ctx, const struct sinode *in), void *ctx)
{
	sqlite3_stmt *st;
	struct sinode *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, r;

	st = q(s, Q_INODE_ALL);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		rc = array_grow(&v, &cap, n, sizeof(*v), 64);
		rc = rc ? rc : inode_row(s, st, &v[n]);
		if (rc)
			break;
		n++;
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = dberr(s, "listing inodes");
	sqlite3_reset(st);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = fn(ctx, &v[i]);
		sinode_free(&v[i]);
	}
	free(v);
	return rc;
}

/* ---- directory entries ------------------------------------------------ */

int stage_dirent_get(struct stage *s, uint64_t dir, const char *name,
		     uint64_t *ino)
{
	sqlite3_stmt *st = q(s, Q_DIRENT_GET);
	int rc;

	bind_u64(st, 1, dir);
	sqlite3_bind_blob(st, 2, name, (int)strlen(name), SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ino = col_u64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = SNAP_ENOENT;
	} else {
		rc = dberr(s, "looking up a name");
	}
	sqlite3_reset(st);
	return rc;
}

int stage_dirent_put(struct stage *s, uint64_t dir, const char *name,
		     uint64_t ino)
{
	sqlite3_stmt *st = q(s, Q_DIRENT_PUT);

	bind_u64(st, 1, dir);
	sqlite3_bind_blob(st, 2, name, (int)strlen(name), SQLITE_STATIC);
	bind_u64(st, 3, ino);
	return run(s, st, "writing a name");
}

int stage_dirent_del(struct stage *s, uint64_t dir, const char *name)
{
	sqlite3_stmt *st = q(s, Q_DIRENT_DEL);

	bind_u64(st, 1, dir);
	sqlite3_bind_blob(st, 2, name, (int)strlen(name), SQLITE_STATIC);
	return run(s, st, "deleting a name");
}

int stage_dirent_clear(struct stage *s, uint64_t dir)
{
	sqlite3_stmt *st = q(s, Q_DIRENT_CLEAR);

	bind_u64(st, 1, dir);
	return run(s, st, "clearing a directory");
}

struct dent {
	char *name;
	uint64_t ino;
};

/* Copies the rows out first: fn may run queries of its own. */
int stage_dirent_each(struct stage *s, uint64_t dir,
		      int (*fn)(void *ctx, const char *name, uint64_t ino),
		      void *ctx)
{
	sqlite3_stmt *st = q(s, Q_DIRENT_LIST);
	struct dent *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, r;

	bind_u64(st, 1, dir);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		rc = array_grow(&v, &cap, n, sizeof(*v), 32);
		if (rc)
			break;
		v[n].name = col_str(st, 0);
		v[n].ino = col_u64(st, 1);
		if (!v[n].name) {
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
			break;
		}
		n++;
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = dberr(s, "listing a directory");
	sqlite3_reset(st);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = fn(ctx, v[i].name, v[i].ino);
		free(v[i].name);
	}
	free(v);
	return rc;
}

int stage_dirent_of(struct stage *s, uint64_t ino, uint64_t *dir,
		    char **name)
{
	sqlite3_stmt *st = q(s, Q_DIRENT_OF);
	int rc;

	bind_u64(st, 1, ino);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*dir = col_u64(st, 0);
		*name = col_str(st, 1);
		rc = *name ? 0 : snap_seterr(SNAP_ENOMEM, "out of memory");
	} else if (rc == SQLITE_DONE) {
		rc = SNAP_ENOENT;
	} else {
		rc = dberr(s, "finding a name");
	}
	sqlite3_reset(st);
	return rc;
}

/* ---- xattrs ----------------------------------------------------------- */

int stage_xattr_get(struct stage *s, uint64_t ino, const char *name,
		    struct buf *val)
{
	sqlite3_stmt *st = q(s, Q_XATTR_GET);
	int rc;

	bind_u64(st, 1, ino);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		val->len = 0;
		rc = buf_add(val, sqlite3_column_blob(st, 0),
			     (size_t)sqlite3_column_bytes(st, 0));
	} else if (rc == SQLITE_DONE) {
		rc = SNAP_ENOENT;
	} else {
		rc = dberr(s, "reading an attribute");
	}
	sqlite3_reset(st);
	return rc;
}

int stage_xattr_set(struct stage *s, uint64_t ino, const char *name,
		    const void *val, size_t len)
{
	sqlite3_stmt *st = q(s, Q_XATTR_SET);
	static const uint8_t none;

	bind_u64(st, 1, ino);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	/* A NULL blob would read back as SQL NULL: empty values stay blobs. */
	sqlite3_bind_blob(st, 3, len ? val : &none, (int)len, SQLITE_STATIC);
	return run(s, st, "writing an attribute");
}

int stage_xattr_del(struct stage *s, uint64_t ino, const char *name)
{
	sqlite3_stmt *st = q(s, Q_XATTR_DEL);

	bind_u64(st, 1, ino);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	return run(s, st, "deleting an attribute");
}

int stage_xattr_each(struct stage *s, uint64_t ino,
		     int (*fn)(void *ctx, const char *name, const void *val,
			       size_t len),
		     void *ctx)
{
	sqlite3_stmt *st = q(s, Q_XATTR_LIST);
	int rc = 0, r;

	/* Attribute lists are small: fn runs while the rows are read, and
	 * must not use the stage. */
	bind_u64(st, 1, ino);
	while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
		rc = fn(ctx, (const char *)sqlite3_column_text(st, 0),
			sqlite3_column_blob(st, 1),
			(size_t)sqlite3_column_bytes(st, 1));
	if (rc == 0 && r != SQLITE_DONE)
		rc = dberr(s, "listing attributes");
	sqlite3_reset(st);
	return rc;
}

/* ---- data files ------------------------------------------------------- */

static void data_name(uint64_t ino, char out[24])
{
	snprintf(out, 24, "%016" PRIx64, ino);
}

int stage_data_open(struct stage *s, uint64_t ino, int flags, int *fd)
{
	char name[24];

	if (s->datafd < 0)
		return snap_seterr(SNAP_EROFS, "stage in memory");
	/* Bytes a committed row may trust are about to change: the rows
	 * that say they changed go first.  A file made afresh (O_CREAT |
	 * O_TRUNC: nothing committed points at it yet) needs no commit. */
	if ((flags & O_ACCMODE) != O_RDONLY &&
	    (flags & (O_CREAT | O_TRUNC)) != (O_CREAT | O_TRUNC))
		SNAP_TRY(stage_must_commit(s));
	data_name(ino, name);
	*fd = openat(s->datafd, name, flags | O_CLOEXEC, 0600);
	if (*fd < 0)
		return snap_syserr(errno, "stage %s: data/%s", s->dir, name);
	return 0;
}

int stage_data_blocks(struct stage *s, uint64_t ino, uint64_t *blocks)
{
	char name[24];
	struct stat st;

	*blocks = 0;
	if (s->datafd < 0)
		return 0;
	data_name(ino, name);
	if (fstatat(s->datafd, name, &st, 0))
		return snap_syserr(errno, "stage %s: data/%s", s->dir, name);
	*blocks = (uint64_t)st.st_blocks;
	return 0;
}

int stage_data_unlink(struct stage *s, uint64_t ino)
{
	char name[24];

	SNAP_TRY(stage_must_commit(s));
	data_name(ino, name);
	if (unlinkat(s->datafd, name, 0) && errno != ENOENT)
		return snap_syserr(errno, "stage %s: data/%s", s->dir, name);
	return 0;
}

/* ---- packs and dropped paths ------------------------------------------ */

int stage_pack_add(struct stage *s, const uint8_t id[PACK_ID_LEN])
{
	sqlite3_stmt *st = q(s, Q_PACK_ADD);

	sqlite3_bind_blob(st, 1, id, PACK_ID_LEN, SQLITE_STATIC);
	SNAP_TRY(run(s, st, "recording a pack"));
	/* Abort must find it. */
	return stage_must_commit(s);
}

int stage_pack_each(struct stage *s,
		    int (*fn)(void *ctx, const uint8_t id[PACK_ID_LEN]),
		    void *ctx)
{
	sqlite3_stmt *st = q(s, Q_PACK_LIST);
	uint8_t (*v)[PACK_ID_LEN] = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, r;

	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 0) != PACK_ID_LEN)
			continue;
		rc = array_grow(&v, &cap, n, sizeof(*v), 16);
		if (rc)
			break;
		memcpy(v[n++], sqlite3_column_blob(st, 0), PACK_ID_LEN);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = dberr(s, "listing packs");
	sqlite3_reset(st);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(ctx, v[i]);
	free(v);
	return rc;
}

int stage_dropped_each(struct stage *s,
		       int (*fn)(void *ctx, const char *path), void *ctx)
{
	sqlite3_stmt *st = q(s, Q_DROPPED_LIST);
	int rc = 0, r;

	while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW)
		rc = fn(ctx, (const char *)sqlite3_column_text(st, 0));
	if (rc == 0 && r != SQLITE_DONE)
		rc = dberr(s, "listing dropped files");
	sqlite3_reset(st);
	return rc;
}

/* ---- recovery --------------------------------------------------------- */

static void boot_id(char out[40])
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	out[0] = 0;
	if (f) {
		if (!fgets(out, 40, f))
			out[0] = 0;
		fclose(f);
	}
	out[strcspn(out, "\n")] = 0;
}

/* The path of a staged inode below the label directory, from its names. */
static int staged_path(struct stage *s, uint64_t ino, char *out, size_t n)
{
	int depth = 0;

	out[0] = 0;
	while (depth++ < 256) {
		uint64_t dir;
		char *name;
		size_t nl, ol = strlen(out);
		int rc = stage_dirent_of(s, ino, &dir, &name);

		if (rc == SNAP_ENOENT)
			return 0;
		if (rc)
			return rc;
		nl = strlen(name);
		/* Too deep to name whole: the tail is what tells the file. */
		if (nl + 1 + ol + 1 > n) {
			free(name);
			return 0;
		}
		memmove(out + nl + (ol ? 1 : 0), out, ol + 1);
		memcpy(out, name, nl);
		if (ol)
			out[nl] = '/';
		free(name);
		ino = dir;
	}
	return 0;
}

struct recov {
	struct stage *s;
	int rebooted;
	uint64_t dropped;
};

/* Puts an inode that cannot be trusted back to its base version, or
 * removes it when it has none (it was created since the base). */
static int recover_one(void *ctx, const struct sinode *in)
{
	struct recov *rv = ctx;
	struct stage *s = rv->s;
	char path[4096];
	sqlite3_stmt *st;
	uint64_t dir;
	char *name;
	int rc;

	if (in->type != ET_REG)
		return 0;
	if (!(in->wstate == WS_WRITING ||
	      (in->wstate == WS_UNSYNCED && rv->rebooted)))
		return 0;
	SNAP_TRY(staged_path(s, in->ino, path, sizeof(path)));
	st = q(s, Q_DROPPED_ADD);
	sqlite3_bind_text(st, 1, path[0] ? path : "(unlinked)", -1,
			  SQLITE_TRANSIENT);
	SNAP_TRY(run(s, st, "recording a dropped file"));
	rv->dropped++;
	SNAP_TRY(stage_data_unlink(s, in->ino));
	if (in->has_orig || in->bhl) {
		struct sinode r = *in;

		r.data = 0;
		r.srefs = 0;
		r.own_xattrs = 0;
		r.wstate = WS_CLEAN;
		r.mode = in->o_mode;
		r.uid = in->o_uid;
		r.gid = in->o_gid;
		r.mtime_ns = in->o_mtime_ns;
		r.ctime_ns = in->o_ctime_ns;
		r.size = in->o_size;
		SNAP_TRY(stage_xattr_clear(s, in->ino));
		SNAP_TRY(stage_sref_clear(s, in->ino));
		return stage_inode_put(s, &r);
	}
	/* New since the base: every name of it goes, then the inode. */
	while ((rc = stage_dirent_of(s, in->ino, &dir, &name)) == 0) {
		rc = stage_dirent_del(s, dir, name);
		free(name);
		if (rc)
			return rc;
	}
	if (rc != SNAP_ENOENT)
		return rc;
	return stage_inode_del(s, in->ino);
}

/* Inodes with no name left and nobody holding them (they were open and
 * unlinked when the daemon died) go, with their data.  One query: names
 * are looked up by inode only here and in recovery, so the table has no
 * index by inode (it would cost a page per change). */
static int reap_orphans(struct stage *s)
{
	sqlite3_stmt *st;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, r;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT ino FROM inode WHERE type != ?1 AND "
			       "bhl = 0 AND ino NOT IN (SELECT ino FROM dirent)",
			       -1, &st, NULL) != SQLITE_OK)
		return dberr(s, "finding orphans");
	sqlite3_bind_int(st, 1, ET_DIR);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		rc = array_grow(&v, &cap, n, sizeof(*v), 16);
		if (rc)
			break;
		v[n++] = col_u64(st, 0);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = dberr(s, "finding orphans");
	sqlite3_finalize(st);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = stage_data_unlink(s, v[i]);
		rc = rc ? rc : stage_inode_del(s, v[i]);
	}
	free(v);
	return rc;
}

static int data_each(struct stage *s,
		     void (*fn)(struct stage *s, const char *name, void *ctx),
		     void *ctx);

/* Data files no row takes: made for a file whose row's batch was lost
 * with the daemon (stage.h: batching). */
static void data_reap(struct stage *s, const char *name, void *ctx)
{
	struct sinode in;
	char *end;
	uint64_t ino = strtoull(name, &end, 16);
	int rc;

	(void)ctx;
	if (*end || strlen(name) != 16)
		return;
	rc = stage_inode_get(s, ino, &in);
	if (rc == 0 && !(in.type == ET_REG && in.data))
		rc = SNAP_ENOENT;
	if (rc == SNAP_ENOENT)
		unlinkat(s->datafd, name, 0);
	else if (rc == 0)
		sinode_free(&in);
}

static int recover(struct stage *s, struct stage_found *found)
{
	char was[40], now[40], clean[8];
	struct recov rv = {.s = s};
	int rc;

	SNAP_TRY(meta_text(s, "boot_id", was, sizeof(was)));
	SNAP_TRY(meta_text(s, "clean_close", clean, sizeof(clean)));
	boot_id(now);
	rv.rebooted = strcmp(was, now) != 0;
	found->recovered = strcmp(clean, "1") != 0;
	rc = stage_begin(s);
	if (rc == 0 && found->recovered)
		rc = stage_inode_each(s, recover_one, &rv);
	if (rc == 0)
		rc = reap_orphans(s);
	if (rc == 0 && found->recovered)
		rc = data_each(s, data_reap, NULL);
	rc = rc ? rc : meta_set(s, "boot_id", now);
	rc = rc ? rc : meta_set(s, "clean_close", "0");
	rc = stage_end(s, rc);
	found->dropped = rv.dropped;
	return rc;
}

/* ---- open, close, sync ------------------------------------------------ */

static int take_lock(struct stage *s)
{
	char path[4200], pid[32];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/lock", s->dir);
	s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lockfd < 0)
		return snap_syserr(errno, "stage %s", path);
	if (flock(s->lockfd, LOCK_EX | LOCK_NB)) {
		n = pread(s->lockfd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		return snap_seterr(SNAP_EACCES,
				   "stage %s is in use by another snapfs "
				   "(pid %s)",
				   s->dir, pid[0] ? pid : "?");
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(s->lockfd, 0) ||
	    pwrite(s->lockfd, pid, strlen(pid), 0) < 0)
		return snap_syserr(errno, "stage %s", path);
	return 0;
}

/* Stages of schema 1 gain the column of streamed files' chunks (the
 * table comes with the schema). */
static int upgrade(struct stage *s)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(s->db, "SELECT srefs FROM inode LIMIT 0", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_finalize(st);
		return 0;
	}
	return exec(s, "ALTER TABLE inode ADD COLUMN srefs INTEGER DEFAULT 0");
}

int stage_open(const char *dir, struct stage **out, struct stage_found *found)
{
	struct stage *s = calloc(1, sizeof(*s));
	char path[4200], *d = NULL;
	struct stat st;
	int rc, fresh = 1;

	*out = NULL;
	memset(found, 0, sizeof(*found));
	if (!s || !(s->dir = strdup(dir ? dir : "(in memory)")) ||
	    (dir && !(d = strdup(dir)))) {
		free(s ? s->dir : NULL);
		free(s);
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	}
	s->lockfd = s->datafd = -1;
	if (!dir) {
		snprintf(path, sizeof(path), ":memory:");
		goto db;
	}
	rc = make_dirs(d, 0700, 1);
	free(d);
	if (rc)
		goto fail;
	rc = take_lock(s);
	if (rc)
		goto fail;
	snprintf(path, sizeof(path), "%s/data", dir);
	if (mkdir(path, 0700) && errno != EEXIST) {
		rc = snap_syserr(errno, "stage %s", path);
		goto fail;
	}
	s->datafd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->datafd < 0) {
		rc = snap_syserr(errno, "stage %s", path);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/stage.db", dir);
	fresh = stat(path, &st) != 0;
db:
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = snap_seterr(SNAP_EIO, "stage %s: %s", path,
				 s->db ? sqlite3_errmsg(s->db)
				       : "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* WAL: a transaction is one append, readable by the next open even
	 * after kill -9; NORMAL syncs at checkpoints, stage_sync() does the
	 * rest.  The flock keeps every other process out, so SQLite's own
	 * per-transaction locks (two fcntl calls each, a few dozen per file
	 * rsync writes) are taken once, exclusively. */
	/* Rows are small and every change is a few of them: small pages
	 * keep the log that each transaction appends small (4 KiB pages
	 * wrote ~80 KB of log per file rsync copied in). */
	rc = exec(s, "PRAGMA page_size=1024; PRAGMA locking_mode=EXCLUSIVE;"
		     " PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		     " PRAGMA temp_store=MEMORY;");
	rc = rc ? rc : exec(s, schema);
	rc = rc ? rc : upgrade(s);
	if (rc)
		goto fail;
	for (int i = 0; i < NQ; i++)
		if (sqlite3_prepare_v2(s->db, sql[i], -1, &s->q[i], NULL) !=
		    SQLITE_OK) {
			rc = dberr(s, "preparing a query");
			goto fail;
		}
	{
		char v[16];

		rc = meta_text(s, "schema", v, sizeof(v));
		if (rc)
			goto fail;
		if (v[0] && atoi(v) > SCHEMA_VERSION) {
			rc = snap_seterr(SNAP_EUNSUPP,
					 "stage %s was written by a newer "
					 "snapfs (schema %s)",
					 s->dir, v);
			goto fail;
		}
	}
	rc = meta_set_u64(s, "schema", SCHEMA_VERSION);
	if (rc)
		goto fail;
	if (fresh) {
		rc = meta_set(s, "clean_close", "1");
		if (rc)
			goto fail;
		found->created = 1;
	}
	rc = recover(s, found);
	if (rc)
		goto fail;
	reserve_make(s);
	*out = s;
	return 0;
fail:
	snap_preerr(rc, "stage");
	stage_close(s);
	return rc;
}

int stage_sync(struct stage *s)
{
	int rc;

	if (s->datafd < 0)
		return 0;
	SNAP_TRY(stage_commit(s));
	if (syncfs(s->datafd))
		return snap_syserr(errno, "stage %s: sync", s->dir);
	rc = exec(s, "UPDATE inode SET wstate = 0 WHERE wstate = 2");
	if (rc == 0 &&
	    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
				      NULL, NULL) != SQLITE_OK)
		rc = dberr(s, "checkpoint");
	if (rc == 0 && syncfs(s->datafd))
		rc = snap_syserr(errno, "stage %s: sync", s->dir);
	reserve_make(s);
	return rc;
}

int stage_flush_log(struct stage *s)
{
	char path[4200];
	int fd, rc = 0;

	if (s->datafd < 0)
		return 0;
	SNAP_TRY(stage_commit(s));
	snprintf(path, sizeof(path), "%s/stage.db-wal", s->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : snap_syserr(errno, "stage %s", path);
	if (fdatasync(fd))
		rc = snap_syserr(errno, "stage %s: sync", path);
	close(fd);
	return rc;
}

void stage_close(struct stage *s)
{
	if (!s)
		return;
	if (s->db) {
		/* Only a stage that reached here closed cleanly; anything
		 * else is recovered at the next open. */
		if (s->q[0] && stage_commit(s) == 0 && stage_sync(s) == 0)
			meta_set(s, "clean_close", "1");
		for (int i = 0; i < NQ; i++)
			sqlite3_finalize(s->q[i]);
		sqlite3_close(s->db);
	}
	if (s->datafd >= 0)
		close(s->datafd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	free(s->dir);
	free(s);
}

/* Calls fn for every file of data/. */
static int data_each(struct stage *s,
		     void (*fn)(struct stage *s, const char *name, void *ctx),
		     void *ctx)
{
	DIR *d;
	struct dirent *de;
	int fd;

	if (s->datafd < 0)
		return 0;
	fd = dup(s->datafd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return snap_syserr(errno, "stage %s/data", s->dir);
	}
	rewinddir(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			fn(s, de->d_name, ctx);
	closedir(d);
	return 0;
}

static void data_unlink(struct stage *s, const char *name, void *ctx)
{
	(void)ctx;
	unlinkat(s->datafd, name, 0);
}

int stage_clear(struct stage *s)
{
	int rc;

	SNAP_TRY(stage_commit(s));
	rc = exec(s, "BEGIN IMMEDIATE; DELETE FROM inode; DELETE FROM dirent;"
		     " DELETE FROM xattr; DELETE FROM pack; DELETE FROM sref;"
		     " DELETE FROM dropped; COMMIT;");
	if (rc) {
		exec(s, "ROLLBACK");
		return rc;
	}
	return data_each(s, data_unlink, NULL);
}

static void data_add(struct stage *s, const char *name, void *ctx)
{
	struct stat st;

	if (fstatat(s->datafd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		*(uint64_t *)ctx += (uint64_t)st.st_blocks * 512;
}

int stage_data_usage(struct stage *s, uint64_t *bytes)
{
	*bytes = 0;
	return data_each(s, data_add, bytes);
}

int stage_remove(const char *dir)
{
	static const char *const files[] = {"stage.db", "stage.db-wal",
					    "stage.db-shm", "lock", "reserve"};
	char path[4200];
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/data", dir);
	if ((d = opendir(path))) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/data/%s", dir,
					 de->d_name);
				unlink(path);
			}
		closedir(d);
		snprintf(path, sizeof(path), "%s/data", dir);
		rmdir(path);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	if (rmdir(dir) && errno != ENOENT)
		return snap_syserr(errno, "stage %s", dir);
	return 0;
}

const char *stage_dir(const struct stage *s)
{
	return s->dir;
}

int stage_statfs(struct stage *s, uint64_t *bsize, uint64_t *blocks,
		 uint64_t *bfree, uint64_t *bavail)
{
	struct statvfs sv;

	if (s->datafd < 0)
		return snap_seterr(SNAP_EROFS, "stage in memory");
	if (fstatvfs(s->datafd, &sv))
		return snap_syserr(errno, "stage %s", s->dir);
	*bsize = sv.f_frsize;
	*blocks = sv.f_blocks;
	*bfree = sv.f_bfree;
	*bavail = sv.f_bavail;
	return 0;
}
