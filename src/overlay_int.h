/*
 * overlay_int.h - the insides of a label's tree (overlay.h), shared by
 * overlay.c (nodes, numbers, the base side, copy-up, listings, commits'
 * needs), overlay_ns.c (namespace changes), overlay_attr.c (attributes
 * and xattrs) and overlay_file.c (files).  Not an API: nothing else
 * includes it.  Everything here runs with o->lock held unless it says
 * otherwise.
 */
#ifndef SNAPFS_OVERLAY_INT_H
#define SNAPFS_OVERLAY_INT_H

#include <pthread.h>
#include <string.h>

#include "bufpool.h"
#include "itab.h"
#include "overlay.h"
#include "vfs.h"

/* Sub-ranges of the control numbers: hashed base entries; the counter
 * values that created entries were numbered with until format 3 of the
 * stage (label-local, so two labels repeated each other's); created
 * entries now: a label's counter mixed with its directory's number. */
#define INO_HASH_MASK ((1ULL << 61) - 1)
#define INO_HASH_BASE (OVL_INO_MIN + (1ULL << 40))
#define INO_NEW_BASE (OVL_INO_MIN + (1ULL << 61))
#define INO_MIX_BASE (INO_NEW_BASE + (1ULL << 60))
#define INO_STORED (1ULL << 63)
/* The kernel's view of control/ changes only through this mount, except
 * where the tree starts afresh (abort, empty), which invalidates it; a
 * second keeps the cost of the few attributes we change behind the
 * kernel's back (ACL coupling) bounded. */
#define TTL_CTL 1.0

struct onode {
	uint64_t ino, nlookup;
	uint64_t parent; /* the directory it was last found in */
	char *name;      /* its name there */
	uint64_t group;  /* its group root (itself for a group root; 0 for
			    the label directory) */
	uint64_t gen;    /* o->gen when its base side was resolved */
	uint8_t staged, unlinked, stale;
	struct sinode si; /* staged: the row, authoritative */
	/* base side (unstaged entries; staged ones keep it as origin) */
	uint8_t type;
	struct vfs_attr attr;
	uint8_t bkind;   /* directories */
	struct ref tree;
	uint8_t has_loc; /* its entry: pname in ptree */
	struct ref ptree;
	char *pname;
	uint64_t hl;
	char *target;
	/* open files */
	int opens, writers;
	/* Written by nobody since its content was last made safe (an
	 * fsync, a close): the next write marks it WS_WRITING first. */
	int settled;
	int serr;    /* streaming failed: flush and fsync say so once */
	int nostream; /* a stream of it stopped: it is staged whole */
	int inplace;  /* filled by reference: its first write may stream */
	uint64_t *fly; /* offsets of its writes in flight */
	size_t nfly, flycap;
	/* data/<ino>'s blocks, as of o->dchanges == blocks_at */
	uint64_t blocks, blocks_at;
};

/* Streaming (overlay_stream.c). */
#define STREAM_WINDOW (8u << 20) /* reorder room behind the furthest write */
#define STREAM_STEP (8u << 20)   /* bytes cut per pass, at least */
#define STREAM_START (16u << 20) /* files smaller are staged whole */
#define STREAM_BUSY 2            /* passes at once, per label */
#define STREAM_FILES 16          /* files streaming at once, per label */
#define STREAM_AHEAD (48u << 20) /* a writer further ahead of the cut waits */

struct ostream {
	uint64_t ino;
	uint64_t chunked; /* chunks are cut up to here */
	uint64_t claim;   /* a pass reads [chunked, claim) */
	uint64_t hi;      /* the end of the furthest write */
	uint64_t dlo, dhi; /* written while a pass read it: dropped after */
	int busy, stopped, sealed;
	struct chunk *pend; /* stored, their pack not yet uploaded */
	size_t npend, pcap;
};

/* A write held back until a pass ends (ovl_write()). */
struct opark {
	struct opark *next;
	uint64_t ino;
	void *req;
	size_t n;
};

struct hlmap {
	uint64_t group, hl, ino;
};

struct ovl {
	struct ovl_opts o;
	char label[LABEL_MAX + 1];
	struct stage *st;
	struct ovl_base base;
	struct manifest m;    /* the base's manifest (base.m points here) */
	struct tree gtree;    /* the base's groups as a directory */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct itab nodes;
	uint64_t gen;
	uint64_t next_ino, ino_reserved; /* counters (see mixed_ino) */
	uint64_t resv_rollbacks; /* stage_rollbacks() at the reservation */
	int closed_gate; /* a commit runs: changes wait */
	int writers;     /* handles open for writing */
	uint64_t changes, synced; /* changes made, and when last synced */
	double changed_at;        /* mono_sec() of the last change */
	struct hlmap *hls; /* copied-up base hardlinks */
	size_t nhls, hlcap;
	/* streaming */
	struct bsession *ss;
	int ss_state;     /* SS_* */
	char sseries[SERIES_MAX];
	struct bufpool passbufs; /* a pass's read buffer, reused */
	struct ostream **sms;
	size_t nsms, smcap;
	int nbusy, swaiting;
	struct opark *parked; /* only while nbusy */
	char serrmsg[256]; /* why streaming stopped */
	char *sfailed[STREAM_FILES]; /* the files streaming then (paths) */
	size_t nsfailed;
	/* stage_max: the data files' bytes at the last walk, bytes written
	 * since, and writes refused since the last ovl_sync() */
	uint64_t used, written, refused;
	uint64_t dchanges; /* changes to data files (onode.blocks) */
	/* the batcher (the stage's batch: stage.h) */
	pthread_t batcher;
	pthread_cond_t bcv;
	int batcher_live, batch_armed, closing;
	uint64_t lost;     /* stage_lost() seen */
	/* Undone changes are told once each to the log (ovl_sync), to the
	 * next close or fsync of a written file, and to the next commit:
	 * a process that copied into the tree sees a failure, and so does
	 * a script that commits without looking. */
	char lostmsg[256];
	int lost_log, lost_close, lost_commit;
};

/* A change reaches the stage's database this long after the batch it
 * joined opened, at the latest (sooner where it must: stage.h). */
#define BATCH_AGE 0.02

enum { SS_NONE = 0, SS_OPENING = 1, SS_OPEN = 2, SS_OFF = -1 };

struct ovl_file {
	uint64_t ino;
	int wr, fd;
	struct centry *te; /* base reads: the pinned directory object */
	const struct tent *e;
	struct fread rd;
	char label[300];
};

struct ovl_dir {
	struct dslot {
		char *name;
		uint64_t ino;
	} *v;
	size_t n;
	uint64_t self, parent;
};

/* A directory ref of nothing: the label directory's groups. */
static inline int ref_is_zero(const struct ref *r)
{
	static const uint8_t zero[ID_LEN];

	return memcmp(r->id, zero, ID_LEN) == 0;
}

/* Nodes: the live one of a number; its release; a template's strings. */
struct onode *onode_find(struct ovl *o, uint64_t ino);
void onode_free(struct ovl *o, struct onode *n);
void onode_clear(struct onode *n);
/* Attributes as the kernel gets them. */
void onode_attr(struct ovl *o, struct onode *n,
		      struct vfs_attr *a);
int onode_is_dir(const struct onode *n);
/* What name in directory d is (a template: adopt it or clear it), the
 * live node a template becomes (with a lookup reference when ref), and a
 * live node by number bound to the current tree. */
int onode_resolve(struct ovl *o, const struct onode *d, const char *name,
		   struct onode *t);
struct onode *onode_adopt(struct ovl *o, struct onode *t, int ref);
int onode_get(struct ovl *o, uint64_t ino, struct onode **out);
/* Copy-up: a number for a new entry; a staged node's row written; n
 * staged with its parents; its base entry (pinned); its content local. */
int ovl_new_ino(struct ovl *o, uint64_t *ino);
int onode_put(struct ovl *o, struct onode *n);
int onode_copy_up(struct ovl *o, struct onode *n);
int onode_base_entry(struct ovl *o, const struct onode *n,
		      struct centry **pin, const struct tent **e);
int onode_materialize(struct ovl *o, struct onode *n, int truncate);
/* Before any change: waits while a commit runs; SNAP_EROFS for a label
 * whose stage another process holds. */
int ovl_gate_wait(struct ovl *o);
/* A directory's base side: its kind and object; its base listing (valid
 * until *pin is released; NULL pins the overlay's own trees). */
void ovl_dir_base(const struct onode *d, uint8_t *bkind, struct ref *ref);
int ovl_base_listing(struct ovl *o, uint8_t bkind, const struct ref *ref,
		     struct centry **pin, const struct tree **t);
/* A directory's merged listing in name order, and whether it is empty. */
int ovl_merge_dir(struct ovl *o, const struct onode *d,
		     int (*fn)(void *ctx, const char *name,
			       const struct tent *e, uint64_t ino),
		     void *ctx);
int onode_dir_empty(struct ovl *o, const struct onode *d);
/* SNAP_EIO naming the changes a failed batch undid; o->lock held. */
int ovl_lost_error(struct ovl *o);
/* Streaming (o->lock held unless said).  change: before a change of
 * [off, end) of n's content (a truncate, an fallocate) stops its stream
 * if that lies behind the cut point, and brings the stored chunks it
 * touches back into data/<ino>.  write_begin: the same for a write, which
 * is then in flight until ostream_wrote() (without the lock: it may cut
 * chunks; ok says whether the write succeeded; 1 when it held req back,
 * as for ovl_write()).  seal: a flush of the only
 * writer cuts the rest (without the lock).  read: a read of a file with
 * stored chunks (without the lock; *done when it answered).  settle:
 * records what became durable since the last pass.  reset: the tree
 * started afresh. */
int ostream_change(struct ovl *o, struct onode *n, uint64_t off,
		   uint64_t end);
int ostream_write_begin(struct ovl *o, struct onode *n, uint64_t off,
			uint64_t len);
int ostream_wrote(struct ovl *o, uint64_t ino, int fd, uint64_t off,
		  uint64_t len, int ok, void *req);
void ostream_seal(struct ovl *o, uint64_t ino, int fd);
int ostream_has(struct ovl *o, uint64_t ino);
/* A large base file about to be written without O_TRUNC, when the next
 * backup continues the base's series: data/<ino> starts as holes over
 * stored chunks, the base's, instead of a copy, so a write brings back
 * only the chunks it touches and a rewrite from the start (rsync
 * --inplace) streams.  0: done; SNAP_EUNSUPP: copy it
 * (onode_materialize). */
int ostream_fill_ref(struct ovl *o, uint64_t ino);
int ostream_read(struct ovl *o, uint64_t ino, int fd, uint64_t fsize,
		 uint64_t off, size_t size, struct vfs_read *rd, int *done);
void ostream_settle(struct ovl *o);
void ostream_reset(struct ovl *o);

/* What a new entry holds beyond its name and mode: a device's numbers, a
 * symlink's target; fd non-NULL for a regular file that is created open
 * (it gets the staged copy's descriptor). */
struct ovl_new {
	uint32_t rmajor, rminor;
	const char *target;
	int *fd;
};

/* Makes a new staged entry name in directory dir, in one stage
 * transaction, with the lock held; *out is the new node (with a lookup
 * reference).  Fails with nothing changed (overlay_ns.c). */
int ovl_make(struct ovl *o, const struct ovl_ctx *c, uint64_t dir,
	     const char *name, uint32_t mode, const struct ovl_new *x,
	     struct onode **out);

#endif
