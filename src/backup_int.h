/*
 * backup_int.h - the backup engine's insides, shared by backup.c (the
 * directory walker and the pipeline) and backup_archive.c (the archive
 * importer).  Not an API: nothing else includes it.
 *
 * A struct bdir is a directory being built: its entries, and a pending
 * count (chunk jobs in flight + unfinished subdirectories + 1 while its
 * producer still adds to it).  When the count drops to zero, release()
 * encodes it, stores it, and hands its ref to the parent.  Entries and
 * their chunk arrays are shared with the chunk workers: change them (or
 * grow d->ents) only under e->lock.
 */
#ifndef SNAPFS_BACKUP_INT_H
#define SNAPFS_BACKUP_INT_H

#include <pthread.h>
#include <sys/types.h>

#include "backup.h"
#include "bufpool.h"
#include "err.h"
#include "index.h"
#include "workq.h"

#define READ_BUF (16u << 20)
#define CHUNK_QUEUE 16

struct bdir {
	struct bdir *parent;
	size_t pidx;           /* our entry in the parent */
	struct tent *ents;     /* type 0: skipped */
	size_t *ccap;          /* chunk array capacity per entry */
	size_t n;
	int pending;           /* chunk jobs + open children + 1 while walked */
	uint64_t files, bytes; /* regular files below, recursively */
	struct mgroup *group;  /* roots: where the result goes */
	/* archive import only: entries arrive in any order */
	size_t cap;
	struct bdir **kids; /* the subdirectory of each entry, or NULL */
};

struct hlink {
	dev_t dev;
	ino_t ino;
	uint64_t id; /* 0: empty slot */
};

struct eng {
	struct repo *r;
	const struct backup_opts *o;
	struct backup_result *res;
	char series[SERIES_MAX];
	struct workq *cq, *uq;

	struct errstate es;
	pthread_mutex_t lock; /* dirs, stats */
	pthread_cond_t cv;
	int roots_pending;

	pthread_mutex_t plock; /* current packs, index, pack list */
	struct index own_ix, *ix; /* ix: own_ix, or the caller's */
	/* Data and directory objects go to separate packs, so that a walk
	 * reads directory objects in a few large requests (treefetch.h). */
	struct pack cur[2];
	int cur_open[2];
	uint8_t (*packs)[PACK_ID_LEN];
	size_t npacks, packcap;
	/* Packs shipped and not yet uploaded (a failed one stays). */
	uint8_t (*flying)[PACK_ID_LEN];
	size_t nflying, flycap;
	int xattr_ns; /* XNS_* bits seen in any entry, atomically or'ed */
	/* Reused buffers: chunk bytes and sealed blobs; pack bodies. */
	struct bufpool bufs, pbufs;

	/* Reports each uploaded pack (sessions; may be NULL). */
	void (*on_pack)(void *ctx, const uint8_t id[PACK_ID_LEN],
			uint64_t size);
	void *pack_ctx;
	/* Subtrees or groups were taken from the parent unread: their
	 * attribute namespaces are the parent's. */
	int used_refs;

	/* walker thread only */
	/* The group being walked: its path as given, the absolute one that
	 * exclude patterns match, and its filesystem (--one-file-system). */
	size_t grp_plen;
	char *grp_abs;
	dev_t grp_dev;
	struct hlink *hl;
	size_t hlcap, nhl;
	uint8_t *rbuf;
};

struct cjob {
	struct eng *e;
	struct bdir *d;
	size_t ei, ci;
	uint64_t off;
	struct buf data; /* from e->bufs */
};

#define fail(e, rc) errstate_fail(&(e)->es, (rc))
#define failed(e) errstate_failed(&(e)->es)
#define warn(e, ...) errstate_warn(&(e)->es, __VA_ARGS__)
#define note(e, ...) errstate_note(&(e)->es, __VA_ARGS__)

void add_stat(uint64_t *p, uint64_t v);
int64_t ts_ns(const struct timespec *ts);
struct bdir *bdir_new(struct bdir *parent, size_t pidx);
/* Room for entry d->n, zeroed (with its kids slot when with_kids); the
 * caller holds e->lock (chunk workers index d->ents) and counts it. */
int bdir_reserve(struct bdir *d, int with_kids);
/* Drops one pending count of d; the last one finishes it. */
void release(struct eng *e, struct bdir *d);

/* Reads up to n bytes at off; 0 ends the range, -errno on failure. */
typedef ssize_t (*src_read)(void *src, uint8_t *buf, size_t n, uint64_t off);

/* Reads [start, end) through rd and queues its chunks for entry ei of d.
 * *got receives the end of what could be read (less than end when the
 * source ended first). */
int chunk_range(struct eng *e, struct bdir *d, size_t ei, src_read rd,
		void *src, uint64_t start, uint64_t end, uint64_t *got);

/* Chunks fd's first size bytes, data extents only (holes skipped); sets
 * entry ei's size to what could be read. */
int chunk_fd(struct eng *e, struct bdir *d, size_t ei, int fd,
	     const char *path, uint64_t size);

/* Builds group g from the archive at g->path into mg (backup_archive.c). */
int backup_archive(struct eng *e, const struct backup_group *g,
		   struct mgroup *mg);

#endif
