/*
 * bufpool.h - a bounded free list of reusable byte buffers.
 *
 * A hot path that needs a megabyte-sized buffer per job (a chunk's bytes,
 * its sealed form, a pack) takes one here and gives it back, instead of
 * asking malloc each time: glibc returns such blocks to the kernel on
 * free, and every fresh 4 KiB page then costs a fault and a clearing.  On
 * the backup path that was a third of the engine's CPU time.
 *
 * At most `keep` idle buffers stay in the pool; a put beyond that frees
 * the buffer, so the pool never holds more than its owner's own bound on
 * jobs in flight (and never more than BUFPOOL_MAX).  Thread-safe.  The
 * pool owns the idle buffers; a buffer handed out belongs to the caller
 * until it is put back.
 */
#ifndef SNAPFS_BUFPOOL_H
#define SNAPFS_BUFPOOL_H

#include <pthread.h>
#include <stddef.h>

#include "util.h"

#define BUFPOOL_MAX 64

struct bufpool {
	pthread_mutex_t m;
	struct buf idle[BUFPOOL_MAX];
	size_t n, keep;
};

/* keep is capped at BUFPOOL_MAX. */
void bufpool_init(struct bufpool *p, size_t keep);
/* Frees the idle buffers; every buffer must have been put back. */
void bufpool_destroy(struct bufpool *p);

/* An empty buffer (len 0), with the capacity of an earlier use if one is
 * idle.  Never fails: growth happens later through buf_reserve(). */
struct buf bufpool_get(struct bufpool *p);

/* Takes b back and leaves *b empty (BUF_INIT). */
void bufpool_put(struct bufpool *p, struct buf *b);

#endif
