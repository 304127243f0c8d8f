/*
 * treefetch.h - fetches the directory objects a walk is about to need,
 * several at a time.
 *
 * A walk visits a directory's subdirectories in order.  A window opened on
 * a directory queues the fetch of its next `width` subdirectory trees on a
 * shared pool, so that descending into one finds it decoded and the next
 * ones already on their way.  Directory objects live in their own packs,
 * written in walk order, so the pool reads them in aligned 1 MiB segments
 * kept in a small cache: the next hundreds of directories usually arrive
 * with one request.  Over a store with 30 ms round trips, a walk of 10,000
 * directories costs a second instead of minutes.  Memory: the segment
 * cache (32 MiB at most) plus width trees per open window (one window per
 * level of the walk).  Thread-safe between the walker and the pool; one
 * walker per window.
 */
#ifndef SNAPFS_TREEFETCH_H
#define SNAPFS_TREEFETCH_H

#include <stddef.h>

#include "repo.h"

struct treefetch;
struct tf_slot;

struct tf_window {
	struct treefetch *tf;
	const struct tree *dir;
	size_t *subs; /* entry indices of the subdirectories */
	size_t nsubs, queued, taken, width;
	struct tf_slot *slots;
};

int treefetch_new(struct repo *r, const char *series, int threads,
		  struct treefetch **out);
/* Waits for outstanding fetches, then frees. */
void treefetch_free(struct treefetch *tf);

/* Opens a window on dir's subdirectories and queues the first fetches. */
int tfw_open(struct tf_window *w, struct treefetch *tf,
	     const struct tree *dir, size_t width);

/* The decoded tree of dir->ents[entry] (a directory, taken in walk order);
 * the caller owns *out.  Failures come back with their message. */
int tfw_take(struct tf_window *w, size_t entry, struct tree *out);

/* Waits for this window's fetches and frees trees nobody took. */
void tfw_close(struct tf_window *w);

#endif
