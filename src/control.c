/* control.c - control/: labels, their trees and .snapfs/; see control.h. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "commit.h"
#include "control.h"
#include "err.h"
#include "ixkeep.h"
#include "lease.h"

#define SNAPFS_DIR ".snapfs"
#define LABEL_SPAN 8 /* numbers per label: its directory and .snapfs/ */
#define LABEL_HASH_MASK ((1ULL << 37) - 1)
#define TTL_VIRT 1.0
#define SYNC_EVERY 5.0 /* seconds between syncs of the stages */
#define RESULTS 8

/* The names of .snapfs/, by their offset from the label's number. */
enum { V_LABEL, V_SNAPFS, V_STATUS, V_COMMIT, V_ABORT, V_FULL, V_EMPTY,
       V_COUNT };
static const char *const vname[V_COUNT] = {
	NULL, SNAPFS_DIR, "status", "commit", "abort", "full", "empty"};

enum job { J_NONE, J_COMMIT, J_ABORT, J_EMPTY, J_UNEMPTY };

struct clabel {
	struct clabel *next;
	struct control *c;
	char name[LABEL_MAX + 1];
	uint64_t ino; /* its directory; + V_* for .snapfs/ */
	struct ovl *o; /* NULL until first used */
	int ro;
	char stage_dir[PATH_MAX];
	char found[16], reason[400];
	uint64_t dropped;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t th;
	int th_live, stop;
	int job;            /* queued */
	int running;        /* a job runs */
	uint64_t seq, done; /* commits asked for, and finished */
	int rc[RESULTS];    /* the result of commit seq, by seq % RESULTS */
	int job_rc;         /* of the last abort / empty */
	uint64_t uploaded;  /* bytes of packs the running commit put */
	int commit_fds;     /* commit descriptors not yet released */
	uint64_t idle_tried; /* the changes an idle commit last took */
	struct ixkeep *ix;   /* the base series' dedup index */
	int stream_ix;       /* the stream session has it */
	int have_last;
	struct backup_result last;
	double last_elapsed;
	double last_end; /* wall clock */
	int pins; /* control_each_label() reads it without control's lock */
	/* Held while the stage names packs no backup references yet and no
	 * session holds them (after a failed commit, after a restart):
	 * check --repair must leave them (lease.h).  Commit thread only. */
	struct lease *lease;
	size_t packs_lost; /* of the stage's, found gone from the store */
};

struct control {
	struct control_opts o;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct clabel *labels;
	char fp[65]; /* the repository's fingerprint, kept in stages */
	struct ovl_holds holds; /* every label's */
	pthread_t syncer;
	int syncer_live, stop;
};

struct cfile {
	struct clabel *l;
	int kind; /* V_* or -1 for a file of the tree */
	struct ovl_file *of;
	struct buf text; /* status */
	uint64_t seq;    /* commit: the one this descriptor waits for */
};

struct cdir {
	struct clabel *l; /* NULL: control/ itself */
	int kind;         /* V_LABEL / V_SNAPFS, or -1 for the tree */
	struct ovl_dir *od;
	char **names;     /* control/ and .snapfs/ */
	size_t n;
	uint64_t self, parent;
};

static void ctl_log(struct control *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ctl_log(struct control *c, const char *fmt, ...)
{
	char msg[1400];
	va_list ap;

	if (!c->o.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->o.log(c->o.ctx, msg);
}

/* Logs a failure of a change (the kernel passes on only the errno). */
static int logged(struct control *c, int rc)
{
	if (rc < 0 && rc != SNAP_ENOENT && rc != SNAP_EEXIST &&
	    rc != SNAP_ENODATA && rc != SNAP_ENOTEMPTY)
		ctl_log(c, "%s", snap_errmsg());
	return rc;
}

/* ---- numbers ---------------------------------------------------------- */

static uint64_t label_ino(const char *label)
{
	uint64_t h = 1469598103934665603ULL;

	for (const unsigned char *p = (const unsigned char *)label; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h ^= h >> 29;
	return OVL_INO_MIN + LABEL_SPAN * (h & LABEL_HASH_MASK);
}

int control_owns(const struct control *c, uint64_t ino)
{
	return ino == c->o.ino || ino >= OVL_INO_MIN;
}

static int is_virtual(uint64_t ino)
{
	return ino >= OVL_INO_MIN &&
	       ino < OVL_INO_MIN + LABEL_SPAN * (LABEL_HASH_MASK + 1);
}

/* The label a number belongs to; *k: its V_* offset, or -1 for a node of
 * the label's tree. */
static struct clabel *find_ino(struct control *c, uint64_t ino, int *k)
{
	struct clabel *l;

	pthread_mutex_lock(&c->lock);
	for (l = c->labels; l; l = l->next) {
		if (ino >= l->ino && ino < l->ino + V_COUNT) {
			*k = (int)(ino - l->ino);
			break;
		}
		if (!is_virtual(ino) && l->o && ovl_has(l->o, ino)) {
			*k = -1;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return l;
}

/* ---- labels ----------------------------------------------------------- */

static void fingerprint(const struct repo *r, char out[65])
{
	char text[200];
	uint8_t h[32];

	snprintf(text, sizeof(text), "snapfs stage %s %u %zu %zu %zu", r->id,
		 r->pack_size, r->chunker.min, r->chunker.avg, r->chunker.max);
	hmac_sha256(r->keys.mac, sizeof(r->keys.mac), text, strlen(text), h);
	hex_encode(h, 32, out);
}

/* The label's newest backup; series "" when it has none. */
static int newest(struct control *c, const char *label, char *series,
		  uint32_t *num)
{
	int rc = repo_newest_series(c->o.r, label, series);

	*num = 0;
	if (rc == SNAP_ENOENT) {
		series[0] = 0;
		return 0;
	}
	return rc ? rc : repo_latest_num(c->o.r, series, num);
}

/* The backup whose manifest records token, if a commit of this stage
 * landed before the daemon stopped. */
static int find_token(struct control *c, const char *label,
		      const struct stage_meta *m, char *series, uint32_t *num)
{
	struct backup_id *v = NULL;
	char lbl[LABEL_MAX + 1];
	size_t n;
	int rc, found = 0;

	SNAP_TRY(repo_list(c->o.r, &v, &n));
	rc = 0;
	for (size_t i = 0; i < n && rc == 0 && !found; i++) {
		struct manifest man;

		series_label(v[i].series, lbl);
		if (strcmp(lbl, label))
			continue;
		if (m->base_series[0] && !m->full &&
		    (strcmp(v[i].series, m->base_series) ||
		     v[i].num <= m->base_num))
			continue;
		if ((m->full || !m->base_series[0]) && v[i].num != 1)
			continue;
		rc = repo_load_manifest(c->o.r, v[i].series, v[i].num, &man);
		if (rc == 0 && strcmp(man.stage_token, m->token) == 0) {
			memcpy(series, v[i].series, SERIES_MAX);
			*num = v[i].num;
			found = 1;
		}
		if (rc == 0)
			manifest_free(&man);
	}
	free(v);
	return rc ? rc : found;
}

struct packcount {
	struct store *st;
	const char *series;
	size_t n, missing;
};

static int pack_count(void *ctx, const uint8_t id[PACK_ID_LEN])
{
	struct packcount *p = ctx;
	char key[200];
	uint64_t size;
	int rc;

	p->n++;
	if (!p->st)
		return 0;
	pack_key(p->series, id, key, sizeof(key));
	rc = store_head(p->st, key, &size);
	p->missing += rc == SNAP_ENOENT;
	return rc == SNAP_ENOENT ? 0 : rc;
}

/* The series a stage's packs are in. */
static const char *stage_series(const struct stage_meta *m)
{
	return m->stream_series[0] ? m->stream_series : m->base_series;
}

/* Holds l's lease while its stage names packs (dropping it otherwise);
 * with verify, then counts those gone from the store in *missing. */
static int hold_lease(struct control *c, struct clabel *l, struct stage *st,
		      const struct stage_meta *m, int verify, size_t *missing)
{
	struct packcount p = {.series = stage_series(m)};
	int rc;

	if (missing)
		*missing = 0;
	SNAP_TRY(stage_pack_each(st, pack_count, &p));
	lease_drop(l->lease);
	l->lease = NULL;
	if (!p.n || !p.series[0])
		return 0;
	rc = lease_take(c->o.r->st, p.series, &l->lease);
	if (rc || !verify)
		return rc;
	/* Taken first: no repair can begin to delete them after this. */
	p.st = c->o.r->st;
	p.n = 0;
	SNAP_TRY(stage_pack_each(st, pack_count, &p));
	*missing = p.missing;
	return 0;
}

static int meta_reset(struct control *c, struct clabel *l,
		      struct stage_meta *m)
{
	uint64_t next = m->next_ino;

	memset(m, 0, sizeof(*m));
	memcpy(m->repo_id, c->o.r->id, sizeof(m->repo_id));
	memcpy(m->key_check, c->fp, sizeof(m->key_check));
	SNAP_TRY(newest(c, l->name, m->base_series, &m->base_num));
	snprintf(m->state, sizeof(m->state), "STATUS_IDLE");
	m->next_ino = next;
	return 0;
}

/* Decides what becomes of a stage found on disk: kept, or discarded
 * (with the reason); finishes a commit that was running when the last
 * daemon stopped. */
static int resume(struct control *c, struct clabel *l, struct stage *st,
		  const struct stage_found *f, struct stage_meta *m)
{
	const char *why = NULL;
	char series[SERIES_MAX], buf[300];
	uint32_t num;
	struct buf text = BUF_INIT;
	int rc;

	if (f->created) {
		snprintf(l->found, sizeof(l->found), "new");
		SNAP_TRY(meta_reset(c, l, m));
		return stage_put_meta(st, m);
	}
	snprintf(l->found, sizeof(l->found), "resumed");
	SNAP_TRY(stage_get_meta(st, m));
	if (strcmp(m->repo_id, c->o.r->id) || strcmp(m->key_check, c->fp))
		why = "the repository's keys or configuration changed";
	if (!why && m->base_series[0]) {
		rc = repo_manifest_text(c->o.r, m->base_series, m->base_num,
					&text);
		buf_free(&text);
		if (rc == SNAP_ENOENT) {
			snprintf(buf, sizeof(buf),
				 "its base backup %s/%u no longer exists",
				 m->base_series, m->base_num);
			why = buf;
		} else if (rc) {
			return rc;
		}
	}
	if (!why) {
		size_t missing;

		SNAP_TRY(hold_lease(c, l, st, m, 1, &missing));
		if (missing) {
			snprintf(buf, sizeof(buf),
				 "%zu of the packs its streamed files are in "
				 "were removed from the store (check --repair "
				 "while no daemon held the stage)", missing);
			why = buf;
		}
	}
	if (!why && m->committing) {
		rc = find_token(c, l->name, m, series, &num);
		if (rc < 0)
			return rc;
		m->committing = 0;
		if (rc) {
			SNAP_TRY(stage_clear(st));
			memcpy(m->base_series, series, SERIES_MAX);
			m->base_num = num;
			m->full = m->empty = 0;
			m->token[0] = m->last_error[0] = 0;
			m->stream_series[0] = 0;
			snprintf(m->state, sizeof(m->state), "%s", STATUS_READY);
			snprintf(l->reason, sizeof(l->reason),
				 "the commit running when the last daemon "
				 "stopped had landed as %s/%u",
				 series, num);
		} else {
			snprintf(m->state, sizeof(m->state), "STATUS_ERROR");
			snprintf(m->last_error, sizeof(m->last_error),
				 "the daemon stopped during a commit; nothing "
				 "was committed and the stage is kept");
		}
	}
	if (why) {
		snprintf(l->found, sizeof(l->found), "discarded");
		snprintf(l->reason, sizeof(l->reason), "%s", why);
		ctl_log(c, "control/%s: stage discarded: %s", l->name, why);
		SNAP_TRY(stage_clear(st));
		SNAP_TRY(meta_reset(c, l, m));
		lease_drop(l->lease);
		l->lease = NULL;
	} else if (f->recovered && f->dropped && !l->reason[0]) {
		snprintf(l->reason, sizeof(l->reason),
			 "the last daemon stopped with %" PRIu64 " file(s) "
			 "open for writing: they were put back",
			 f->dropped);
	}
	l->dropped = f->dropped;
	/* Nothing staged: start from the label's newest backup. */
	{
		struct sinode si;

		rc = stage_inode_get(st, l->ino, &si);
		if (rc == 0)
			sinode_free(&si);
		else if (rc == SNAP_ENOENT && !m->empty)
			SNAP_TRY(newest(c, l->name, m->base_series,
					&m->base_num));
		else if (rc != SNAP_ENOENT)
			return rc;
	}
	return stage_put_meta(st, m);
}

/* The tree's base: the stage's base backup, or nothing when empty. */
static int tree_base(struct control *c, const struct stage_meta *m,
		     struct ovl_base *b, struct manifest *man)
{
	memset(b, 0, sizeof(*b));
	if (!m->base_series[0] || m->empty)
		return 0;
	memcpy(b->series, m->base_series, SERIES_MAX);
	b->num = m->base_num;
	SNAP_TRY(repo_load_manifest(c->o.r, b->series, b->num, man));
	b->m = man;
	return 0;
}

static int stream_open(void *ctx, struct bsession **out);

static int label_open_tree(struct control *c, struct clabel *l)
{
	struct ovl_opts oo = {.r = c->o.r, .c = c->o.c, .label = l->name,
			      .root_ino = l->ino,
			      .readahead_max = c->o.readahead_max,
			      .kernel_acl = c->o.kernel_acl,
			      .kernel_times = c->o.kernel_times,
			      .uid = c->o.uid, .gid = c->o.gid,
			      .stream_open = c->o.cfg.no_stream ? NULL
							       : stream_open,
			      .stream_ctx = l,
			      .stage_max = c->o.cfg.stage_max,
			      .holds = &c->holds,
			      .resume_write = c->o.resume_write};
	struct stage *st = NULL;
	struct stage_found f;
	struct stage_meta m;
	struct ovl_base b;
	struct manifest man;
	int rc;

	memset(&man, 0, sizeof(man));
	rc = stage_open(l->stage_dir, &st, &f);
	if (rc == SNAP_EACCES) {
		l->ro = 1;
		snprintf(l->found, sizeof(l->found), "in use");
		snprintf(l->reason, sizeof(l->reason), "%s", snap_errmsg());
		ctl_log(c, "control/%s is read-only: %s", l->name, snap_errmsg());
		rc = stage_open(NULL, &st, &f);
		if (rc == 0) {
			rc = meta_reset(c, l, &m);
			rc = rc ? rc : stage_put_meta(st, &m);
		}
	} else if (rc == 0) {
		rc = resume(c, l, st, &f, &m);
	}
	rc = rc ? rc : tree_base(c, &m, &b, &man);
	if (rc) {
		stage_close(st);
		return rc;
	}
	oo.read_only = l->ro;
	rc = ovl_open(&oo, st, &b, &l->o);
	manifest_free(&man);
	/* The first commit should not wait for the series' index. */
	if (rc == 0 && !l->ro && !m.full)
		ixkeep_load(l->ix, m.base_series);
	return rc;
}

static int stage_exists(const struct clabel *l)
{
	char path[PATH_MAX + 16];
	struct stat st;

	snprintf(path, sizeof(path), "%s/stage.db", l->stage_dir);
	return stat(path, &st) == 0;
}

static struct clabel *label_new(struct control *c, const char *name)
{
	struct clabel *l = calloc(1, sizeof(*l));

	if (!l) {
		snap_seterr(SNAP_ENOMEM, "out of memory");
		return NULL;
	}
	l->c = c;
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->ino = label_ino(name);
	snprintf(l->stage_dir, sizeof(l->stage_dir), "%s/%s", c->o.cfg.stage_root,
		 name);
	if (ixkeep_open(c->o.r, &l->ix)) {
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cv, NULL);
	return l;
}

static void label_free(struct clabel *l)
{
	lease_drop(l->lease);
	ixkeep_close(l->ix);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cv);
	free(l);
}

/* The label named name: known, on disk, in the repository, or (with
 * create) made now.  Its tree is opened on first use (label_tree). */
static int label_get(struct control *c, const char *name, int create,
		     struct clabel **out)
{
	struct clabel *l, *nl;
	char series[SERIES_MAX];
	int rc;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	for (l = c->labels; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	pthread_mutex_unlock(&c->lock);
	if (l) {
		if (create)
			return snap_seterr(SNAP_EEXIST, "control/%s exists",
					   name);
		*out = l;
		return 0;
	}
	rc = label_check(name);
	if (rc)
		return rc;
	nl = label_new(c, name);
	if (!nl)
		return SNAP_ENOMEM;
	if (!create && !stage_exists(nl)) {
		rc = repo_newest_series(c->o.r, name, series);
		if (rc) {
			label_free(nl);
			return rc == SNAP_ENOENT
				       ? snap_seterr(SNAP_ENOENT,
						     "no label %s", name)
				       : rc;
		}
	}
	pthread_mutex_lock(&c->lock);
	for (l = c->labels; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	if (!l) {
		nl->next = c->labels;
		c->labels = l = nl;
		nl = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (nl)
		label_free(nl);
	*out = l;
	return 0;
}

/* The label's tree, opened (with its stage) on first use. */
static int label_tree(struct control *c, struct clabel *l)
{
	int rc = 0;

	pthread_mutex_lock(&l->lock);
	if (!l->o)
		rc = label_open_tree(c, l);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

/* ---- jobs: commits, aborts, empty ------------------------------------- */

static void warn_cb(const char *msg, void *ctx)
{
	struct clabel *l = ctx;

	ctl_log(l->c, "control/%s: commit: %s", l->name, msg);
}

static void pack_cb(void *ctx, const uint8_t id[PACK_ID_LEN], uint64_t size)
{
	struct clabel *l = ctx;

	ovl_lock(l->o);
	stage_pack_add(ovl_stage(l->o), id);
	ovl_unlock(l->o);
	__atomic_fetch_add(&l->uploaded, size, __ATOMIC_RELAXED);
}

static int put_state(struct clabel *l, struct stage_meta *m, const char *state,
		     const char *err)
{
	int rc;

	snprintf(m->state, sizeof(m->state), "%s", state);
	snprintf(m->last_error, sizeof(m->last_error), "%s", err ? err : "");
	ovl_lock(l->o);
	rc = stage_put_meta(ovl_stage(l->o), m);
	ovl_unlock(l->o);
	return rc;
}

static int get_meta(struct clabel *l, struct stage_meta *m)
{
	int rc;

	ovl_lock(l->o);
	rc = stage_get_meta(ovl_stage(l->o), m);
	ovl_unlock(l->o);
	return rc;
}

/* ---- streaming (overlay.h) ------------------------------------------------ */

/* The session a label's files stream into: the backup its next commit
 * makes, with the kept index when it is loaded (a first write does not
 * wait for the index of a long series: until it is there, files are
 * staged whole).  Its series is recorded in the stage first, so stored
 * chunks are always of the series the stage names. */
static int stream_open(void *ctx, struct bsession **out)
{
	struct clabel *l = ctx;
	struct control *c = l->c;
	struct stage_meta m;
	struct index *ix = NULL;
	struct bsession *s = NULL;
	int rc, later = 0;

	SNAP_TRY(get_meta(l, &m));
	if (!m.full && m.base_series[0]) {
		ix = ixkeep_try(l->ix, m.base_series, &later);
		if (!ix)
			return later ? SNAP_EBUSY : SNAP_EUNSUPP;
	}
	struct bsession_opts so = {
		.label = l->name, .full = m.full,
		.base_series = !m.full && m.base_series[0] ? m.base_series
							  : NULL,
		.base_num = m.base_num, .new_series = m.stream_series,
		.next_on_conflict = c->o.cfg.next_on_conflict, .index = ix,
		.full_policy = &c->o.cfg.full, .info = warn_cb,
		.warn = warn_cb, .warn_ctx = l, .on_pack = pack_cb,
		.pack_ctx = l};

	rc = bsession_open(c->o.r, &so, &s);
	if (rc == 0 && m.stream_series[0] &&
	    strcmp(m.stream_series, bsession_series(s)))
		rc = snap_seterr(SNAP_EUNSUPP, "stored chunks are of another "
				 "series");
	if (rc == 0 && !m.stream_series[0]) {
		snprintf(m.stream_series, sizeof(m.stream_series), "%s",
			 bsession_series(s));
		rc = put_state(l, &m, m.state, m.last_error);
	}
	if (rc) {
		bsession_free(s);
		if (ix)
			ixkeep_put(l->ix, 1); /* nothing was stored yet */
		ctl_log(c, "control/%s: files are staged whole: %s", l->name,
			snap_errmsg());
		return rc;
	}
	l->stream_ix = ix != NULL;
	*out = s;
	return 0;
}

/* The stream session goes (its chunks stay valid: what was recorded is
 * uploaded), and the index it used with it: it may hold chunks of packs
 * that never arrived.  Gate closed. */
static void stream_drop(struct clabel *l)
{
	if (!l->o)
		return;
	bsession_free(ovl_stream_take(l->o));
	if (l->stream_ix)
		ixkeep_put(l->ix, 0);
	l->stream_ix = 0;
}

/* Starts the tree afresh from m's base (after a commit or an abort). */
static int restart_tree(struct control *c, struct clabel *l,
			const struct stage_meta *m)
{
	struct ovl_base b;
	struct manifest man;
	int rc;

	stream_drop(l);
	memset(&man, 0, sizeof(man));
	rc = tree_base(c, m, &b, &man);
	rc = rc ? rc : ovl_rebase(l->o, &b);
	manifest_free(&man);
	return rc;
}

/* The kernel forgets what it cached of a tree that started afresh.  Only
 * once the gate is open: a change waiting at the gate may hold the lock
 * of a directory the kernel needs for this. */
static void invalidate_tree(struct control *c, struct clabel *l)
{
	if (!c->o.inval_entry)
		return;
	ovl_each_name(l->o, c->o.inval_entry, c->o.ctx);
	c->o.inval_inode(c->o.ctx, l->ino);
}

static int run_commit(struct control *c, struct clabel *l)
{
	struct commit_opts co = {.label = l->name, .warn = warn_cb,
				 .warn_ctx = l, .on_pack = pack_cb,
				 .pack_ctx = l,
				 .next_on_conflict = c->o.cfg.next_on_conflict,
				 .full_policy = &c->o.cfg.full};
	struct backup_result res;
	struct stage_meta m;
	uint8_t tok[16];
	char msg[1024];
	double t0 = mono_sec();
	int rc;

	__atomic_store_n(&l->uploaded, 0, __ATOMIC_RELAXED);
	SNAP_TRY(get_meta(l, &m));
	SNAP_TRY(random_bytes(tok, sizeof(tok)));
	hex_encode(tok, sizeof(tok), m.token);
	m.committing = 1;
	/* The token is durable before anything is uploaded, so a daemon
	 * killed from here on can tell whether the commit landed. */
	rc = put_state(l, &m, "STATUS_BACKING_UP", NULL);
	if (rc == 0) {
		ovl_lock(l->o);
		rc = stage_flush_log(ovl_stage(l->o));
		ovl_unlock(l->o);
	}
	rc = rc ? rc : ovl_gate_close(l->o, c->o.cfg.commit_wait);
	if (rc == 0 && (rc = ovl_lost_commit(l->o)))
		ovl_gate_open(l->o);
	/* A lease that lapsed (the daemon was stopped) may have let a
	 * repair in: the stage's packs must all be there. */
	if (rc == 0 && !l->packs_lost && l->lease && lease_lapsed(l->lease)) {
		ovl_lock(l->o);
		rc = hold_lease(c, l, ovl_stage(l->o), &m, 1, &l->packs_lost);
		ovl_unlock(l->o);
		if (rc)
			ovl_gate_open(l->o);
	}
	if (rc == 0 && l->packs_lost) {
		ovl_gate_open(l->o);
		rc = snap_seterr(SNAP_ECORRUPT, "%zu of the packs this stage's "
				 "streamed files are in were removed from the "
				 "store (a 'check --repair' while this daemon "
				 "was stopped): those files are lost; abort the "
				 "stage (.snapfs/abort) and copy them again",
				 l->packs_lost);
	}
	if (rc) {
		snprintf(msg, sizeof(msg), "%s", snap_errmsg());
		m.committing = 0;
		put_state(l, &m, "STATUS_ERROR", msg);
		snap_seterr(rc, "%s", msg);
		return rc;
	}
	co.full = m.full;
	co.series = m.full ? "" : m.base_series;
	co.num = m.base_num;
	co.token = m.token;
	co.new_series = m.stream_series;
	co.stream_series = m.stream_series;
	/* The session files streamed into makes the backup, unless the
	 * store failed it: then a new one tries. */
	co.session = ovl_stream_take(l->o);
	if (co.session && bsession_error(co.session)) {
		bsession_free(co.session);
		co.session = NULL;
		if (l->stream_ix)
			ixkeep_put(l->ix, 0);
		l->stream_ix = 0;
	}
	if (!co.session)
		co.index = m.full || !m.base_series[0]
				   ? NULL
				   : ixkeep_get(l->ix, m.base_series);
	rc = commit_tree(l->o, c->o.r, c->o.c, &co, &res);
	if (co.index || l->stream_ix)
		ixkeep_put(l->ix, rc == 0 && !strcmp(res.series, m.base_series));
	l->stream_ix = 0;
	/* Ready for the next commit: kept, or loaded again. */
	ixkeep_load(l->ix, rc == 0 ? res.series : m.full ? "" : m.base_series);
	if (rc == 0) {
		ovl_lock(l->o);
		rc = stage_clear(ovl_stage(l->o));
		ovl_unlock(l->o);
		memcpy(m.base_series, res.series, SERIES_MAX);
		m.base_num = res.num;
		m.full = m.empty = m.committing = 0;
		m.token[0] = m.stream_series[0] = 0;
		lease_drop(l->lease);
		l->lease = NULL;
		l->packs_lost = 0;
		rc = rc ? rc : put_state(l, &m, STATUS_READY, NULL);
		rc = rc ? rc : restart_tree(c, l, &m);
		pthread_mutex_lock(&l->lock);
		l->last = res;
		l->have_last = 1;
		l->last_elapsed = mono_sec() - t0;
		l->last_end = (double)now_ns() / 1e9;
		pthread_mutex_unlock(&l->lock);
		ctl_log(c, "control/%s: committed %s/%u (%" PRIu64 " files, %" PRIu64
			" bytes stored anew, %.1f s)",
		     l->name, res.series, res.num, res.files, res.bytes_new,
		     mono_sec() - t0);
	} else {
		if (rc == SNAP_EEXIST)
			snap_preerr(rc, "conflict");
		snprintf(msg, sizeof(msg), "%s", snap_errmsg());
		ctl_log(c, "control/%s: commit failed: %s", l->name, msg);
		m.committing = 0;
		put_state(l, &m, "STATUS_ERROR", msg);
		/* The session's lease went with it; the stage keeps packs. */
		ovl_lock(l->o);
		if (hold_lease(c, l, ovl_stage(l->o), &m, 1, &l->packs_lost))
			ctl_log(c, "control/%s: %s", l->name, snap_errmsg());
		ovl_unlock(l->o);
		snap_seterr(rc, "%s", msg);
	}
	ovl_gate_open(l->o);
	if (rc == 0 && c->o.committed)
		c->o.committed(c->o.ctx, l->name, res.series, res.num);
	return rc;
}

struct packdel {
	struct control *c;
	const char *series;
	uint8_t (*v)[PACK_ID_LEN];
	size_t n, cap;
};

static int pack_collect(void *ctx, const uint8_t id[PACK_ID_LEN])
{
	struct packdel *p = ctx;

	SNAP_TRY(array_grow(&p->v, &p->cap, p->n, sizeof(*p->v), 16));
	memcpy(p->v[p->n++], id, PACK_ID_LEN);
	return 0;
}

/* Packs of failed commit attempts go with the stage, unless another
 * backup of the series was made since the stage began: its index may
 * have taken chunks from them, and check --repair must decide. */
static void delete_packs(struct control *c, struct clabel *l,
			 const struct stage_meta *m, struct packdel *p)
{
	const char *series = stage_series(m);
	uint32_t latest = 0;
	char key[200];
	int rc;

	if (!p->n || !series[0])
		return;
	rc = repo_latest_num(c->o.r, series, &latest);
	/* A series that streaming began has no backup yet. */
	if (strcmp(series, m->base_series) ? rc != SNAP_ENOENT
					   : rc || latest != m->base_num) {
		ctl_log(c, "control/%s: abort left %zu pack(s) of failed commits "
			"for 'snapctl check --repair': the series has new "
			"backups",
		     l->name, p->n);
		return;
	}
	for (size_t i = 0; i < p->n; i++) {
		pack_key(series, p->v[i], key, sizeof(key));
		if (store_del(c->o.r->st, key))
			ctl_log(c, "control/%s: abort: %s", l->name, snap_errmsg());
	}
}

static int run_abort(struct control *c, struct clabel *l)
{
	struct packdel p = {.c = c};
	struct stage_meta m, old;
	int rc = ovl_gate_close(l->o, 0);

	if (rc)
		return rc;
	/* Its uploads end first, so that every pack is known. */
	stream_drop(l);
	rc = get_meta(l, &m);
	if (rc == 0) {
		ovl_lock(l->o);
		rc = stage_pack_each(ovl_stage(l->o), pack_collect, &p);
		rc = rc ? rc : stage_clear(ovl_stage(l->o));
		ovl_unlock(l->o);
	}
	if (rc == 0) {
		old = m;
		lease_drop(l->lease);
		l->lease = NULL;
		l->packs_lost = 0;
		rc = meta_reset(c, l, &m);
		rc = rc ? rc : put_state(l, &m, "STATUS_IDLE", NULL);
		rc = rc ? rc : restart_tree(c, l, &m);
		if (rc == 0) {
			snprintf(l->found, sizeof(l->found), "new");
			l->reason[0] = 0;
			l->dropped = 0;
		}
	}
	ovl_gate_open(l->o);
	if (rc == 0) {
		invalidate_tree(c, l);
		/* The kept index has none of these packs (ixkeep.h). */
		delete_packs(c, l, &old, &p);
		ixkeep_load(l->ix, m.full ? "" : m.base_series);
	}
	free(p.v);
	return rc;
}

/* Arms or disarms "empty": the tree starts again without (or with) its
 * base. */
static int run_empty(struct control *c, struct clabel *l, int on)
{
	struct stage_meta m;
	int rc = ovl_gate_close(l->o, 0);

	if (rc)
		return rc;
	rc = ovl_dirty(l->o) ? snap_seterr(SNAP_EBUSY,
					   "control/%s: changes are staged "
					   "(abort them first)",
					   l->name)
			     : get_meta(l, &m);
	if (rc == 0) {
		m.empty = on;
		rc = put_state(l, &m, m.state, m.last_error);
		rc = rc ? rc : restart_tree(c, l, &m);
	}
	ovl_gate_open(l->o);
	if (rc == 0)
		invalidate_tree(c, l);
	return rc;
}

static void *label_main(void *arg)
{
	struct clabel *l = arg;
	struct control *c = l->c;

	pthread_mutex_lock(&l->lock);
	for (;;) {
		int job, rc;
		uint64_t seq;

		while (!l->job && !l->stop)
			pthread_cond_wait(&l->cv, &l->lock);
		if (!l->job)
			break;
		job = l->job;
		l->job = J_NONE;
		l->running = job;
		seq = l->seq;
		pthread_mutex_unlock(&l->lock);
		switch (job) {
		case J_COMMIT: rc = run_commit(c, l); break;
		case J_ABORT: rc = run_abort(c, l); break;
		case J_EMPTY: rc = run_empty(c, l, 1); break;
		default: rc = run_empty(c, l, 0); break;
		}
		if (rc)
			ctl_log(c, "control/%s: %s", l->name, snap_errmsg());
		pthread_mutex_lock(&l->lock);
		l->running = J_NONE;
		if (job == J_COMMIT) {
			for (uint64_t s = l->done + 1; s <= seq; s++)
				l->rc[s % RESULTS] = rc;
			l->done = seq;
		} else {
			l->job_rc = rc;
		}
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* Queues a job on the label's thread (started on first use).  For a
 * commit, *seq is the number flush waits for; other jobs are waited for
 * here.  l->lock held. */
static int queue_job(struct clabel *l, int job, uint64_t *seq)
{
	if (!l->th_live) {
		if (pthread_create(&l->th, NULL, label_main, l))
			return snap_seterr(SNAP_EIO, "cannot start a thread");
		l->th_live = 1;
	}
	if (job == J_COMMIT) {
		/* Asking while one runs means a commit after it; asking
		 * while one is queued joins that one. */
		if (l->job != J_COMMIT)
			l->seq++;
		l->job = J_COMMIT;
		*seq = l->seq;
		pthread_cond_broadcast(&l->cv);
		return 0;
	}
	if (l->running || l->job)
		return snap_seterr(SNAP_EBUSY, "control/%s: a commit is running",
				   l->name);
	l->job = job;
	pthread_cond_broadcast(&l->cv);
	while (l->job == job || l->running == job)
		pthread_cond_wait(&l->cv, &l->lock);
	return l->job_rc;
}

static int run_job(struct clabel *l, int job)
{
	int rc;

	pthread_mutex_lock(&l->lock);
	rc = queue_job(l, job, NULL);
	pthread_mutex_unlock(&l->lock);
	return rc;
}

/* ---- status ----------------------------------------------------------- */

static int drop_list(void *ctx, const char *path)
{
	return json_array_append_new(ctx, json_string(path)) ? SNAP_ENOMEM : 0;
}

/* A label's state and figures, as status and the metrics give them;
 * f's strings point into *m and l. */
static int label_facts(struct clabel *l, struct stage_meta *m,
		       struct control_label_info *f)
{
	int running;

	memset(f, 0, sizeof(*f));
	SNAP_TRY(get_meta(l, m));
	ovl_counts(l->o, &f->staged_files, &f->staged_bytes);
	pthread_mutex_lock(&l->lock);
	running = l->running == J_COMMIT;
	f->have_last = l->have_last;
	f->last_end = l->last_end;
	f->last_elapsed = l->last_elapsed;
	f->last_files = l->last.files;
	f->last_bytes_new = l->last.bytes_new;
	f->uploaded_bytes = running ? __atomic_load_n(&l->uploaded,
						      __ATOMIC_RELAXED)
			    : l->have_last ? l->last.bytes_new : 0;
	pthread_mutex_unlock(&l->lock);
	/* A stage with nothing staged reports what its last commit did;
	 * one with changes that is not committing is staging. */
	if (!running && strcmp(m->state, "STATUS_ERROR") && ovl_dirty(l->o))
		snprintf(m->state, sizeof(m->state), "STATUS_STAGING");
	f->label = l->name;
	f->state = running ? "STATUS_BACKING_UP" : m->state;
	return 0;
}

int control_each_label(struct control *c,
		       int (*fn)(void *ctx, const struct control_label_info *i),
		       void *ctx)
{
	struct clabel **v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	/* Counting a big stage takes a while: the labels are pinned (a
	 * removal waits, EBUSY) and read without control's lock, so
	 * lookups in control/ go on meanwhile. */
	pthread_mutex_lock(&c->lock);
	for (struct clabel *l = c->labels; l && rc == 0; l = l->next) {
		if (!l->o)
			continue;
		rc = array_grow(&v, &cap, n, sizeof(*v), 8);
		if (rc == 0) {
			pthread_mutex_lock(&l->lock);
			l->pins++;
			pthread_mutex_unlock(&l->lock);
			v[n++] = l;
		}
	}
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		struct control_label_info f;
		struct stage_meta m;

		if (rc == 0)
			rc = label_facts(v[i], &m, &f);
		if (rc == 0)
			rc = fn(ctx, &f);
		pthread_mutex_lock(&v[i]->lock);
		v[i]->pins--;
		pthread_mutex_unlock(&v[i]->lock);
	}
	free(v);
	return rc;
}

static int status_text(struct control *c, struct clabel *l, struct buf *out)
{
	struct control_label_info f;
	struct stage_meta m;
	json_t *j, *base = NULL, *dropped = json_array(), *last = NULL;
	int running, rc;
	char *s;

	SNAP_TRY(label_facts(l, &m, &f));
	running = !strcmp(f.state, "STATUS_BACKING_UP");
	ovl_lock(l->o);
	rc = dropped ? stage_dropped_each(ovl_stage(l->o), drop_list, dropped)
		     : SNAP_ENOMEM;
	ovl_unlock(l->o);
	pthread_mutex_lock(&l->lock);
	if (l->have_last)
		last = json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:f}", "series",
				 l->last.series, "backup_num", (int)l->last.num,
				 "files", (json_int_t)l->last.files, "bytes",
				 (json_int_t)l->last.bytes, "bytes_new",
				 (json_int_t)l->last.bytes_new, "bytes_read",
				 (json_int_t)l->last.bytes_read, "elapsed",
				 l->last_elapsed);
	pthread_mutex_unlock(&l->lock);
	if (m.base_series[0])
		base = json_pack("{s:s,s:i}", "series", m.base_series,
				 "backup_num", (int)m.base_num);
	j = json_pack("{s:s,s:s,s:s,s:s,s:o,s:i,s:b,s:b,s:I,s:I,s:I,s:s,s:o,"
		      "s:I,s:b}",
		      "label", l->name, "state", f.state,
		      "stage", l->found, "stage_reason", l->reason, "base",
		      base ? base : json_null(), "making",
		      m.full || !m.base_series[0] ? 1 : (int)m.base_num + 1,
		      "full", m.full, "empty", m.empty, "staged_files",
		      (json_int_t)f.staged_files, "staged_bytes",
		      (json_int_t)f.staged_bytes, "uploaded_bytes",
		      (json_int_t)f.uploaded_bytes,
		      "last_error", m.last_error, "dropped", dropped,
		      "dropped_count", (json_int_t)l->dropped, "read_only",
		      l->ro);
	if (j) {
		json_t *failed = json_array();
		char why[256];

		if (!failed || ovl_stream_error(l->o, why, sizeof(why),
						drop_list, failed))
			rc = snap_seterr(SNAP_ENOMEM, "out of memory");
		json_object_set_new(j, "stream_error",
				    why[0] ? json_string(why) : json_null());
		json_object_set_new(j, "stream_failed", failed);
	}
	if (j && last)
		json_object_set_new(j, "last_commit", last);
	else
		json_decref(last);
	if (j && m.full == 0 && m.base_series[0] && !running)
		json_object_set_new(j, "reused_bytes",
				    json_integer(l->have_last &&
						 l->last.bytes > l->last.bytes_read
							 ? (json_int_t)(l->last.bytes -
									l->last.bytes_read)
							 : 0));
	s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (rc == 0 && !s)
		rc = snap_seterr(SNAP_ENOMEM, "out of memory");
	out->len = 0;
	rc = rc ? rc : buf_addstr(out, s);
	rc = rc ? rc : buf_addc(out, '\n');
	free(s);
	return rc;
}

/* ---- attributes of the virtual names ---------------------------------- */

static void virt_attr(struct control *c, uint64_t ino, uint32_t mode,
		      struct vfs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->mode = mode;
	a->nlink = 1;
	a->uid = c->o.uid;
	a->gid = c->o.gid;
	a->size = S_ISDIR(mode) ? 4096 : 0;
	a->mtime_ns = a->ctime_ns = now_ns();
	a->timeout = TTL_VIRT;
}

static int armed(struct clabel *l, int k)
{
	struct stage_meta m;

	if (get_meta(l, &m))
		return 0;
	return k == V_FULL ? m.full : m.empty;
}

static int vnode_attr(struct control *c, struct clabel *l, int k,
		      struct vfs_attr *a)
{
	switch (k) {
	case V_LABEL:
		SNAP_TRY(label_tree(c, l));
		return ovl_getattr(l->o, l->ino, a);
	case V_SNAPFS:
		virt_attr(c, l->ino + k, S_IFDIR | 0700, a);
		return 0;
	case V_STATUS:
		virt_attr(c, l->ino + k, S_IFREG | 0400, a);
		return 0;
	case V_COMMIT:
	case V_ABORT:
		virt_attr(c, l->ino + k, S_IFREG | 0200, a);
		return 0;
	default:
		/* full and empty come and go with commits, which the kernel
		 * does not see: nothing cached of them, present or absent. */
		a->timeout = 0;
		SNAP_TRY(label_tree(c, l));
		if (!armed(l, k))
			return snap_seterr(SNAP_ENOENT, "not armed");
		virt_attr(c, l->ino + k, S_IFREG | 0600, a);
		a->timeout = 0;
		return 0;
	}
}

/* The tree's label of a number, opened, or the error for the number. */
static int tree_of(struct control *c, uint64_t ino, struct clabel **out,
		   int *k)
{
	struct clabel *l = find_ino(c, ino, k);

	if (!l)
		return snap_seterr(SNAP_ENOENT, "inode %" PRIu64 " is unknown",
				   ino);
	*out = l;
	return label_tree(c, l);
}

/* ---- lookups ---------------------------------------------------------- */

int control_lookup(struct control *c, uint64_t parent, const char *name,
		   struct vfs_attr *a)
{
	struct clabel *l;
	int k, rc;

	memset(a, 0, sizeof(*a));
	a->timeout = TTL_VIRT;
	if (parent == c->o.ino) {
		rc = label_get(c, name, 0, &l);
		if (rc == SNAP_EINVAL)
			rc = snap_seterr(SNAP_ENOENT, "not a label");
		return rc ? rc : vnode_attr(c, l, V_LABEL, a);
	}
	SNAP_TRY(tree_of(c, parent, &l, &k));
	if (k == V_LABEL && strcmp(name, SNAPFS_DIR) == 0)
		return vnode_attr(c, l, V_SNAPFS, a);
	if (k == V_SNAPFS) {
		for (int v = V_STATUS; v < V_COUNT; v++)
			if (strcmp(name, vname[v]) == 0)
				return vnode_attr(c, l, v, a);
		return snap_seterr(SNAP_ENOENT, "no such entry: %s", name);
	}
	if (k > V_LABEL)
		return snap_seterr(SNAP_ENOTDIR, "not a directory");
	return ovl_lookup(l->o, parent, name, a);
}

void control_forget(struct control *c, uint64_t ino, uint64_t n)
{
	struct clabel *l;
	int k;

	if (is_virtual(ino) || ino == c->o.ino)
		return; /* they live as long as the mount */
	l = find_ino(c, ino, &k);
	if (l && l->o)
		ovl_forget(l->o, ino, n);
}

int control_getattr(struct control *c, uint64_t ino, struct vfs_attr *a)
{
	struct clabel *l;
	int k;

	if (ino == c->o.ino) {
		virt_attr(c, ino, S_IFDIR | 0700, a);
		return 0;
	}
	SNAP_TRY(tree_of(c, ino, &l, &k));
	return k >= 0 ? vnode_attr(c, l, k, a) : ovl_getattr(l->o, ino, a);
}

int control_readlink(struct control *c, uint64_t ino, char **target)
{
	struct clabel *l;
	int k;

	*target = NULL;
	SNAP_TRY(tree_of(c, ino, &l, &k));
	if (k >= 0)
		return snap_seterr(SNAP_EINVAL, "not a symbolic link");
	return ovl_readlink(l->o, ino, target);
}

/* ---- listings --------------------------------------------------------- */

static int names_add(struct cdir *d, const char *name)
{
	char **v;

	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->names[i], name) == 0)
			return 0;
	v = realloc(d->names, (d->n + 1) * sizeof(*v));
	if (!v)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	d->names = v;
	if (!(v[d->n] = strdup(name)))
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	d->n++;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* control/: the catalog's labels, the known ones, the stages on disk. */
static int list_labels(struct control *c, struct cdir *d,
		       const char *const *labels, size_t n)
{
	DIR *dir;
	struct dirent *de;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = names_add(d, labels[i]);
	pthread_mutex_lock(&c->lock);
	for (struct clabel *l = c->labels; l && rc == 0; l = l->next)
		rc = names_add(d, l->name);
	pthread_mutex_unlock(&c->lock);
	dir = opendir(c->o.cfg.stage_root);
	while (rc == 0 && dir && (de = readdir(dir))) {
		char path[PATH_MAX];
		struct stat st;

		if (de->d_name[0] == '.' || label_check(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s/stage.db", c->o.cfg.stage_root,
			 de->d_name);
		if (stat(path, &st) == 0)
			rc = names_add(d, de->d_name);
	}
	if (dir)
		closedir(dir);
	if (rc == 0 && d->n)
		qsort(d->names, d->n, sizeof(*d->names), cmp_name);
	return rc;
}

int control_opendir(struct control *c, uint64_t ino,
		    const char *const *labels, size_t nlabels,
		    struct cdir **out)
{
	struct cdir *d = calloc(1, sizeof(*d));
	struct clabel *l = NULL;
	int k = -1, rc = 0;

	*out = NULL;
	if (!d)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	d->self = ino;
	if (ino == c->o.ino) {
		d->kind = V_LABEL - 1;
		d->parent = 1;
		rc = list_labels(c, d, labels, nlabels);
	} else {
		rc = tree_of(c, ino, &l, &k);
		d->l = l;
		d->kind = k;
		if (rc == 0 && k == V_SNAPFS) {
			d->parent = l->ino;
			for (int v = V_STATUS; v < V_COUNT && rc == 0; v++)
				if (v < V_FULL || armed(l, v))
					rc = names_add(d, vname[v]);
		} else if (rc == 0 && k <= V_LABEL) {
			rc = ovl_opendir(l->o, ino, &d->od);
		} else if (rc == 0) {
			rc = snap_seterr(SNAP_ENOTDIR, "not a directory");
		}
	}
	if (rc) {
		control_closedir(c, d);
		return rc;
	}
	*out = d;
	return 0;
}

int control_dirent(struct control *c, struct cdir *d, size_t idx, int plus,
		   const char **name, struct vfs_attr *a)
{
	struct clabel *l;
	int rc;

	(void)plus;
	if (d->od) {
		rc = ovl_dirent(d->l->o, d->od, idx, plus, name, a);
		if (rc == 0 && idx == 1 && d->kind == V_LABEL)
			a->ino = c->o.ino;
		return rc;
	}
	if (idx < 2) {
		*name = idx ? ".." : ".";
		virt_attr(c, idx ? d->parent : d->self, S_IFDIR | 0700, a);
		return 0;
	}
	idx -= 2;
	if (idx >= d->n)
		return 1;
	*name = d->names[idx];
	if (!d->l) {
		rc = label_get(c, d->names[idx], 0, &l);
		rc = rc ? rc : vnode_attr(c, l, V_LABEL, a);
		return rc == SNAP_ENOENT ? VFS_DIRENT_SKIP : rc;
	}
	for (int v = V_STATUS; v < V_COUNT; v++)
		if (strcmp(d->names[idx], vname[v]) == 0)
			return vnode_attr(c, d->l, v, a) == 0 ? 0
							       : VFS_DIRENT_SKIP;
	return VFS_DIRENT_SKIP;
}

void control_closedir(struct control *c, struct cdir *d)
{
	if (!d)
		return;
	if (d->od)
		ovl_closedir(d->l->o, d->od);
	for (size_t i = 0; i < d->n; i++)
		free(d->names[i]);
	free(d->names);
	free(d);
	(void)c;
}

/* ---- changes ---------------------------------------------------------- */

/* The label whose tree holds directory dir, for a change in it: refused
 * in control/ itself and in .snapfs/. */
static int tree_dir(struct control *c, uint64_t dir, const char *name,
		    struct clabel **l)
{
	int k;

	if (dir == c->o.ino)
		return snap_seterr(SNAP_EPERM, "control/%s: only labels "
				   "(directories) can be made in control/",
				   name);
	SNAP_TRY(tree_of(c, dir, l, &k));
	if (k > V_LABEL)
		return snap_seterr(SNAP_EPERM, "control/%s/%s/%s: .snapfs/ "
				   "holds only its own names",
				   (*l)->name, SNAPFS_DIR, name);
	if (k == V_LABEL && strcmp(name, SNAPFS_DIR) == 0)
		return snap_seterr(SNAP_EEXIST, "%s is reserved", SNAPFS_DIR);
	return 0;
}

int control_mknod(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		  const char *name, uint32_t mode, uint32_t rmajor,
		  uint32_t rminor, struct vfs_attr *a)
{
	struct clabel *l;
	int rc = tree_dir(c, dir, name, &l);

	rc = rc ? rc : ovl_mknod(l->o, x, dir, name, mode, rmajor, rminor, a);
	return logged(c, rc);
}

int control_mkdir(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		  const char *name, uint32_t mode, struct vfs_attr *a)
{
	struct clabel *l;
	int rc;

	if (dir == c->o.ino) {
		rc = label_get(c, name, 1, &l);
		rc = rc ? rc : label_tree(c, l);
		rc = rc ? rc : vnode_attr(c, l, V_LABEL, a);
		if (rc == 0)
			ctl_log(c, "control/%s: new label", name);
		return logged(c, rc);
	}
	rc = tree_dir(c, dir, name, &l);
	rc = rc ? rc : ovl_mkdir(l->o, x, dir, name, mode, a);
	return logged(c, rc);
}

int control_symlink(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		    const char *name, const char *target, struct vfs_attr *a)
{
	struct clabel *l;
	int rc = tree_dir(c, dir, name, &l);

	rc = rc ? rc : ovl_symlink(l->o, x, dir, name, target, a);
	return logged(c, rc);
}

int control_link(struct control *c, uint64_t ino, uint64_t dir,
		 const char *name, struct vfs_attr *a)
{
	struct clabel *l, *l2;
	int k, rc = tree_dir(c, dir, name, &l);

	rc = rc ? rc : tree_of(c, ino, &l2, &k);
	if (rc == 0 && (l2 != l || k >= 0))
		rc = snap_seterr(SNAP_EXDEV, "%s: links stay inside one label",
				 name);
	rc = rc ? rc : ovl_link(l->o, ino, dir, name, a);
	return logged(c, rc);
}

/* Removes a label made with mkdir that holds nothing and has no series. */
static int remove_label(struct control *c, const char *name)
{
	struct clabel *l, **pp;
	char series[SERIES_MAX];
	int rc = label_get(c, name, 0, &l);

	rc = rc ? rc : label_tree(c, l);
	if (rc)
		return rc;
	if (repo_newest_series(c->o.r, name, series) == 0 || ovl_dirty(l->o))
		return snap_seterr(SNAP_ENOTEMPTY, "control/%s has backups or "
				   "staged changes", name);
	pthread_mutex_lock(&l->lock);
	rc = l->running || l->th_live ? SNAP_EBUSY : 0;
	pthread_mutex_unlock(&l->lock);
	if (rc)
		return snap_seterr(rc, "control/%s is busy", name);
	pthread_mutex_lock(&c->lock);
	pthread_mutex_lock(&l->lock);
	rc = l->pins ? SNAP_EBUSY : 0;
	pthread_mutex_unlock(&l->lock);
	for (pp = &c->labels; rc == 0 && *pp && *pp != l; pp = &(*pp)->next)
		;
	if (rc == 0 && *pp)
		*pp = l->next;
	pthread_mutex_unlock(&c->lock);
	if (rc)
		return snap_seterr(rc, "control/%s is busy", name);
	stream_drop(l);
	ovl_close(l->o);
	rc = l->ro ? 0 : stage_remove(l->stage_dir);
	label_free(l);
	return rc;
}

int control_unlink(struct control *c, uint64_t dir, const char *name)
{
	struct clabel *l;
	int k, rc;

	if (dir != c->o.ino && (rc = tree_of(c, dir, &l, &k)) == 0 &&
	    k == V_SNAPFS) {
		/* Removing full or empty disarms it. */
		if (strcmp(name, "full") == 0) {
			struct stage_meta m;

			rc = ovl_dirty(l->o) ? snap_seterr(SNAP_EBUSY,
							   "changes are "
							   "staged")
					     : get_meta(l, &m);
			if (rc == 0 && !m.full)
				rc = snap_seterr(SNAP_ENOENT, "not armed");
			if (rc == 0) {
				m.full = 0;
				rc = put_state(l, &m, m.state, m.last_error);
			}
		} else if (strcmp(name, "empty") == 0) {
			rc = armed(l, V_EMPTY) ? run_job(l, J_UNEMPTY)
					       : snap_seterr(SNAP_ENOENT,
							     "not armed");
		} else {
			rc = snap_seterr(SNAP_EPERM, "control/%s/.snapfs/%s "
					 "cannot be removed", l->name, name);
		}
		return logged(c, rc);
	}
	rc = tree_dir(c, dir, name, &l);
	rc = rc ? rc : ovl_unlink(l->o, dir, name);
	return logged(c, rc);
}

int control_rmdir(struct control *c, uint64_t dir, const char *name)
{
	struct clabel *l;
	int rc;

	if (dir == c->o.ino)
		return logged(c, remove_label(c, name));
	rc = tree_dir(c, dir, name, &l);
	rc = rc ? rc : ovl_rmdir(l->o, dir, name);
	return logged(c, rc);
}

int control_rename(struct control *c, uint64_t dir, const char *name,
		   uint64_t ndir, const char *nname, unsigned flags)
{
	struct clabel *l, *l2;
	int rc = tree_dir(c, dir, name, &l);

	rc = rc ? rc : tree_dir(c, ndir, nname, &l2);
	if (rc == 0 && l != l2)
		rc = snap_seterr(SNAP_EXDEV, "%s: renames stay inside one "
				 "label", name);
	rc = rc ? rc : ovl_rename(l->o, dir, name, ndir, nname, flags);
	return logged(c, rc);
}

int control_setattr(struct control *c, uint64_t ino,
		    const struct vfs_setattr *sa, struct cfile *f,
		    struct vfs_attr *a)
{
	struct clabel *l;
	int k, rc;

	if (ino == c->o.ino)
		return control_getattr(c, ino, a);
	rc = tree_of(c, ino, &l, &k);
	if (rc)
		return logged(c, rc);
	/* touch(1) on a command file sets its times: nothing to keep. */
	if (k > V_LABEL)
		return vnode_attr(c, l, k, a);
	rc = ovl_setattr(l->o, ino, sa, f && f->of ? f->of : NULL, a);
	return logged(c, rc);
}

int control_getxattr(struct control *c, uint64_t ino, const char *name,
		     struct buf *out)
{
	struct clabel *l;
	int k;

	if (ino == c->o.ino)
		return snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	SNAP_TRY(tree_of(c, ino, &l, &k));
	if (k > V_LABEL)
		return snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	return ovl_getxattr(l->o, ino, name, out);
}

int control_listxattr(struct control *c, uint64_t ino, struct buf *out)
{
	struct clabel *l;
	int k;

	out->len = 0;
	if (ino == c->o.ino)
		return 0;
	SNAP_TRY(tree_of(c, ino, &l, &k));
	return k > V_LABEL ? 0 : ovl_listxattr(l->o, ino, out);
}

int control_setxattr(struct control *c, uint64_t ino, const char *name,
		     const void *val, size_t len, int flags)
{
	struct clabel *l;
	int k, rc;

	if (ino == c->o.ino)
		return logged(c, snap_seterr(SNAP_EPERM, "control/ keeps no "
					     "attributes"));
	rc = tree_of(c, ino, &l, &k);
	if (rc == 0 && k > V_LABEL)
		rc = snap_seterr(SNAP_EPERM, ".snapfs/ keeps no attributes");
	rc = rc ? rc : ovl_setxattr(l->o, ino, name, val, len, flags);
	return logged(c, rc);
}

int control_removexattr(struct control *c, uint64_t ino, const char *name)
{
	struct clabel *l;
	int k, rc;

	if (ino == c->o.ino)
		return snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	rc = tree_of(c, ino, &l, &k);
	if (rc == 0 && k > V_LABEL)
		rc = snap_seterr(SNAP_ENODATA, "no attribute %s", name);
	rc = rc ? rc : ovl_removexattr(l->o, ino, name);
	return logged(c, rc);
}

/* ---- files ------------------------------------------------------------ */

/* Opening a name of .snapfs/: status is read; the others act when
 * opened for writing. */
static int open_virtual(struct control *c, struct clabel *l, int k, int flags,
			struct cfile *f, int *direct)
{
	int wr = (flags & O_ACCMODE) != O_RDONLY, rc = 0;
	struct stage_meta m;

	f->kind = k;
	*direct = 1;
	switch (k) {
	case V_STATUS:
		if (wr)
			return snap_seterr(SNAP_EACCES, "status is read-only");
		return status_text(c, l, &f->text);
	case V_COMMIT:
		if (!wr)
			return 0;
		if (l->ro)
			return snap_seterr(SNAP_EROFS, "control/%s: %s", l->name,
					   l->reason);
		pthread_mutex_lock(&l->lock);
		rc = queue_job(l, J_COMMIT, &f->seq);
		if (rc == 0)
			l->commit_fds++;
		pthread_mutex_unlock(&l->lock);
		return rc;
	case V_ABORT:
		if (wr && l->ro)
			return snap_seterr(SNAP_EROFS, "control/%s: %s", l->name,
					   l->reason);
		return wr ? run_job(l, J_ABORT) : 0;
	case V_FULL:
	case V_EMPTY:
		if (!wr)
			return armed(l, k) ? 0 : snap_seterr(SNAP_ENOENT,
							     "not armed");
		if (l->ro)
			return snap_seterr(SNAP_EROFS, "control/%s: %s", l->name,
					   l->reason);
		if (ovl_dirty(l->o))
			return snap_seterr(SNAP_EBUSY,
					   "control/%s/.snapfs/%s: changes are "
					   "staged already (abort them first)",
					   l->name, vname[k]);
		if (k == V_EMPTY)
			return armed(l, k) ? 0 : run_job(l, J_EMPTY);
		rc = get_meta(l, &m);
		if (rc == 0 && !m.full) {
			m.full = 1;
			rc = put_state(l, &m, m.state, m.last_error);
		}
		return rc;
	default:
		return snap_seterr(SNAP_EISDIR, "is a directory");
	}
}

static struct cfile *cfile_new(struct clabel *l)
{
	struct cfile *f = calloc(1, sizeof(*f));

	if (!f)
		snap_seterr(SNAP_ENOMEM, "out of memory");
	else
		f->l = l;
	return f;
}

int control_create(struct control *c, const struct ovl_ctx *x, uint64_t dir,
		   const char *name, uint32_t mode, int flags,
		   struct vfs_attr *a, struct cfile **out, int *direct)
{
	struct clabel *l;
	struct cfile *f;
	int k, rc;

	*out = NULL;
	*direct = 0;
	if (dir != c->o.ino && tree_of(c, dir, &l, &k) == 0 && k == V_SNAPFS) {
		/* touch .snapfs/full: create means arm. */
		for (int v = V_STATUS; v < V_COUNT; v++)
			if (strcmp(name, vname[v]) == 0) {
				if (!(f = cfile_new(l)))
					return SNAP_ENOMEM;
				rc = open_virtual(c, l, v, flags | O_WRONLY, f,
						  direct);
				rc = rc ? rc : vnode_attr(c, l, v, a);
				if (rc) {
					buf_free(&f->text);
					free(f);
					return logged(c, rc);
				}
				*out = f;
				return 0;
			}
		return logged(c, snap_seterr(SNAP_EPERM, ".snapfs/ holds only "
					     "its own names"));
	}
	rc = tree_dir(c, dir, name, &l);
	if (rc)
		return logged(c, rc);
	if (!(f = cfile_new(l)))
		return SNAP_ENOMEM;
	f->kind = -1;
	rc = ovl_create(l->o, x, dir, name, mode, flags, a, &f->of);
	if (rc) {
		free(f);
		return logged(c, rc);
	}
	*out = f;
	return 0;
}

int control_open_file(struct control *c, uint64_t ino, int flags,
		      struct cfile **out, int *direct)
{
	struct clabel *l;
	struct cfile *f;
	int k, rc;

	*out = NULL;
	*direct = 0;
	rc = tree_of(c, ino, &l, &k);
	if (rc)
		return logged(c, rc);
	if (!(f = cfile_new(l)))
		return SNAP_ENOMEM;
	if (k >= 0)
		rc = open_virtual(c, l, k, flags, f, direct);
	else {
		f->kind = -1;
		rc = ovl_open_file(l->o, ino, flags, &f->of);
	}
	if (rc) {
		buf_free(&f->text);
		free(f);
		return logged(c, rc);
	}
	*out = f;
	return 0;
}

int control_read(struct control *c, struct cfile *f, uint64_t off,
		 size_t size, struct vfs_read *rd)
{
	(void)c;
	if (f->of)
		return ovl_read(f->l->o, f->of, off, size, rd);
	return fread_mem(f->text.p, f->text.len, off, size, rd);
}

void control_read_done(struct control *c, struct vfs_read *rd)
{
	fread_done(c->o.c, rd);
}

int control_write(struct control *c, struct cfile *f, const void *buf,
		  size_t n, uint64_t off, void *req)
{
	if (!f->of)
		return 0; /* echo > .snapfs/commit: the open did it */
	return logged(c, ovl_write(f->l->o, f->of, buf, n, off, req));
}

int control_flush(struct control *c, struct cfile *f)
{
	struct clabel *l = f->l;
	int rc;

	if (f->of)
		return logged(c, ovl_flush(l->o, f->of));
	if (f->kind != V_COMMIT || !f->seq)
		return 0;
	pthread_mutex_lock(&l->lock);
	while (l->done < f->seq)
		pthread_cond_wait(&l->cv, &l->lock);
	rc = l->rc[f->seq % RESULTS];
	pthread_mutex_unlock(&l->lock);
	/* Every close of the descriptor tells (touch(1) dups it and
	 * reports only the last close). */
	if (rc)
		snap_seterr(rc, "control/%s: commit failed (see .snapfs/status)",
			    l->name);
	return rc;
}

int control_flush_slow(struct control *c, struct cfile *f)
{
	(void)c;
	if (f->of)
		return ovl_flush_slow(f->l->o, f->of);
	return f->kind == V_COMMIT && f->seq;
}

int control_fsync(struct control *c, struct cfile *f, int datasync)
{
	if (!f->of)
		return 0;
	return logged(c, ovl_fsync(f->l->o, f->of, datasync));
}

int control_file_src(struct control *c, struct cfile *f, struct ovl_src *src)
{
	(void)c;
	if (!f->of)
		return snap_seterr(SNAP_EUNSUPP, "not a file of the tree");
	return ovl_file_src(f->l->o, f->of, src);
}

int control_copy_ref(struct control *c, struct cfile *f,
		     const struct ovl_src *src, uint64_t off_in,
		     uint64_t off_out, uint64_t len, uint64_t *copied)
{
	int rc;

	*copied = 0;
	if (!f->of)
		return snap_seterr(SNAP_EUNSUPP, "not a file of the tree");
	rc = ovl_copy_ref(f->l->o, f->of, src, off_in, off_out, len, copied);
	/* Not by reference is not a failure: the kernel copies bytes. */
	return rc == SNAP_EUNSUPP ? rc : logged(c, rc);
}

int control_fallocate(struct control *c, struct cfile *f, int mode,
		      uint64_t off, uint64_t len)
{
	if (!f->of)
		return snap_seterr(SNAP_EPERM, "not a file of the tree");
	return logged(c, ovl_fallocate(f->l->o, f->of, mode, off, len));
}

void control_release(struct control *c, struct cfile *f)
{
	(void)c;
	if (!f)
		return;
	if (f->of)
		ovl_release(f->l->o, f->of);
	if (f->kind == V_COMMIT && f->seq) {
		pthread_mutex_lock(&f->l->lock);
		f->l->commit_fds--;
		pthread_cond_broadcast(&f->l->cv);
		pthread_mutex_unlock(&f->l->lock);
	}
	buf_free(&f->text);
	free(f);
}

const char *control_file_name(const struct cfile *f)
{
	return f->of ? ovl_file_name(f->of) : "control/.snapfs";
}

int control_statfs(struct control *c, uint64_t ino, struct statvfs *sv)
{
	struct clabel *l;
	int k;

	if (ino == c->o.ino || tree_of(c, ino, &l, &k) || l->ro)
		return snap_seterr(SNAP_ENOENT, "no stage");
	return ovl_statfs(l->o, sv);
}

/* ---- lifetime --------------------------------------------------------- */

static int jobs_busy(const struct clabel *l)
{
	return l->running || l->job;
}

/* commit_idle: a label with staged changes, no writer and no change for
 * that long is committed, once per set of changes (a commit that fails
 * is not retried until something changes). */
static void idle_commit(struct control *c, struct clabel *l)
{
	double idle = 0;
	uint64_t seq, at = ovl_quiet(l->o, &idle);

	if (!at || idle < c->o.cfg.commit_idle)
		return;
	pthread_mutex_lock(&l->lock);
	if (at != l->idle_tried && !jobs_busy(l) && !l->stop &&
	    queue_job(l, J_COMMIT, &seq) == 0) {
		l->idle_tried = at;
		ctl_log(c, "control/%s: no change for %.0f s: committing",
			l->name, idle);
	}
	pthread_mutex_unlock(&l->lock);
}

static void *sync_main(void *arg)
{
	struct control *c = arg;
	double every = SYNC_EVERY;

	/* Idle commits should not come much later than asked. */
	if (c->o.cfg.commit_idle > 0 && c->o.cfg.commit_idle / 4 < every)
		every = c->o.cfg.commit_idle / 4 < 0.25 ? 0.25
						      : c->o.cfg.commit_idle / 4;
	double synced = mono_sec();

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		struct timespec ts;
		int sync;

		deadline_after(every, &ts);
		pthread_cond_timedwait(&c->cv, &c->lock, &ts);
		sync = mono_sec() - synced >= SYNC_EVERY - 0.01;
		if (sync)
			synced = mono_sec();
		for (struct clabel *l = c->labels; l && !c->stop; l = l->next) {
			uint64_t refused = 0;

			if (sync && l->o && ovl_sync(l->o, &refused))
				ctl_log(c, "control/%s: %s", l->name,
				     snap_errmsg());
			if (refused)
				ctl_log(c, "control/%s: the stage holds "
					"stage_max or more: %" PRIu64 " write(s) "
					"refused with ENOSPC; commit or abort "
					"to go on", l->name, refused);
			if (l->o && !l->ro && c->o.cfg.commit_idle > 0)
				idle_commit(c, l);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int control_open(const struct control_opts *o, struct control **out)
{
	struct control *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return snap_seterr(SNAP_ENOMEM, "out of memory");
	c->o = *o;
	atomic_init(&c->holds.n, 0);
	c->holds.max = o->cfg.max_held;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	fingerprint(o->r, c->fp);
	c->syncer_live = pthread_create(&c->syncer, NULL, sync_main, c) == 0;
	*out = c;
	return 0;
}

static int fds_busy(const struct clabel *l)
{
	return l->commit_fds > 0;
}

/* Waits until busy() is false for every label, or the deadline (0: none)
 * passes. */
static void wait_labels(struct control *c, int (*busy)(const struct clabel *),
			double deadline)
{
	for (;;) {
		struct clabel *b = NULL;

		pthread_mutex_lock(&c->lock);
		for (struct clabel *l = c->labels; l && !b; l = l->next) {
			pthread_mutex_lock(&l->lock);
			if (busy(l))
				b = l;
			pthread_mutex_unlock(&l->lock);
		}
		pthread_mutex_unlock(&c->lock);
		if (!b || (deadline && mono_sec() >= deadline))
			return;
		pthread_mutex_lock(&b->lock);
		while (busy(b) && !(deadline && mono_sec() >= deadline)) {
			struct timespec ts;

			deadline_after(1, &ts);
			pthread_cond_timedwait(&b->cv, &b->lock, &ts);
		}
		pthread_mutex_unlock(&b->lock);
	}
}

void control_drain(struct control *c)
{
	wait_labels(c, jobs_busy, 0);
	/* The committing process may close its descriptor more than once
	 * (touch(1) does) and hears the outcome at each: give it a little
	 * while to. */
	wait_labels(c, fds_busy, mono_sec() + 10);
}

void control_close(struct control *c)
{
	struct clabel *l, *next;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	if (c->syncer_live)
		pthread_join(c->syncer, NULL);
	for (l = c->labels; l; l = next) {
		next = l->next;
		pthread_mutex_lock(&l->lock);
		l->stop = 1;
		pthread_cond_broadcast(&l->cv);
		pthread_mutex_unlock(&l->lock);
		/* An unmount during a commit waits for it. */
		if (l->th_live)
			pthread_join(l->th, NULL);
		stream_drop(l);
		ovl_close(l->o);
		label_free(l);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	free(c);
}
